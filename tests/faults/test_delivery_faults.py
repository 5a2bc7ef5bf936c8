"""Delivery under injected faults: every expected span arrives exactly once, or the run says how many did not.

The core (``run_batch``) runs both inline (``workers=0``) and with forked span workers
(``workers=2``), against receivers on 127.0.0.1 that fail the first N requests, fail every chunk
N times, answer 429 with ``Retry-After``, 413 above a body size, hang, or are not there at all.
The CLI and the Lambda handler are checked for how they surface what the core reports.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from batchtrace import DeliveryError, TraceHint, log_batch_results
from batchtrace.send.workers import ChunkWorker

from tests.faults.helpers import (
    PARENT_SPAN_ID,
    TRACE_ID,
    Expected,
    FakeLambdaContext,
    ScriptedReceiver,
    assert_accounted,
    assert_exactly_once,
    golden,
    invoke,
    run_cli,
    run_local,
    s3_event,
)
from tests.support.batches import Batch, fault_batch
from tests.support.moto_s3 import BUCKET
from tests.support.otlp_receiver import DROPPED, OtlpReceiver, unused_port

pytestmark = pytest.mark.timeout(30)

WORKERS = pytest.mark.parametrize("workers", [0, 2], ids=["inline", "forked"])
#: With 10 spans per request, the 60-request batch goes out in 6 chunks, then the batch span.
MAX_SPANS = 10
BIG_INDEX = 4  # req-0004 (a 200 result) gets a prompt too big for a picky receiver
BIG_CUSTOM_ID = f"req-{BIG_INDEX:04d}"


@pytest.fixture(scope="module")
def batch() -> Batch:
    return fault_batch(60)


@pytest.fixture(scope="module")
def expected(batch: Batch) -> Expected:
    return golden(batch)


@pytest.fixture(scope="module")
def big_batch(batch: Batch) -> Batch:
    """The batch with one span (~30 kB encoded) larger than a 20 kB receiver limit; the rest ~1.5 kB."""
    return batch.with_long_prompt(BIG_CUSTOM_ID, 15_000)


def accepted_requests(rx: OtlpReceiver) -> int:
    return sum(1 for r in rx.requests if 200 <= r.status < 300)


# ---------------------------------------------------------------------------- healthy: the reference


@WORKERS
def test_a_healthy_run_twice_sends_the_same_set_once_each_time(
    rx: OtlpReceiver, batch: Batch, expected: Expected, workers: int
) -> None:
    first = run_local(batch, rx.endpoint, workers=workers, max_spans=MAX_SPANS)
    assert_exactly_once(rx.spans, expected)
    assert_accounted(first, expected)
    assert accepted_requests(rx) == rx.attempts == 7  # 6 chunks + the batch span, no retries

    rx.reset()
    second = run_local(batch, rx.endpoint, workers=workers, max_spans=MAX_SPANS)
    assert_exactly_once(rx.spans, expected)  # deterministic ids: the very same set again
    assert_accounted(second, expected)


# ---------------------------------------------------------------------------- retryable failures


@WORKERS
def test_every_chunk_failing_twice_is_attempted_three_times_and_arrives_once(
    batch: Batch, expected: Expected, workers: int
) -> None:
    with ScriptedReceiver(fail_each=2, fail_status=503) as rx:
        summary = run_local(batch, rx.endpoint, workers=workers, max_spans=MAX_SPANS, max_attempts=3)
        assert_exactly_once(rx.spans, expected)
        assert_accounted(summary, expected)
        assert rx.attempts_per_body() == [3] * 7, "each chunk (and the batch span) needs exactly 3 attempts"
        assert rx.attempts == 21


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_each_retryable_status_is_retried(batch: Batch, expected: Expected, status: int) -> None:
    with ScriptedReceiver(fail_each=1, fail_status=status) as rx:
        summary = run_local(batch, rx.endpoint, max_spans=MAX_SPANS, max_attempts=2)
        assert_exactly_once(rx.spans, expected)
        assert_accounted(summary, expected)
        assert rx.attempts_per_body() == [2] * 7


@WORKERS
def test_retries_exhausted_fail_loudly_with_the_count(batch: Batch, expected: Expected, workers: int) -> None:
    with ScriptedReceiver(fail_each=3, fail_status=500) as rx:
        summary = run_local(batch, rx.endpoint, workers=workers, max_spans=MAX_SPANS, max_attempts=3)
        assert rx.spans == []
        attempts = rx.attempts_per_body()
        assert len(attempts) == 7 and max(attempts) == 3 and min(attempts) >= 1, attempts
    assert_accounted(summary, expected, failed=len(expected))
    assert any("500" in reason for reason in summary.failure_reasons), summary.failure_reasons
    assert f"{len(expected)} of {len(expected)} spans not delivered" in summary.failure_reason()


def test_a_non_retryable_status_fails_the_chunk_at_once(batch: Batch, expected: Expected) -> None:
    with OtlpReceiver(always_status=400) as rx:
        summary = run_local(batch, rx.endpoint, max_spans=MAX_SPANS, max_attempts=5)
        assert rx.spans == []
        assert rx.attempts == 7, "400 is the client's fault: retrying cannot help"
    assert_accounted(summary, expected, failed=len(expected))


@WORKERS
def test_first_requests_failing_cost_one_retry_each(
    rx: OtlpReceiver, batch: Batch, expected: Expected, workers: int
) -> None:
    rx.set_faults(fail_first=2, fail_status=503)
    summary = run_local(batch, rx.endpoint, workers=workers, max_spans=MAX_SPANS, max_attempts=3)
    assert_exactly_once(rx.spans, expected)
    assert_accounted(summary, expected)
    assert rx.statuses().count(503) == 2
    assert rx.attempts == accepted_requests(rx) + 2 == 9


def test_a_chunk_is_retried_even_after_an_earlier_chunk_used_every_attempt(
    rx: OtlpReceiver, batch: Batch, expected: Expected
) -> None:
    """Once a chunk has used every attempt the sender fails fast, but a receiver that recovers is still caught.

    (Regression: later chunks used to get a single attempt, so chunk 2 was lost here too.)
    """
    rx.set_faults(fail_first=4, fail_status=503)  # chunk 1: 3 failed attempts; chunk 2: its first attempt fails
    summary = run_local(batch, rx.endpoint, max_spans=MAX_SPANS, max_attempts=3)
    arrived = rx.span_ids()
    assert len(arrived) == len(set(arrived)) and set(arrived) <= expected.ids
    assert summary.spans_failed == MAX_SPANS, "only the chunk that used every attempt may be lost"
    assert len(arrived) == len(expected) - MAX_SPANS


@WORKERS
def test_dropped_connections_are_retried(rx: OtlpReceiver, batch: Batch, expected: Expected, workers: int) -> None:
    rx.set_faults(drop_connection_first=3)
    summary = run_local(batch, rx.endpoint, workers=workers, max_spans=MAX_SPANS, max_attempts=4)
    assert_exactly_once(rx.spans, expected)
    assert_accounted(summary, expected)
    assert rx.statuses().count(DROPPED) == 3
    assert rx.attempts == accepted_requests(rx) + 3


def test_backoff_grows_exponentially(batch: Batch, expected: Expected) -> None:
    """Delays between attempts of one chunk: base * 2**n * jitter in [0.5, 1], never shorter."""
    with ScriptedReceiver(fail_each=3, fail_status=503) as rx:
        summary = run_local(batch, rx.endpoint, max_spans=1000, max_attempts=4, backoff_base_s=0.1, backoff_max_s=1.0)
        assert_exactly_once(rx.spans, expected)
        gaps = rx.gaps_per_body()
    assert_accounted(summary, expected)
    assert len(gaps) == 2  # one chunk, then the batch span
    for first, second, third in gaps:
        assert first >= 0.05 and second >= 0.1 and third >= 0.2, gaps
        assert third > first, gaps
        assert first + second + third < 3.0, gaps


# ---------------------------------------------------------------------------- 429 and Retry-After


def test_429_retry_after_is_honoured(batch: Batch, expected: Expected) -> None:
    with ScriptedReceiver(fail_each=1, fail_status=429, retry_after="1") as rx:
        summary = run_local(batch, rx.endpoint, max_spans=1000, max_attempts=3, backoff_max_s=0.5)
        assert_exactly_once(rx.spans, expected)
        gaps = rx.gaps_per_body()
    assert_accounted(summary, expected)
    assert all(g[0] >= 0.95 for g in gaps), f"the retry came before Retry-After: {gaps}"


def test_429_retry_after_longer_than_the_backoff_cap_is_still_honoured(batch: Batch, expected: Expected) -> None:
    """(Regression: a Retry-After used to be cut to 4 * backoff_max_s, here 0.8 s.)"""
    with ScriptedReceiver(fail_each=1, fail_status=429, retry_after="1") as rx:
        summary = run_local(batch, rx.endpoint, max_spans=1000, max_attempts=3, backoff_max_s=0.2)
        assert_exactly_once(rx.spans, expected)
        gaps = rx.gaps_per_body()
    assert_accounted(summary, expected)
    assert all(g[0] >= 0.95 for g in gaps), f"the retry came before Retry-After: {gaps}"


@WORKERS
def test_429_with_retry_after_beyond_the_deadline_fails_at_once(batch: Batch, expected: Expected, workers: int) -> None:
    with OtlpReceiver(always_status=429, retry_after="30") as rx:
        started = time.monotonic()
        summary = run_local(
            batch, rx.endpoint, workers=workers, max_spans=MAX_SPANS, backoff_max_s=30, deadline_s=3, max_attempts=5
        )
        elapsed = time.monotonic() - started
        assert rx.spans == []
    assert elapsed < 3.0, "waiting out a Retry-After past the deadline is pointless"
    assert_accounted(summary, expected, failed=len(expected))
    assert rx.attempts == 7, "one attempt per chunk: the retry would land after the deadline"


def test_an_absurd_retry_after_fails_the_chunk_instead_of_waiting(batch: Batch, expected: Expected) -> None:
    with OtlpReceiver(always_status=429, retry_after="3600") as rx:
        started = time.monotonic()
        summary = run_local(batch, rx.endpoint, max_spans=1000, backoff_max_s=30, deadline_s=7200, max_attempts=5)
        assert time.monotonic() - started < 3
        assert rx.spans == []
    assert_accounted(summary, expected, failed=len(expected))
    assert any("Retry-After" in reason for reason in summary.failure_reasons), summary.failure_reasons


# ---------------------------------------------------------------------------- 413


@WORKERS
def test_413_splits_the_chunk_and_every_span_arrives_once(batch: Batch, expected: Expected, workers: int) -> None:
    limit = 4_000  # a 10-span chunk is ~15 kB, one span ~1.5 kB
    with OtlpReceiver(max_body_bytes=limit) as rx:
        summary = run_local(batch, rx.endpoint, workers=workers, max_spans=MAX_SPANS)
        assert_exactly_once(rx.spans, expected)
        requests = rx.requests
    assert_accounted(summary, expected)
    assert sum(1 for r in requests if r.status == 413) >= 6, "every 10-span chunk is over the limit"
    assert all(r.decoded_size <= limit for r in requests if r.status == 200)


@WORKERS
def test_a_span_larger_than_the_receiver_accepts_fails_alone(big_batch: Batch, workers: int) -> None:
    expected = golden(big_batch)
    with OtlpReceiver(max_body_bytes=20_000) as rx:
        summary = run_local(big_batch, rx.endpoint, workers=workers, max_spans=MAX_SPANS)
        assert_exactly_once(rx.spans, expected, missing=expected.ids_of({BIG_CUSTOM_ID}))
    assert_accounted(summary, expected, failed=1)
    assert any("413" in reason for reason in summary.failure_reasons), summary.failure_reasons


def test_library_raises_delivery_error_for_the_oversized_span(big_batch: Batch) -> None:
    from batchtrace import DeliveryPolicy, OtlpConfig

    expected = golden(big_batch, span_id=None)
    requests = big_batch.input_lines
    results = big_batch.output_lines + big_batch.error_lines
    with OtlpReceiver(max_body_bytes=20_000) as rx:
        with pytest.raises(DeliveryError) as caught:
            log_batch_results(
                requests,
                results,
                TRACE_ID,
                batch_id=big_batch.batch_id,
                batch=big_batch.batch_object(),
                otlp=OtlpConfig.resolve(endpoint=rx.endpoint, timeout_s=2, env={}),
                delivery=DeliveryPolicy(max_spans_per_request=MAX_SPANS, backoff_base_s=0.01, backoff_max_s=0.2),
                workers=0,
            )
        assert_exactly_once(rx.spans, expected, missing=expected.ids_of({BIG_CUSTOM_ID}))
    assert caught.value.summary.spans_failed == 1
    assert f"1 of {len(expected)} spans not delivered" in str(caught.value)


def test_cli_exits_1_and_counts_the_oversized_span(big_batch: Batch, tmp_path: Path) -> None:
    expected = golden(big_batch, span_id=None)
    paths = big_batch.write(tmp_path)
    with OtlpReceiver(max_body_bytes=20_000) as rx:
        proc = run_cli(
            *paths.cli_args(),
            "--trace-id", TRACE_ID, "--batch-id", big_batch.batch_id,
            endpoint=rx.endpoint,
        )  # fmt: skip
        assert_exactly_once(rx.spans, expected, missing=expected.ids_of({BIG_CUSTOM_ID}))
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    assert_accounted(summary, expected, failed=1)
    assert f"1 of {len(expected)} spans not delivered" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_retries_and_exits_0(batch: Batch, tmp_path: Path) -> None:
    expected = golden(batch, span_id=None)
    paths = batch.write(tmp_path)
    with OtlpReceiver(fail_first=2, fail_status=503) as rx:
        proc = run_cli(
            *paths.cli_args(),
            "--trace-id", TRACE_ID, "--batch-id", batch.batch_id,
            endpoint=rx.endpoint,
        )  # fmt: skip
        assert_exactly_once(rx.spans, expected)
        assert rx.attempts == accepted_requests(rx) + 2
    assert proc.returncode == 0, proc.stderr
    assert_accounted(json.loads(proc.stdout), expected)


def test_a_forked_worker_dying_mid_batch_loses_only_what_it_held(
    rx: OtlpReceiver, batch: Batch, expected: Expected, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker 0 is killed on its first chunk: only its chunks are lost, the live worker sends the rest once.

    Chunks are cut in output-file order and the first one goes to worker 0, so the custom_id on
    the first output line picks the victim. Worker 0 holds at most ``depth`` (2) chunks when it
    dies, plus one sent before its death is seen: at most 3 chunks may be lost. (Regression: the
    dead worker kept winning the pick, so run_batch raised RuntimeError or lost 54 of 61 spans.)
    """
    chunk = 3  # 20 chunks: plenty of submits after the death
    victim = batch.output_lines[0]["custom_id"]
    marker = json.dumps(victim).encode()
    parent = os.getpid()
    original = ChunkWorker.__call__

    def dies_on_one_chunk(self: ChunkWorker, items: list[Any]) -> Any:
        requests = [self.read_request(item[0]) for item in items if item[0] is not None]
        if os.getpid() != parent and any(marker in request for request in requests):
            os._exit(3)
        return original(self, items)

    monkeypatch.setattr(ChunkWorker, "__call__", dies_on_one_chunk)
    summary = run_local(batch, rx.endpoint, workers=2, max_spans=chunk)
    arrived = rx.span_ids()
    assert len(arrived) == len(set(arrived)) and set(arrived) <= expected.ids
    assert summary.spans_built == len(expected)
    assert summary.spans_exported == len(arrived) == len(expected) - summary.spans_failed
    assert expected.ids_of({victim}).isdisjoint(arrived)
    assert any("died" in reason for reason in summary.failure_reasons), summary.failure_reasons
    assert chunk <= summary.spans_failed <= 3 * chunk, f"{summary.spans_failed} spans lost to one dead worker"


