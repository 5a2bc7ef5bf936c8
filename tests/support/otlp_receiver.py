"""A real OTLP/HTTP trace receiver on 127.0.0.1 for tests, the demo and benchmarks.

Why a hand-written receiver instead of mocking the exporter: the product's promise is that spans
*arrive* at an OTLP backend, intact and exactly once. Only a real HTTP server that decodes the
real protobuf wire format can check that, including compression, retries after 429/503, body
size limits and dropped connections. Everything here runs in-process on loopback, so tests stay
fast and hermetic.

Usage::

    with OtlpReceiver(fail_first=1, retry_after="0") as rx:
        export_somehow(endpoint=rx.endpoint)
        assert rx.wait_for_spans(3)
        assert rx.attempts == 2
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

try:  # OTLP says error responses SHOULD carry a google.rpc.Status; nice to have, not required.
    from google.rpc.status_pb2 import Status as _RpcStatus
except ImportError:  # pragma: no cover - googleapis-common-protos ships with the OTLP exporter
    _RpcStatus = None

from tests.support.http_server import LoopbackHandler, LoopbackServer

__all__ = [
    "DROPPED",
    "Faults",
    "OtlpReceiver",
    "ReceivedEvent",
    "ReceivedLink",
    "ReceivedRequest",
    "ReceivedSpan",
    "count_spans",
    "decode_any_value",
    "decode_spans",
    "unused_port",
]

#: ``ReceivedRequest.status`` of a request whose connection was dropped without an answer.
DROPPED = 0

_PROTOBUF = "application/x-protobuf"
_METRICS_SUFFIX = "/v1/metrics"
_ACCEPTED_SUFFIXES = ("/v1/traces", "/v2/traces", _METRICS_SUFFIX)
_EMPTY_RESPONSE = ExportTraceServiceResponse().SerializeToString()
_SPAN_KIND_PREFIX = "SPAN_KIND_"
_STATUS_CODE_PREFIX = "STATUS_CODE_"

AttributeValue = Any
"""A decoded OTLP ``AnyValue``: str, int, float, bool, bytes, None, list or dict of those."""


@dataclass(frozen=True)
class ReceivedRequest:
    """One HTTP request the receiver saw, accepted or not, so tests can count retries.

    ``body_size`` is the size on the wire (possibly compressed); ``decoded_size`` the size after
    decompression (0 when the body was never decoded). ``status`` is the HTTP status answered, or
    :data:`DROPPED` when the connection was closed without an answer.
    """

    path: str
    headers: dict[str, str]
    body_size: int
    span_count: int
    status: int
    decoded_size: int = 0
    received_at: float = 0.0
    #: Metric data points in an accepted ``/v1/metrics`` request.
    point_count: int = 0


@dataclass(frozen=True)
class ReceivedEvent:
    """A span event (e.g. an ``exception`` event) as it arrived."""

    name: str
    time_ns: int
    attributes: dict[str, AttributeValue]


@dataclass(frozen=True)
class ReceivedLink:
    """A span link as it arrived; ``trace_id``/``span_id`` are lower-case hex."""

    trace_id: str
    span_id: str
    attributes: dict[str, AttributeValue]


@dataclass(frozen=True)
class ReceivedSpan:
    """One decoded span, flattened to plain Python values so tests can compare it directly.

    IDs are lower-case hex (32 chars for traces, 16 for spans); ``parent_span_id`` is None for a
    root span. ``kind`` and ``status_code`` are the proto enum names without their prefixes
    (``"CLIENT"``, ``"ERROR"``). ``resource`` holds the resource attributes.
    """

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    status_code: str
    status_message: str
    start_ns: int
    end_ns: int
    attributes: dict[str, AttributeValue]
    resource: dict[str, AttributeValue]
    scope_name: str
    scope_version: str = ""
    trace_state: str = ""
    events: tuple[ReceivedEvent, ...] = ()
    links: tuple[ReceivedLink, ...] = ()

    @property
    def duration_ns(self) -> int:
        """End minus start; negative values are kept so tests can spot inverted timestamps."""
        return self.end_ns - self.start_ns


@dataclass
class Faults:
    """Failure modes the receiver injects, to exercise the exporter's retry and error paths.

    Counters for ``fail_first`` and ``drop_connection_first`` count requests since the faults were
    last set (constructor or :meth:`OtlpReceiver.set_faults`), so a test can arm a fault midway.
    Order per request: drop connection, delay, ``always_status``, ``fail_first``, then the normal
    checks (path, content type, decoding, ``max_body_bytes``, ``reject_containing``).
    """

    fail_first: int = 0
    fail_status: int = 503
    retry_after: str | None = None
    max_body_bytes: int | None = None
    delay_s: float = 0.0
    always_status: int | None = None
    drop_connection_first: int = 0
    #: Refuse (with ``fail_status``) every request whose decoded body holds these bytes: e.g. one
    #: batch's id, so that one batch of several fails while the others are delivered.
    reject_containing: bytes | None = None


def decode_any_value(value: AnyValue) -> AttributeValue:
    """Turn an OTLP ``AnyValue`` into the Python value a test would write in an assertion."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [decode_any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return _decode_attributes(value.kvlist_value.values)
    return getattr(value, which)


