"""What the fault tests share: scripted receivers, the expected span set, events and runners.

The expected span set of a batch is taken from a clean run against a healthy receiver (a
"golden" run) and checked for shape (one span per ``custom_id``, one ``batch_results``, all
distinct). Span ids are deterministic, so every later run of the same batch, faults or not,
must produce exactly that set: :func:`assert_exactly_once` compares what arrived with it.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from batchtrace import DeliveryPolicy, OtlpConfig, Summary, TraceHint, run_batch

from tests.support.batches import Batch
from tests.support.cli import run_batchtrace
from tests.support.lambda_context import FakeLambdaContext
from tests.support.otlp_receiver import DROPPED, Faults, OtlpReceiver, ReceivedSpan

CUSTOM_ID = "batchtrace.custom_id"
BATCH_SPAN = "batch_results"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "a3ce929d0e0e4736"
#: Invalid W3C trace ids, by what is wrong with them.
INVALID_TRACE_IDS = {
    "short": "4bf92f3577b34da6a3ce929d0e0e473",
    "long": "4bf92f3577b34da6a3ce929d0e0e47366",
    "non-hex": "4bf92f3577b34da6a3ce929d0e0e47zz",
    "all-zeros": "0" * 32,
}


# ---------------------------------------------------------------------------- receivers


class ScriptedReceiver(OtlpReceiver):
    """An :class:`OtlpReceiver` with two faults the stock one cannot script.

    - ``fail_each``: every *distinct* request body is answered ``fail_status`` (with
      ``Retry-After`` when given) its first ``fail_each`` times, then handled normally; so each
      chunk, however the chunks interleave between workers, must be attempted
      ``fail_each + 1`` times. :attr:`arrivals` keeps each body's arrival times.
    - ``hang_first``: the first ``hang_first`` requests hang for ``hang_s`` seconds and are then
      dropped without an answer (and without accepting their spans): a receiver that is slow
      beyond the client's timeout, then recovers.
    """

    def __init__(
        self,
        *,
        fail_each: int = 0,
        fail_status: int = 503,
        retry_after: str | None = None,
        hang_first: int = 0,
        hang_s: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.fail_each = fail_each
        self.scripted_status = fail_status
        self.scripted_retry_after = retry_after
        self.hang_first = hang_first
        self.hang_s = hang_s
        self.arrivals: dict[bytes, list[float]] = defaultdict(list)
        self._script_lock = threading.Lock()

    def _answer(self, handler: Any, index: int, faults: Faults, method_allowed: bool) -> None:
        body = handler.read_body()
        digest = hashlib.sha256(body).digest()
        with self._script_lock:
            seen = len(self.arrivals[digest])
            self.arrivals[digest].append(time.monotonic())
        if index < self.hang_first:
            time.sleep(self.hang_s)
            self._record(handler, body_size=len(body), decoded_size=0, status=DROPPED)
            handler.reset_connection()
            return
        if seen < self.fail_each:
            self._reply_error(handler, self.scripted_status, "scripted failure", len(body), self.scripted_retry_after)
            return
        # The base class reads the body itself; hand it this one, for this request only (the
        # handler object lives on for the next request on a keep-alive connection).
        handler.read_body = lambda: body
        try:
            super()._answer(handler, index, faults, method_allowed)
        finally:
            del handler.read_body

    def attempts_per_body(self) -> list[int]:
        with self._script_lock:
            return [len(times) for times in self.arrivals.values()]

    def gaps_per_body(self) -> list[list[float]]:
        with self._script_lock:
            return [[b - a for a, b in itertools.pairwise(times)] for times in self.arrivals.values()]


# ---------------------------------------------------------------------------- expected spans


@dataclass(frozen=True)
class Expected:
    """The spans a batch must produce: span id -> custom_id (``batch_results`` for the task span)."""

    by_span_id: dict[str, str]
    trace_id: str

    @property
    def ids(self) -> set[str]:
        return set(self.by_span_id)

    def ids_of(self, custom_ids: Iterable[str]) -> set[str]:
        wanted = set(custom_ids)
        return {span_id for span_id, cid in self.by_span_id.items() if cid in wanted}

    def __len__(self) -> int:
        return len(self.by_span_id)


_GOLDEN: dict[tuple[Any, ...], Expected] = {}


def run_local(
    batch: Batch,
    endpoint: str,
    *,
    hint: TraceHint | None = None,
    workers: int = 0,
    timeout_s: float = 2.0,
    max_spans: int = 10,
    max_bytes: int = 4 << 20,
    max_attempts: int = 4,
    backoff_base_s: float = 0.01,
    backoff_max_s: float = 0.2,
    deadline_s: float = 20.0,
    batch_id: str | None = None,
    with_batch: bool = True,
) -> Summary:
    """``run_batch`` over in-memory copies of ``batch``'s files, with a test-sized delivery policy."""
    return run_batch(
        io.BytesIO(batch.input_bytes()),
        [("output", io.BytesIO(batch.output_bytes())), ("errors", io.BytesIO(batch.errors_bytes()))],
        batch_id=batch_id or batch.batch_id,
        batch=batch.batch_object() if with_batch else None,
        hint=hint or TraceHint(trace_id=TRACE_ID, span_id=PARENT_SPAN_ID),
        otlp=OtlpConfig.resolve(endpoint=endpoint, timeout_s=timeout_s, env={}),
        delivery=DeliveryPolicy(
            max_spans_per_request=max_spans,
            max_request_bytes=max_bytes,
            max_attempts=max_attempts,
            backoff_base_s=backoff_base_s,
            backoff_max_s=backoff_max_s,
            deadline=time.monotonic() + deadline_s,
        ),
        input_name="input",
        workers=workers,
    )


