"""A batch with no result files still gets its ``batch_results`` span: the library call and the handler.

A batch that failed validation, or was cancelled before anything ran, has nothing for the file
pipeline to read, and it is the one a submitter most needs to see. ``log_batch_status`` sends
its span from the batch object alone; the Lambda handler does so for a Step Functions payload
(``{"batch": ..., "bucket", "prefix", ...}`` without ``output_key``), finding the submitting trace
in the batch's ``trace.json`` in S3. The spans are decoded by the real OTLP receiver.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from batchtrace import InputError, InvalidTraceContextError, TraceHint, log_batch_status
from batchtrace.send.delivery import DeliveryPolicy
from batchtrace.send.otlp_config import OtlpConfig
from opentelemetry.sdk.trace import TracerProvider

from tests.functional.assertions import delivered
from tests.support.batches import batch_object, hostile_batch
from tests.support.fixtures import FORMATS
from tests.support.lambda_context import FakeLambdaContext
from tests.support.moto_s3 import BUCKET, MotoServer
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan, unused_port

pytestmark = pytest.mark.timeout(30)

FAILED = json.loads((FORMATS / "openai" / "failed.batch.json").read_text(encoding="utf-8"))
FAILED_ID = FAILED["id"]
#: The ``traceparent`` the submitter kept in the failed batch's metadata.
META_TRACE, META_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
TRACE_ID, SPAN_ID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
CANCELLED_ID = "batch_" + "c" * 24
NS = 1_000_000_000


def cancelled() -> dict[str, Any]:
    batch = batch_object(CANCELLED_ID, "cancelled", total=40, completed=0, failed=0, created_at=1_787_000_000)
    return {**batch, "finalizing_at": None}


def the_span(receiver: OtlpReceiver) -> ReceivedSpan:
    [span] = delivered(receiver, 1)
    assert span.name == "batch_results"
    return span


# --------------------------------------------------------------------------- the library call


def test_a_batch_that_failed_validation_is_an_error_span_in_the_submitters_trace(receiver: OtlpReceiver) -> None:
    """No hint: the span goes under the traceparent the submitter kept in the batch's metadata."""
    summary = log_batch_status(FAILED)
    span = the_span(receiver)
    assert (span.trace_id, span.parent_span_id) == (META_TRACE, META_SPAN)
    assert span.status_code == "ERROR"
    assert span.status_message.startswith("the batch failed validation: line 3: invalid_json_line:")
    attrs = span.attributes
    assert attrs["error.type"] == "batch_failed"
    assert attrs["batchtrace.batch.validation_errors"] == [
        "line 3: invalid_json_line: This line is not parseable as valid JSON.",
        "line 7: model_not_found: The model `gpt-4o-mini-2023` does not exist or you do not have access to it.",
    ]
    assert attrs["batchtrace.batch.status"] == "failed" and attrs["batchtrace.batch_id"] == FAILED_ID
    assert [(e.name, e.time_ns) for e in span.events] == [
        ("batch.created", FAILED["created_at"] * NS),
        ("batch.failed", FAILED["failed_at"] * NS),
    ]
    assert (span.start_ns, span.end_ns) == (FAILED["created_at"] * NS, FAILED["failed_at"] * NS)
    assert (summary.batch_id, summary.trace_id, summary.provider) == (FAILED_ID, META_TRACE, "openai")
    assert (summary.spans_built, summary.spans_exported, summary.spans_failed) == (1, 1, 0)
    assert summary.reconciliation is None, "no files: nothing to reconcile"


def test_a_cancelled_batch_goes_in_the_trace_the_caller_names(receiver: OtlpReceiver) -> None:
    summary = log_batch_status(cancelled(), hint=TraceHint(trace_id=TRACE_ID, span_id=SPAN_ID))
    span = the_span(receiver)
    assert (span.trace_id, span.parent_span_id) == (TRACE_ID, SPAN_ID)
    assert (span.status_code, span.status_message) == ("ERROR", "the batch was cancelled")
    assert [e.name for e in span.events] == [
        "batch.created",
        "batch.in_progress",
        "batch.cancelling",
        "batch.cancelled",
    ]
    assert span.attributes["batchtrace.batch.request_counts.total"] == 40
    assert summary.trace_id == TRACE_ID


def test_a_live_context_becomes_the_parent_of_batch_results(receiver: OtlpReceiver) -> None:
    """With no completions to nest, a caller's span must not swallow the batch's only span."""
    log_batch_status(cancelled(), hint=TraceHint(traceparent=f"00-{TRACE_ID}-{SPAN_ID}-01"))
    span = the_span(receiver)
    assert (span.trace_id, span.parent_span_id) == (TRACE_ID, SPAN_ID)
    receiver.reset()
    tracer = TracerProvider().get_tracer("caller")
    with tracer.start_as_current_span("submit") as caller:
        log_batch_status(cancelled(), hint=TraceHint(use_active_context=True))
    context = caller.get_span_context()
    span = the_span(receiver)
    assert (span.trace_id, span.parent_span_id) == (f"{context.trace_id:032x}", f"{context.span_id:016x}")


def test_the_same_batch_twice_is_the_same_span(receiver: OtlpReceiver) -> None:
    """Step Functions retries the task: the span id derives from the batch, so a retry re-sends it, not a new one."""
    log_batch_status(FAILED)
    log_batch_status(FAILED)
    spans = delivered(receiver, 2)
    assert spans[0].span_id == spans[1].span_id and spans[0].trace_id == spans[1].trace_id


def test_unusable_batches_are_one_clear_error_and_nothing_is_sent(receiver: OtlpReceiver) -> None:
    with pytest.raises(InputError, match="not a batch object or job of a known provider"):
        log_batch_status({"hello": "world"})
    with pytest.raises(InputError, match="has no id"):
        log_batch_status({key: value for key, value in FAILED.items() if key != "id"})
    assert receiver.attempts == 0