def test_cli_with_the_receiver_down_stops_at_max_time_and_exits_1(batch: Batch, tmp_path: Path) -> None:
    expected = golden(batch, span_id=None)
    paths = batch.write(tmp_path)
    started = time.monotonic()
    proc = run_cli(
        *paths.cli_args(),
        "--trace-id", TRACE_ID, "--batch-id", batch.batch_id, "--max-time", "2",
        endpoint=f"http://127.0.0.1:{unused_port()}/v1/traces",
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr
    assert elapsed < 8, f"--max-time 2 took {elapsed:.1f} s (interpreter start included)"
    assert_accounted(json.loads(proc.stdout), expected, failed=len(expected))
    assert f"{len(expected)} of {len(expected)} spans not delivered" in proc.stderr
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------- down, slow, deadline


@WORKERS
def test_receiver_down_counts_every_span_failed(batch: Batch, expected: Expected, workers: int) -> None:
    endpoint = f"http://127.0.0.1:{unused_port()}/v1/traces"
    started = time.monotonic()
    summary = run_local(batch, endpoint, workers=workers, max_spans=MAX_SPANS, max_attempts=3)
    assert time.monotonic() - started < 5
    assert_accounted(summary, expected, failed=len(expected))
    assert summary.failure_reasons, "the summary says why"


@WORKERS
def test_the_deadline_stops_retrying(batch: Batch, expected: Expected, workers: int) -> None:
    endpoint = f"http://127.0.0.1:{unused_port()}/v1/traces"
    started = time.monotonic()
    summary = run_local(
        batch, endpoint, workers=workers, max_spans=MAX_SPANS, max_attempts=1000, backoff_base_s=0.05, deadline_s=1.5
    )
    elapsed = time.monotonic() - started
    assert elapsed < 2.5, f"ran {elapsed:.1f} s past a 1.5 s deadline"
    assert_accounted(summary, expected, failed=len(expected))
    assert any("deadline" in reason for reason in summary.failure_reasons), summary.failure_reasons


@WORKERS
def test_a_slow_receiver_within_the_timeout_gets_everything_once(
    batch: Batch, expected: Expected, workers: int
) -> None:
    with OtlpReceiver(delay_s=0.3) as rx:
        summary = run_local(batch, rx.endpoint, workers=workers, max_spans=30, timeout_s=2)
        assert_exactly_once(rx.spans, expected)
        assert rx.attempts == 3
    assert_accounted(summary, expected)


@WORKERS
def test_requests_hanging_past_the_timeout_are_retried(batch: Batch, expected: Expected, workers: int) -> None:
    with ScriptedReceiver(hang_first=2, hang_s=1.0) as rx:
        summary = run_local(batch, rx.endpoint, workers=workers, max_spans=MAX_SPANS, timeout_s=0.3, max_attempts=3)
        assert_exactly_once(rx.spans, expected)
        assert rx.statuses().count(DROPPED) <= 2
        assert accepted_requests(rx) == 7
    assert_accounted(summary, expected)


@WORKERS
def test_a_receiver_slower_than_the_timeout_fails_by_the_deadline(
    batch: Batch, expected: Expected, workers: int
) -> None:
    with OtlpReceiver(delay_s=1.0, always_status=503) as rx:
        started = time.monotonic()
        summary = run_local(
            batch, rx.endpoint, workers=workers, max_spans=MAX_SPANS, timeout_s=0.3, max_attempts=100, deadline_s=2
        )
        elapsed = time.monotonic() - started
        assert rx.spans == []
    assert elapsed < 3.0, f"ran {elapsed:.1f} s past a 2 s deadline"
    assert_accounted(summary, expected, failed=len(expected))


def test_late_acceptance_after_a_timeout_is_reported_failed_and_sends_nothing_foreign(
    batch: Batch, expected: Expected
) -> None:
    """The receiver accepts after the client gave up: the run cannot know, so it says "failed".

    What arrived is still only the expected spans (a retry re-sends identical ids, so a backend
    that deduplicates by span id sees each once).
    """
    with OtlpReceiver(delay_s=0.6) as rx:
        summary = run_local(
            batch, rx.endpoint, max_spans=1000, timeout_s=0.2, max_attempts=2, backoff_base_s=0.01, deadline_s=5
        )
        time.sleep(0.1)  # every attempt has reached the receiver; its handlers are still sleeping
        assert rx.wait_for_requests(rx.attempts, timeout=5)  # let the late handlers record what they accepted
        assert_exactly_once(rx.spans, expected, allow_repeats=True, missing=set())
    assert_accounted(summary, expected, failed=len(expected))


# ---------------------------------------------------------------------------- the Lambda handler


def _upload(s3: Any, batch: Batch) -> str:
    return batch.upload(s3, BUCKET, f"batches/{batch.batch_id}", trace_doc=batch.trace_doc(TRACE_ID, PARENT_SPAN_ID))


def test_handler_with_the_receiver_down_raises_delivery_error_before_lambda_would_kill_it(
    s3: Any, load_app: Any, batch: Batch, expected: Expected
) -> None:
    key = _upload(s3, batch)
    app = load_app(f"http://127.0.0.1:{unused_port()}/v1/traces")
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        invoke(app, s3_event(BUCKET, key), FakeLambdaContext(remaining_ms=20_000))  # margin 15 s: 5 s to deliver
    elapsed = time.monotonic() - started
    assert elapsed < 6.0, f"the handler ran {elapsed:.1f} s of a 5 s budget"
    n = len(expected)
    assert f"{n} of {n} spans not delivered" in str(caught.value)
    assert_accounted(caught.value.summary, expected, failed=n)


def test_handler_oversized_span_raises_after_delivering_the_rest(s3: Any, load_app: Any, big_batch: Batch) -> None:
    expected = golden(big_batch)
    key = _upload(s3, big_batch)
    with OtlpReceiver(max_body_bytes=20_000) as rx:
        app = load_app(rx.endpoint)
        with pytest.raises(DeliveryError) as caught:
            invoke(app, s3_event(BUCKET, key))
        assert_exactly_once(rx.spans, expected, missing=expected.ids_of({BIG_CUSTOM_ID}))
    assert caught.value.summary.spans_failed == 1
    assert f"1 of {len(expected)} spans not delivered" in str(caught.value)


def test_handler_flaky_receiver_delivers_everything_once(
    s3: Any, load_app: Any, batch: Batch, expected: Expected
) -> None:
    key = _upload(s3, batch)
    with ScriptedReceiver(fail_each=1, fail_status=503) as rx:
        app = load_app(rx.endpoint)
        summary = invoke(app, s3_event(BUCKET, key))
        assert_exactly_once(rx.spans, expected)
        assert rx.attempts_per_body() == [2, 2]  # one chunk and the batch span, each retried once
    assert_accounted(summary, expected)


def test_hint_default_matches_golden_for_a_new_trace(rx: OtlpReceiver, batch: Batch) -> None:
    """Sanity check of the helper: without any trace id the new trace is the same on every run."""
    expected = golden(batch, trace_id=None, span_id=None)
    run_local(batch, rx.endpoint, hint=TraceHint())
    assert_exactly_once(rx.spans, expected)
