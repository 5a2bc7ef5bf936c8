"""The hostile batch through the library call, ``log_batch_results(requests, results, trace_id=None)``.

In-process, against a real OTLP receiver: inside a caller's span (completions nest under it),
with a stored trace id (under a ``batch_results`` span in that trace) and with neither (a new
trace), plus determinism and the delivery failures the library must raise.
"""

from __future__ import annotations

import time

import pytest
from batchtrace import DeliveryError, DeliveryPolicy, InvalidTraceContextError, log_batch_results
from opentelemetry.sdk.trace import TracerProvider

from tests.functional.assertions import assert_batch_delivered, assert_summary, delivered
from tests.support.batches import Batch, hostile_batch
from tests.support.otlp_receiver import OtlpReceiver, unused_port

pytestmark = pytest.mark.timeout(30)

TRACE_ID = "5b8efff798038103d269b633813fc60c"
FAST_FAIL = DeliveryPolicy(max_attempts=2, backoff_base_s=0.05)


@pytest.fixture(scope="module")
def batch() -> Batch:
    return hostile_batch()


def test_inside_an_active_span_completions_nest_under_it(receiver: OtlpReceiver, batch: Batch) -> None:
    tracer = TracerProvider().get_tracer("caller")
    with tracer.start_as_current_span("submit nightly batch") as caller:
        ctx = caller.get_span_context()
        summary = log_batch_results(batch.input_lines, batch.library_results())
    trace_id, span_id = f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"

    assert_summary(summary.as_dict(), batch, mode="active", trace_id=trace_id)
    spans = delivered(receiver, len(batch.fates))
    assert_batch_delivered(spans, batch, trace_id=trace_id, parent_span_id=span_id, mode="active")


def test_an_active_span_wins_over_a_trace_id(receiver: OtlpReceiver, batch: Batch) -> None:
    """The seed's priority: an active context first, a stored trace id second."""
    tracer = TracerProvider().get_tracer("caller")
    with tracer.start_as_current_span("caller") as caller:
        ctx = caller.get_span_context()
        log_batch_results(batch.input_lines, batch.library_results(), TRACE_ID)
    spans = delivered(receiver, len(batch.fates))
    assert_batch_delivered(
        spans, batch, trace_id=f"{ctx.trace_id:032x}", parent_span_id=f"{ctx.span_id:016x}", mode="active"
    )


def test_with_a_trace_id_completions_go_under_batch_results_in_that_trace(receiver: OtlpReceiver, batch: Batch) -> None:
    summary = log_batch_results(batch.input_lines, batch.library_results(), trace_id=TRACE_ID)

    assert_summary(summary.as_dict(), batch, mode="explicit", trace_id=TRACE_ID)
    spans = delivered(receiver, len(batch.fates) + 1)
    assert_batch_delivered(spans, batch, trace_id=TRACE_ID, parent_span_id=None, mode="explicit")


def test_batch_id_and_batch_object_are_used(receiver: OtlpReceiver, batch: Batch) -> None:
    summary = log_batch_results(
        batch.input_lines, batch.library_results(), TRACE_ID, batch=batch.trace_doc(TRACE_ID)["batch"]
    )
    assert_summary(summary.as_dict(), batch, mode="explicit", trace_id=TRACE_ID, batch_id=batch.batch_id)
    spans = delivered(receiver, len(batch.fates) + 1)
    assert_batch_delivered(
        spans, batch, trace_id=TRACE_ID, mode="explicit", batch_id=batch.batch_id, lifecycle_known=True
    )


def test_without_context_or_trace_id_a_new_trace(receiver: OtlpReceiver, batch: Batch) -> None:
    summary = log_batch_results(batch.input_lines, batch.library_results())

    assert summary.trace_id and summary.trace_id != TRACE_ID
    assert_summary(summary.as_dict(), batch, mode="new")
    spans = delivered(receiver, len(batch.fates) + 1)
    assert_batch_delivered(spans, batch, trace_id=summary.trace_id, mode="new")


@pytest.mark.parametrize("trace_id", [None, TRACE_ID], ids=["new-trace", "trace-id"])
def test_a_rerun_sends_identical_span_ids(receiver: OtlpReceiver, batch: Batch, trace_id: str | None) -> None:
    first = log_batch_results(batch.input_lines, batch.library_results(), trace_id)
    spans = delivered(receiver, len(batch.fates) + 1)
    receiver.reset()
    second = log_batch_results(batch.input_lines, batch.library_results(), trace_id)
    again = delivered(receiver, len(batch.fates) + 1)

    assert first.trace_id == second.trace_id
    assert sorted((s.trace_id, s.span_id, s.parent_span_id) for s in spans) == sorted(
        (s.trace_id, s.span_id, s.parent_span_id) for s in again
    )


def test_an_invalid_trace_id_is_refused_before_anything_is_sent(receiver: OtlpReceiver, batch: Batch) -> None:
    with pytest.raises(InvalidTraceContextError, match="trace id"):
        log_batch_results(batch.input_lines, batch.library_results(), trace_id="not-a-trace-id")
    assert receiver.attempts == 0


def test_receiver_down_raises_delivery_error_with_the_counts(monkeypatch: pytest.MonkeyPatch, batch: Batch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://127.0.0.1:{unused_port()}/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        log_batch_results(batch.input_lines, batch.library_results(), TRACE_ID, delivery=FAST_FAIL)
    assert time.monotonic() - started < 10
    summary = caught.value.summary
    assert_summary(summary.as_dict(), batch, mode="explicit", trace_id=TRACE_ID, delivered=False)
    assert (summary.spans_exported, summary.spans_failed) == (0, len(batch.fates) + 1)
    assert "\n" not in str(caught.value)


def test_receiver_rejecting_everything_raises_delivery_error(receiver: OtlpReceiver, batch: Batch) -> None:
    receiver.set_faults(always_status=400)
    with pytest.raises(DeliveryError) as caught:
        log_batch_results(batch.input_lines, batch.library_results(), delivery=FAST_FAIL)
    assert caught.value.summary.spans_exported == 0
    assert caught.value.summary.spans_failed == len(batch.fates) + 1
    assert receiver.spans == []


def test_forked_workers_send_the_same_spans_as_inline(receiver: OtlpReceiver, batch: Batch) -> None:
    """Small chunks over two forked workers: complete, linked and identical to the inline run."""
    policy = DeliveryPolicy(max_spans_per_request=17)
    inline = log_batch_results(batch.input_lines, batch.library_results(), TRACE_ID, delivery=policy, workers=0)
    spans = delivered(receiver, len(batch.fates) + 1)
    receiver.reset()
    forked = log_batch_results(batch.input_lines, batch.library_results(), TRACE_ID, delivery=policy, workers=2)
    again = delivered(receiver, len(batch.fates) + 1)

    assert_summary(forked.as_dict(), batch, mode="explicit", trace_id=TRACE_ID)
    assert forked.input_tokens == inline.input_tokens
    assert_batch_delivered(again, batch, trace_id=TRACE_ID, mode="explicit")
    assert len(receiver.requests) > 2
    # Times of spans without a response (errors, no result) are the time of processing: not compared.
    key = lambda s: (s.span_id, s.parent_span_id, s.name, s.status_code, s.attributes.get("error.type"))  # noqa: E731
    assert sorted(map(key, again)) == sorted(map(key, spans))