def test_an_unreachable_receiver_is_counted_not_raised(receiver: OtlpReceiver) -> None:
    otlp = OtlpConfig.resolve(endpoint=f"http://127.0.0.1:{unused_port()}/v1/traces")
    summary = log_batch_status(FAILED, otlp=otlp, delivery=DeliveryPolicy(max_attempts=1))
    assert (summary.spans_built, summary.spans_exported, summary.spans_failed) == (1, 0, 1)
    assert not summary.delivered_all


# --------------------------------------------------------------------------- the handler


@pytest.fixture
def handler(moto: MotoServer, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "batchtrace")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    yield importlib.reload(sys.modules["app"]) if "app" in sys.modules else importlib.import_module("app")


def state_machine_payload(batch: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """What LogFailedBatch hands the function: the state machine's whole state."""
    return {
        "batch_id": batch["id"],
        "bucket": BUCKET,
        "prefix": "batches/",
        "poll_interval_seconds": 300,
        "batch": {"status": batch["status"], "object": batch},
        **extra,
    }


def test_the_handler_logs_a_failed_batch_in_the_trace_stored_with_it(
    handler: ModuleType, s3: Any, receiver: OtlpReceiver
) -> None:
    """trace.json in the batch's folder wins over the batch's own metadata, as for a batch with files."""
    trace_doc = {"trace_id": TRACE_ID, "span_id": SPAN_ID}
    s3.put_object(Bucket=BUCKET, Key=f"batches/{FAILED_ID}/trace.json", Body=json.dumps(trace_doc).encode())
    summary = handler.lambda_handler(state_machine_payload(FAILED), FakeLambdaContext())
    json.dumps(summary)
    span = the_span(receiver)
    assert (span.trace_id, span.parent_span_id) == (TRACE_ID, SPAN_ID)
    assert span.status_code == "ERROR" and span.attributes["error.type"] == "batch_failed"
    assert (summary["batch_id"], summary["trace_id"], summary["spans_exported"]) == (FAILED_ID, TRACE_ID, 1)


def test_the_handler_reads_the_input_metadata_or_the_payloads_own_trace_ids(
    handler: ModuleType, s3: Any, receiver: OtlpReceiver
) -> None:
    s3.put_object(
        Bucket=BUCKET,
        Key=f"batches/{CANCELLED_ID}/input.jsonl",
        Body=b"{}\n",
        Metadata={"trace-id": TRACE_ID, "span-id": SPAN_ID},
    )
    handler.lambda_handler(state_machine_payload(cancelled()), FakeLambdaContext())
    assert (the_span(receiver).trace_id, the_span(receiver).parent_span_id) == (TRACE_ID, SPAN_ID)
    receiver.reset()
    payload = state_machine_payload(cancelled(), trace_id=META_TRACE, span_id=META_SPAN)
    handler.lambda_handler(payload, FakeLambdaContext())
    assert (the_span(receiver).trace_id, the_span(receiver).parent_span_id) == (META_TRACE, META_SPAN)


def test_a_bare_batch_object_without_a_bucket_is_enough(handler: ModuleType, receiver: OtlpReceiver) -> None:
    summary = handler.lambda_handler({"batch": FAILED}, FakeLambdaContext())
    assert the_span(receiver).trace_id == META_TRACE and summary["spans_exported"] == 1


@pytest.mark.parametrize(
    ("payload", "error", "needle"),
    [
        ({"batch": "failed"}, InputError, "must be the provider's batch object"),
        ({"batch": {"hello": "world"}}, InputError, "not a batch object or job of a known provider"),
        ({"batch": FAILED, "bucket": 7}, InputError, "'bucket' must be a string"),
        ({"batch": FAILED, "traceparent": "00-zz-01"}, InvalidTraceContextError, "invalid traceparent"),
    ],
    ids=["not-an-object", "unknown-shape", "bad-bucket", "bad-traceparent"],
)
def test_bad_payloads_raise_one_typed_line(
    handler: ModuleType, receiver: OtlpReceiver, payload: dict[str, Any], error: type[Exception], needle: str
) -> None:
    with pytest.raises(error, match=needle):
        handler.lambda_handler(payload, FakeLambdaContext())
    assert receiver.attempts == 0


# --------------------------------------------------------------------------- batch.json beside the output


def test_batch_json_beside_the_output_gives_batch_results_its_timeline(
    handler: ModuleType, s3: Any, receiver: OtlpReceiver
) -> None:
    """Whoever copies the files writes the finished batch object beside them; it wins over trace.json's."""
    batch = hostile_batch(n=30, seed=5)
    folder = f"batches/{batch.batch_id}"
    stale = {**batch.batch_object(), "status": "validating", "in_progress_at": None, "completed_at": None}
    key = batch.upload(s3, BUCKET, folder, trace_doc={"trace_id": TRACE_ID, "batch": stale})
    finished = batch.batch_object()
    s3.put_object(Bucket=BUCKET, Key=f"{folder}/batch.json", Body=json.dumps(finished).encode())
    summary = handler.lambda_handler({"bucket": BUCKET, "output_key": key}, FakeLambdaContext())
    [span] = [s for s in delivered(receiver, summary["spans_built"]) if s.name == "batch_results"]
    assert span.attributes["batchtrace.batch.status"] == "completed"
    assert [e.name for e in span.events] == [
        "batch.created",
        "batch.in_progress",
        "batch.finalizing",
        "batch.completed",
    ]
    assert span.start_ns == finished["created_at"] * NS
    assert summary["reconciliation"]["source"] == "request_counts"
    assert boto3.client("s3").head_object(Bucket=BUCKET, Key=f"{folder}/batch.json")
