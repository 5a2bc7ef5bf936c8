"""Delivering finished spans over OTLP/HTTP: bounded chunks, retried, every span accounted for.

The stock pipeline loses spans in two places a batch job cannot afford: the
BatchSpanProcessor drops them once its queue is full, and the OTLP exporter gives up inside
one timeout for all attempts and drops a chunk at once on 413 or 500. Here chunks are bounded
by span count and encoded size, go straight to the receiver from a small pool of in-flight
requests, are retried with backoff and jitter on connection errors, timeouts, 408, 429
(honouring ``Retry-After``) and 5xx until a per-run deadline, and a 413 splits the chunk.
Whatever still fails is counted, never dropped silently.
"""

from __future__ import annotations

import gzip
import logging
import random
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import urllib3
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan

from batchtrace import __version__
from batchtrace.otlp_config import OtlpConfig

logger = logging.getLogger(__name__)

_RETRYABLE_STATUS = frozenset({408, 429})


@dataclass(slots=True, frozen=True)
class DeliveryPolicy:
    """How hard to try. ``deadline`` is a ``time.monotonic()`` instant after which nothing is sent."""

    max_spans_per_request: int = 1_000
    max_request_bytes: int = 4 << 20
    max_in_flight: int = 2
    max_attempts: int = 8
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    deadline: float | None = None

    def remaining(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()


@dataclass(slots=True)
class DeliveryReport:
    """Spans delivered and failed so far, with one line per distinct failure reason."""

    exported: int = 0
    failed: int = 0
    reasons: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, exported: int, failed: int, reason: str | None = None) -> None:
        with self._lock:
            self.exported += exported
            self.failed += failed
            if reason and reason not in self.reasons and len(self.reasons) < 20:
                self.reasons.append(reason)


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


class OtlpSender:
    """POSTs encoded span chunks to one OTLP/HTTP endpoint with retries (thread-safe)."""

    def __init__(self, config: OtlpConfig, policy: DeliveryPolicy, report: DeliveryReport) -> None:
        self.config = config
        self.policy = policy
        self.report = report
        self._pool = urllib3.PoolManager(maxsize=max(policy.max_in_flight, 1), block=False, retries=False)
        self._headers = {
            "content-type": "application/x-protobuf",
            "user-agent": f"batchtrace/{__version__}",
            **config.headers,
        }
        if config.compression != "none":
            self._headers["content-encoding"] = config.compression

    def send(self, spans: Sequence[ReadableSpan]) -> None:
        """Deliver ``spans`` (splitting on size or 413) and record the outcome in the report."""
        if not spans:
            return
        payload = encode_spans(spans).SerializeToString()
        if len(payload) > self.policy.max_request_bytes and len(spans) > 1:
            half = len(spans) // 2
            self.send(spans[:half])
            self.send(spans[half:])
            return
        outcome, detail = self._post(payload)
        if outcome == "too_large" and len(spans) > 1:
            logger.info("receiver answered 413 for %d spans; splitting the chunk", len(spans))
            half = len(spans) // 2
            self.send(spans[:half])
            self.send(spans[half:])
        elif outcome == "ok":
            rejected = min(detail, len(spans)) if isinstance(detail, int) else 0
            if rejected:
                reason = f"receiver rejected {rejected} spans (partial success)"
                logger.error("%s", reason)
            self.report.record(len(spans) - rejected, rejected, reason if rejected else None)
        else:
            reason = str(detail)
            logger.error("%d spans not delivered to %s: %s", len(spans), self.config.endpoint, reason)
            self.report.record(0, len(spans), reason)

    def _compress(self, payload: bytes) -> bytes:
        if self.config.compression == "gzip":
            return gzip.compress(payload, compresslevel=1, mtime=0)
        if self.config.compression == "deflate":
            return zlib.compress(payload, 1)
        return payload

    def _post(self, payload: bytes) -> tuple[str, int | str]:
        """One chunk's fate: ``("ok", rejected_count)``, ``("too_large", …)`` or ``("failed", reason)``."""
        body = self._compress(payload)
        policy = self.policy
        reason = "not attempted"
        for attempt in range(policy.max_attempts):
            remaining = policy.remaining()
            if remaining <= 0:
                return "failed", f"deadline reached after {attempt} attempts (last: {reason})"
            timeout = min(self.config.timeout_s, remaining)
            retry_after: float | None = None
            try:
                response = self._pool.request(
                    "POST",
                    self.config.endpoint,
                    body=body,
                    headers=self._headers,
                    timeout=urllib3.Timeout(connect=min(timeout, 5.0), read=timeout),
                    preload_content=True,
                    redirect=False,
                )
            except urllib3.exceptions.HTTPError as err:
                reason = f"{type(err).__name__}: {str(err).split(': ', 1)[-1][:200]}"
            else:
                status = response.status
                if 200 <= status < 300:
                    return "ok", _rejected_spans(response.data)
                if status == 413:
                    return "too_large", "HTTP 413"
                reason = f"HTTP {status}"
                if status not in _RETRYABLE_STATUS and status < 500:
                    return "failed", f"{reason} (not retryable)"
                retry_after = _retry_after_seconds(response.headers.get("retry-after"))
            if attempt + 1 == policy.max_attempts:
                break
            delay = min(policy.backoff_base_s * 2**attempt, policy.backoff_max_s) * random.uniform(0.5, 1.0)
            if retry_after is not None:
                delay = min(retry_after, max(policy.backoff_max_s, 0.0) * 4)
            if delay >= policy.remaining():
                return "failed", f"deadline too close to retry after {reason}"
            logger.warning("export attempt %d failed (%s); retrying in %.2fs", attempt + 1, reason, delay)
            time.sleep(delay)
        return "failed", f"{reason} after {policy.max_attempts} attempts"

    def close(self) -> None:
        self._pool.clear()