def _decode_attributes(kvs: Iterable[KeyValue]) -> dict[str, AttributeValue]:
    return {kv.key: decode_any_value(kv.value) for kv in kvs}


def _enum_suffix(name: str, prefix: str) -> str:
    return name[len(prefix) :] if name.startswith(prefix) else name


def _decode_span(span: Span, resource: dict[str, AttributeValue], scope_name: str, scope_version: str) -> ReceivedSpan:
    return ReceivedSpan(
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex() or None,
        name=span.name,
        kind=_enum_suffix(Span.SpanKind.Name(span.kind), _SPAN_KIND_PREFIX),
        status_code=_enum_suffix(Status.StatusCode.Name(span.status.code), _STATUS_CODE_PREFIX),
        status_message=span.status.message,
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        attributes=_decode_attributes(span.attributes),
        resource=resource,
        scope_name=scope_name,
        scope_version=scope_version,
        trace_state=span.trace_state,
        events=tuple(ReceivedEvent(e.name, e.time_unix_nano, _decode_attributes(e.attributes)) for e in span.events),
        links=tuple(
            ReceivedLink(lk.trace_id.hex(), lk.span_id.hex(), _decode_attributes(lk.attributes)) for lk in span.links
        ),
    )


def decode_spans(request: ExportTraceServiceRequest) -> list[ReceivedSpan]:
    """Flatten an export request into :class:`ReceivedSpan` objects, in wire order."""
    out: list[ReceivedSpan] = []
    for rs in request.resource_spans:
        resource = _decode_attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            for span in ss.spans:
                out.append(_decode_span(span, resource, ss.scope.name, ss.scope.version))
    return out