def golden(batch: Batch, *, trace_id: str | None = TRACE_ID, span_id: str | None = PARENT_SPAN_ID) -> Expected:
    """The span set of ``batch`` from a clean run (cached), checked for shape before it is trusted."""
    key = (batch.batch_id, batch.input_bytes(), batch.output_bytes(), batch.errors_bytes(), trace_id, span_id)
    cached = _GOLDEN.get(key)
    if cached is not None:
        return cached
    hint = TraceHint(trace_id=trace_id, span_id=span_id) if trace_id else TraceHint()
    with OtlpReceiver() as rx:
        summary = run_local(batch, rx.endpoint, hint=hint)
        spans = rx.spans
    assert summary.spans_failed == 0 and summary.spans_exported == len(spans), summary
    ids = Counter(s.span_id for s in spans)
    assert all(n == 1 for n in ids.values()), "a clean run sent a span twice"
    by_id = {s.span_id: (BATCH_SPAN if s.name == BATCH_SPAN else s.attributes[CUSTOM_ID]) for s in spans}
    completions = Counter(cid for cid in by_id.values() if cid != BATCH_SPAN)
    assert set(completions) == set(batch.custom_ids) and all(n == 1 for n in completions.values()), (
        "a clean run did not produce one span per custom_id"
    )
    assert sum(1 for cid in by_id.values() if cid == BATCH_SPAN) == 1
    assert {s.trace_id for s in spans} == {summary.trace_id}
    expected = Expected(by_id, str(summary.trace_id))
    _GOLDEN[key] = expected
    return expected


def assert_exactly_once(
    spans: list[ReceivedSpan], expected: Expected, *, missing: Iterable[str] = (), allow_repeats: bool = False
) -> None:
    """Every expected span id arrived once (``missing`` ones not at all), nothing else arrived."""
    missing = set(missing)
    counts = Counter(s.span_id for s in spans)
    repeated = {span_id: n for span_id, n in counts.items() if n > 1}
    assert allow_repeats or not repeated, (
        f"{len(repeated)} span ids arrived more than once: {list(repeated.items())[:5]}"
    )
    arrived = set(counts)
    wanted = expected.ids - missing
    unexpected = arrived - expected.ids
    lost = wanted - arrived
    assert not unexpected, f"{len(unexpected)} unexpected spans arrived"
    assert not lost, f"{len(lost)} expected spans never arrived: {sorted(expected.by_span_id[i] for i in lost)[:10]}"
    assert not (arrived & missing), "spans that should have failed arrived anyway"
    for span in spans:
        want = expected.by_span_id[span.span_id]
        got = BATCH_SPAN if span.name == BATCH_SPAN else span.attributes.get(CUSTOM_ID)
        assert got == want, f"span {span.span_id} is {got!r}, expected {want!r}"
        assert span.trace_id == expected.trace_id


def assert_accounted(summary: Summary | dict[str, Any], expected: Expected, *, failed: int = 0) -> None:
    """The summary counts every span: built = expected, exported + failed = built."""
    data = summary if isinstance(summary, dict) else summary.as_dict()
    assert data["spans_built"] == len(expected), data
    assert data["spans_failed"] == failed, data
    assert data["spans_exported"] == len(expected) - failed, data


# ---------------------------------------------------------------------------- Lambda


def s3_event(bucket: str, key: str, *, version_id: str | None = None, sequencer: str = "0067CE3A29634F1B00") -> dict:
    """An S3 ObjectCreated notification for one object, key URL-encoded as S3 sends it."""
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": 1, "eTag": "0" * 32, "sequencer": sequencer}
    if version_id is not None:
        obj["versionId"] = version_id
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-01-01T01:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:EXAMPLE"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "EXAMPLE", "x-amz-id-2": "EXAMPLE"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "batch-output",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "EXAMPLE"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": obj,
                },
            }
        ]
    }


def eventbridge_event(bucket: str, key: str, *, version_id: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"key": key, "size": 1, "etag": "0" * 32, "sequencer": "0067CE3A29634F1B00"}
    if version_id is not None:
        obj["version-id"] = version_id
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-01-01T01:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": obj,
            "request-id": "EXAMPLE",
            "requester": "123456789012",
            "source-ip-address": "127.0.0.1",
            "reason": "PutObject",
        },
    }


def invoke(app: Any, event: dict[str, Any], context: FakeLambdaContext | None = None) -> dict[str, Any]:
    result = app.lambda_handler(event, context or FakeLambdaContext())
    json.dumps(result)  # what Lambda and Step Functions get must be JSON
    return result  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- CLI


def run_cli(*args: str, endpoint: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """``batchtrace replay ARGS`` in a subprocess, exporting to ``endpoint``."""
    full_env = {**os.environ, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "2"}
    return run_batchtrace("replay", *args, env={**full_env, **env}, timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit 2, one line on stderr naming ``needles``, no traceback, nothing on stdout."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert proc.stdout.strip() == ""