def _rejected_spans(data: bytes) -> int:
    """``partial_success.rejected_spans`` of an OTLP response (0 when absent or not protobuf)."""
    if not data:
        return 0
    try:
        response = ExportTraceServiceResponse.FromString(data)
    except Exception:  # a JSON or empty-ish body from a lenient receiver still means success
        return 0
    return int(response.partial_success.rejected_spans)


class ChunkedExporter:
    """Collects spans into bounded chunks and sends them from a small pool of workers.

    ``add`` blocks once ``max_in_flight`` chunks are pending, so memory stays bounded however
    large the batch; ``close`` waits for every chunk and returns the report.
    """

    def __init__(self, sender: OtlpSender, on_chunk_done: Callable[[], None] | None = None) -> None:
        self.sender = sender
        self.policy = sender.policy
        self._chunk: list[ReadableSpan] = []
        self._chunk_bytes = 0
        self._pending: deque[Future[None]] = deque()
        self._pool = ThreadPoolExecutor(max_workers=max(self.policy.max_in_flight, 1), thread_name_prefix="otlp")
        self._on_chunk_done = on_chunk_done

    @property
    def report(self) -> DeliveryReport:
        return self.sender.report

    def add(self, span: ReadableSpan) -> None:
        self._chunk.append(span)
        self._chunk_bytes += _estimated_size(span)
        if (
            len(self._chunk) >= self.policy.max_spans_per_request
            or self._chunk_bytes >= self.policy.max_request_bytes * 0.9
        ):
            self.flush()

    def flush(self) -> None:
        if not self._chunk:
            return
        chunk, self._chunk, self._chunk_bytes = self._chunk, [], 0
        while len(self._pending) >= self.policy.max_in_flight:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._send, chunk))

    def _send(self, chunk: list[ReadableSpan]) -> None:
        try:
            self.sender.send(chunk)
        except Exception as err:  # never lose the count, whatever broke
            logger.exception("unexpected error while exporting %d spans", len(chunk))
            self.report.record(0, len(chunk), f"unexpected {type(err).__name__}")
        if self._on_chunk_done:
            self._on_chunk_done()

    def close(self) -> DeliveryReport:
        self.flush()
        while self._pending:
            self._pending.popleft().result()
        self._pool.shutdown(wait=True)
        self.sender.close()
        return self.report


def _estimated_size(span: ReadableSpan) -> int:
    """A cheap upper-bound guess of a span's encoded size, to cut chunks before encoding."""
    size = 160
    for key, value in (span.attributes or {}).items():
        size += len(key) + 8
        if isinstance(value, str):
            size += len(value) * 3 if not value.isascii() else len(value)
        elif isinstance(value, list | tuple):
            size += sum(len(v) if isinstance(v, str) else 10 for v in value)
        else:
            size += 10
    return size