def count_spans(request: ExportTraceServiceRequest) -> int:
    """Number of spans in an export request, without decoding them."""
    return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """``(field number, value start, value end)`` of the length-delimited fields in ``data[start:end]``."""
    pos = start
    while pos < end:
        tag, pos = _varint(data, pos)
        wire = tag & 7
        if wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > end:
                raise ValueError("truncated field")
            yield tag >> 3, pos, pos + length
            pos += length
        elif wire == 0:
            _, pos = _varint(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def count_spans_wire(data: bytes) -> int:
    """Spans in a serialized ExportTraceServiceRequest, by walking the wire format three levels deep.

    The benchmark's receiver must answer at once or it measures itself: this skips every span's
    bytes instead of decoding them (resource_spans=1 > scope_spans=2 > spans=2).
    """
    count = 0
    for field, start, end in _fields(data, 0, len(data)):
        if field != 1:
            continue
        for inner, s_start, s_end in _fields(data, start, end):
            if inner != 2:
                continue
            count += sum(1 for f, _, _ in _fields(data, s_start, s_end) if f == 2)
    return count


def _count_json_spans(data: bytes) -> int:
    """Spans in an OTLP/JSON request, parsed in full."""
    document = json.loads(data)
    return sum(
        len(scope.get("spans") or ())
        for resource in document.get("resourceSpans") or ()
        for scope in resource.get("scopeSpans") or ()
    )


def _decompress(body: bytes, encoding: str) -> bytes:
    """Undo ``Content-Encoding``; ``deflate`` accepts both zlib-wrapped and raw streams.

    RFC 9110 says deflate means the zlib format, but some clients send raw deflate; a test
    receiver should not be stricter than real collectors about this.
    """
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return gzip.decompress(body)
    if encoding == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return zlib.decompress(body, -zlib.MAX_WBITS)
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


def unused_port() -> int:
    """A 127.0.0.1 TCP port with nothing listening, for "receiver is down" tests.

    The port comes from the kernel's ephemeral range and is released at once, so a connection
    attempt gets ECONNREFUSED. Another process could grab it in between, which is unlikely enough
    for tests.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Handler(LoopbackHandler["OtlpReceiver"]):
    """Every method goes to the receiver's :meth:`~OtlpReceiver._handle`, which answers or refuses."""

    def do_POST(self) -> None:
        self.owner._handle(self)

    def _method_not_allowed(self) -> None:
        self.owner._handle(self, method_allowed=False)

    do_GET = do_PUT = do_DELETE = do_PATCH = _method_not_allowed

    def send_reply(
        self, status: int, body: bytes, extra_headers: dict[str, str] | None = None, content_type: str = _PROTOBUF
    ) -> None:
        self.send_body(status, body, content_type, extra_headers)


class OtlpReceiver(LoopbackServer):
    """OTLP/HTTP trace receiver on 127.0.0.1, run in a daemon thread; use as a context manager.

    Only spans from requests answered 2xx land in :attr:`spans`, so a test can assert that exactly
    the expected set arrived; every request, including failed and dropped ones, lands in
    :attr:`requests`, so a test can count attempts. All accessors return copies under a lock.
    """

    handler = _Handler
    SHUTDOWN_TIMEOUT_S: ClassVar[float] = LoopbackServer.stop_timeout_s

    def __init__(
        self,
        port: int = 0,
        *,
        count_only: bool = False,
        parse_bodies: bool = False,
        max_requests: int = 100_000,
        fail_first: int = 0,
        fail_status: int = 503,
        retry_after: str | None = None,
        max_body_bytes: int | None = None,
        delay_s: float = 0.0,
        always_status: int | None = None,
        drop_connection_first: int = 0,
    ) -> None:
        super().__init__(port)
        self.count_only = count_only
        #: In ``count_only`` mode, parse every body in full before counting, as a collector would
        #: (the benchmark shows how a receiver that takes its time slows a synchronous exporter).
        self.parse_bodies = parse_bodies
        self.max_requests = max_requests
        self._faults = Faults(
            fail_first=fail_first,
            fail_status=fail_status,
            retry_after=retry_after,
            max_body_bytes=max_body_bytes,
            delay_s=delay_s,
            always_status=always_status,
            drop_connection_first=drop_connection_first,
        )
        self._faults_seen = 0  # requests since the faults were last set
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._requests: list[ReceivedRequest] = []
        self._spans: list[ReceivedSpan] = []
        self._span_count = 0
        self._attempts = 0
        self._errors: list[str] = []
        self._metric_points: list[Any] = []  # tests.support.otlp_metrics.ReceivedPoint

    def shutdown(self, timeout: float | None = None) -> None:
        """:meth:`stop` under the name the receiver has always had."""
        self.stop(timeout)

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>/v1/traces``: what ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` takes."""
        return f"{self.base_url}/v1/traces"

    @property
    def metrics_endpoint(self) -> str:
        """``http://127.0.0.1:<port>/v1/metrics``: what ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` takes."""
        return f"{self.base_url}{_METRICS_SUFFIX}"

    # ------------------------------------------------------------------ faults

    def set_faults(self, **changes: Any) -> None:
        """Change fault injection at runtime; counters for ``*_first`` faults restart from zero.

        Accepts the :class:`Faults` field names; unknown names raise TypeError so a typo in a test
        does not silently disable the fault it meant to arm.
        """
        known = {f.name for f in fields(Faults)}
        unknown = set(changes) - known
        if unknown:
            raise TypeError(f"unknown fault(s): {sorted(unknown)}; known: {sorted(known)}")
        with self._lock:
            self._faults = replace(self._faults, **changes)
            self._faults_seen = 0

    def clear_faults(self) -> None:
        """Back to a well-behaved receiver."""
        with self._lock:
            self._faults = Faults()
            self._faults_seen = 0

    @property
    def faults(self) -> Faults:
        with self._lock:
            return replace(self._faults)

    # ------------------------------------------------------------------ results

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request seen, in arrival order, with the status it was answered."""
        with self._lock:
            return list(self._requests)

    @property
    def spans(self) -> list[ReceivedSpan]:
        """Decoded spans from 2xx-answered requests (always empty in ``count_only`` mode)."""
        with self._lock:
            return list(self._spans)

    @property
    def span_count(self) -> int:
        """Spans accepted (2xx) so far; maintained in both modes."""
        with self._lock:
            return self._span_count

    @property
    def attempts(self) -> int:
        """Total requests seen, including failed and dropped ones."""
        with self._lock:
            return self._attempts

    @property
    def errors(self) -> list[str]:
        """Tracebacks of handler errors (e.g. a client hanging up mid-request), for debugging."""
        with self._lock:
            return list(self._errors)

    def statuses(self) -> list[int]:
        """HTTP status of each request in order; :data:`DROPPED` for dropped connections."""
        with self._lock:
            return [r.status for r in self._requests]

    @property
    def metric_points(self) -> list[Any]:
        """Decoded metric data points (``tests.support.otlp_metrics.ReceivedPoint``) from 2xx-answered requests."""
        with self._lock:
            return list(self._metric_points)

    def metric_requests(self) -> list[ReceivedRequest]:
        """The requests (of any outcome) made to ``/v1/metrics``."""
        with self._lock:
            return [r for r in self._requests if r.path.split("?", 1)[0].rstrip("/").endswith(_METRICS_SUFFIX)]

    def wait_for_metric_points(self, n: int, timeout: float = 10) -> bool:
        """Block until at least ``n`` metric data points were accepted; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._metric_points) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def spans_by_name(self, name: str) -> list[ReceivedSpan]:
        with self._lock:
            return [s for s in self._spans if s.name == name]

    def span_ids(self) -> list[str]:
        with self._lock:
            return [s.span_id for s in self._spans]

    def wait_for_spans(self, n: int, timeout: float = 10) -> bool:
        """Block until at least ``n`` spans were accepted; False on timeout.

        Exporters flush before they return, but the HTTP response can reach the client before the
        handler thread records the spans; waiting here closes that small window.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._span_count < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def wait_for_requests(self, n: int, timeout: float = 10) -> bool:
        """Block until at least ``n`` requests (of any outcome) were seen; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._requests) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def reset(self) -> None:
        """Forget everything received so far (faults are kept)."""
        with self._lock:
            self._requests.clear()
            self._spans.clear()
            self._span_count = 0
            self._attempts = 0
            self._errors.clear()
            self._metric_points.clear()

    # ------------------------------------------------------------------ internals

    def on_handler_error(self, error: BaseException | None, text: str) -> None:
        """Clients hanging up is normal here: remember it (for debugging), never print it."""
        self._record_error(text)

    def _record_error(self, text: str) -> None:
        with self._lock:
            if len(self._errors) < 1000:
                self._errors.append(text)

    def _record(
        self,
        handler: _Handler,
        *,
        body_size: int,
        decoded_size: int,
        status: int,
        span_count: int = 0,
        spans: list[ReceivedSpan] | None = None,
        points: list[Any] | None = None,
    ) -> None:
        headers: dict[str, str] = {}
        for key, value in handler.headers.items():
            k = key.lower()
            headers[k] = f"{headers[k]}, {value}" if k in headers else value
        request = ReceivedRequest(
            path=handler.path,
            headers=headers,
            body_size=body_size,
            span_count=span_count,
            status=status,
            decoded_size=decoded_size,
            received_at=time.time(),
            point_count=len(points or ()),
        )
        with self._cond:
            self._requests.append(request)
            if 200 <= status < 300:
                self._span_count += span_count
                if spans:
                    self._spans.extend(spans)
                if points:
                    self._metric_points.extend(points)
            self._cond.notify_all()

    def _handle(self, handler: _Handler, *, method_allowed: bool = True) -> None:
        """Answer one request, then stop the server if this was the last one allowed."""
        with self._lock:
            if self._attempts >= self.max_requests:
                refuse = True
            else:
                refuse = False
                self._attempts += 1
            over_cap = self._attempts >= self.max_requests
            index = self._faults_seen
            self._faults_seen += 1
            faults = self._faults
        if refuse:
            handler.read_body()
            handler.reset_connection()
            return
        try:
            self._answer(handler, index, faults, method_allowed)
        finally:
            if over_cap:
                # Hard cap against runaway loops. Later requests on open keep-alive connections are
                # refused by closing them; stopping runs in another thread as shutdown() blocks.
                handler.close_connection = True
                if not self.stopping:
                    threading.Thread(target=self.shutdown, name="otlp-receiver-cap", daemon=True).start()

    def _answer(self, handler: _Handler, index: int, faults: Faults, method_allowed: bool) -> None:
        """Faults first, then the checks a real collector makes, then decode and record."""
        body = handler.read_body()
        ok_status = self._inject_faults(handler, index, faults, method_allowed, len(body))
        if ok_status is None:
            return
        path = handler.path.split("?", 1)[0].rstrip("/")
        if not path.endswith(_ACCEPTED_SUFFIXES):
            self._reply_error(handler, 404, f"no OTLP trace endpoint at {path}", len(body))
            return
        content_type = handler.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if self.count_only and content_type == "application/json":
            # OTLP/JSON (what some SDKs, like the seed's, post): count span objects by their key.
            data = _decompress(body, handler.headers.get("Content-Encoding", ""))
            span_count = _count_json_spans(data) if self.parse_bodies else data.count(b'"spanId"')
            self._record(handler, body_size=len(body), decoded_size=len(data), status=ok_status, span_count=span_count)
            handler.send_reply(ok_status, b"{}", content_type="application/json")
            return
        if content_type != _PROTOBUF:
            self._reply_error(handler, 415, f"unsupported Content-Type {content_type!r}", len(body))
            return
        try:
            data = _decompress(body, handler.headers.get("Content-Encoding", ""))
        except (OSError, EOFError, zlib.error, ValueError) as exc:
            self._reply_error(handler, 400, f"cannot decompress body: {exc}", len(body))
            return
        if self._refuse_decoded(handler, faults, len(body), data):
            return
        if path.endswith(_METRICS_SUFFIX):
            self._accept_metrics(handler, len(body), data, ok_status)
            return
        self._accept(handler, len(body), data, ok_status)

    def _refuse_decoded(self, handler: _Handler, faults: Faults, body_size: int, data: bytes) -> bool:
        """The faults that look at the decoded body (``max_body_bytes``, ``reject_containing``); True if answered."""
        if faults.max_body_bytes is not None and len(data) > faults.max_body_bytes:
            message = f"body {len(data)} > {faults.max_body_bytes} bytes"
            self._reply_error(handler, 413, message, body_size, None, len(data))
            return True
        if faults.reject_containing is not None and faults.reject_containing in data:
            self._reply_error(handler, faults.fail_status, "injected failure (rejected content)", body_size)
            return True
        return False

    def _inject_faults(
        self, handler: _Handler, index: int, faults: Faults, method_allowed: bool, body_size: int
    ) -> int | None:
        """Apply the armed faults: the status a success gets, or None when the request was answered here."""
        if index < faults.drop_connection_first:
            self._record(handler, body_size=body_size, decoded_size=0, status=DROPPED)
            handler.reset_connection()
            return None
        if faults.delay_s > 0:
            time.sleep(faults.delay_s)
        if not method_allowed:
            self._reply_error(handler, 405, "only POST is supported", body_size)
            return None
        if faults.always_status is not None and 200 <= faults.always_status < 300:
            return faults.always_status  # e.g. 202: still decode and record the spans
        if faults.always_status is not None:
            self._reply_error(handler, faults.always_status, "injected failure", body_size, faults.retry_after)
            return None
        if index < faults.fail_first:
            self._reply_error(handler, faults.fail_status, "injected failure", body_size, faults.retry_after)
            return None
        return 200

    def _accept(self, handler: _Handler, body_size: int, data: bytes, ok_status: int) -> None:
        """Count (``count_only``) or decode the spans, record them, then answer ``ok_status``."""
        try:
            if self.count_only and self.parse_bodies:
                spans, span_count = None, count_spans(ExportTraceServiceRequest.FromString(data))
            elif self.count_only:
                spans, span_count = None, count_spans_wire(data)
            else:
                spans = decode_spans(ExportTraceServiceRequest.FromString(data))
                span_count = len(spans)
        except (ValueError, DecodeError) as exc:
            self._reply_error(handler, 400, f"invalid ExportTraceServiceRequest: {exc}", body_size, None, len(data))
            return
        # Record before replying, so that "the export call returned" implies "spans are visible".
        self._record(
            handler, body_size=body_size, decoded_size=len(data), status=ok_status, span_count=span_count, spans=spans
        )
        handler.send_reply(ok_status, _EMPTY_RESPONSE)

    def _accept_metrics(self, handler: _Handler, body_size: int, data: bytes, ok_status: int) -> None:
        """Decode an ExportMetricsServiceRequest, record its data points, then answer ``ok_status``."""
        from tests.support.otlp_metrics import decode_metrics  # it imports this module's value decoder

        try:
            points = decode_metrics(ExportMetricsServiceRequest.FromString(data))
        except (ValueError, DecodeError) as exc:
            self._reply_error(handler, 400, f"invalid ExportMetricsServiceRequest: {exc}", body_size, None, len(data))
            return
        self._record(handler, body_size=body_size, decoded_size=len(data), status=ok_status, points=points)
        handler.send_reply(ok_status, ExportMetricsServiceResponse().SerializeToString())

    def _reply_error(
        self,
        handler: _Handler,
        status: int,
        message: str,
        body_size: int,
        retry_after: str | None = None,
        decoded_size: int = 0,
    ) -> None:
        self._record(handler, body_size=body_size, decoded_size=decoded_size, status=status)
        payload = b""
        if _RpcStatus is not None and status >= 400:
            payload = _RpcStatus(code=_grpc_code_for(status), message=message).SerializeToString()
        extra = {"Retry-After": retry_after} if retry_after is not None else {}
        if 200 <= status < 300:
            payload = _EMPTY_RESPONSE
        handler.send_reply(status, payload, extra)


def _grpc_code_for(status: int) -> int:
    """Map an HTTP status to the google.rpc.Code the OTLP spec pairs with it."""
    codes = {400: 3, 401: 16, 403: 7, 404: 5, 413: 8, 415: 3, 429: 8, 502: 14, 503: 14, 504: 14}
    return codes.get(status, 13)  # 13 = INTERNAL
