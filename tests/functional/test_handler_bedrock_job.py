"""A Bedrock batch inference job's state change reaching the Lambda handler, as EventBridge sends it.

The event is ``events/eventbridge-bedrock-job-state-change.json``; the handler reads the job from
a fake Bedrock control plane on 127.0.0.1 (``tests/support/fake_bedrock.py``, boto3 through
``AWS_ENDPOINT_URL_BEDROCK``), lists the job's outputs in moto S3 and sends to a real OTLP
receiver. A completed job whose records are in two ``.jsonl.out`` files is one batch; a failed
job with no outputs still gets its ``batch_results`` span, in ERROR with Bedrock's message.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from tests.functional.assertions import delivered
from tests.support.fake_bedrock import FakeBedrock
from tests.support.fixtures import FORMATS
from tests.support.lambda_context import FakeLambdaContext, load_function
from tests.support.moto_s3 import MotoServer
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = FORMATS / "bedrock"
EVENT = json.loads((ROOT / "events" / "eventbridge-bedrock-job-state-change.json").read_text(encoding="utf-8"))
JOB_ARN = EVENT["detail"]["batchJobArn"]
JOB_ID = JOB_ARN.rsplit("/", 1)[-1]
MODEL_ARN = EVENT["detail"]["batchModelId"]
MODEL_ID = MODEL_ARN.split("/", 1)[1]
BUCKET = "batchtrace-demo"
OUTPUT_PREFIX = "bedrock-output/"
FOLDER = f"{OUTPUT_PREFIX}{JOB_ID}/"
SUBMITTER_TRACE = "5b8efff798038103d269b633813fc60c"
SUBMITTER_SPAN = "eee19b7ec3c1b174"
TRACEPARENT = f"00-{SUBMITTER_TRACE}-{SUBMITTER_SPAN}-01"
FAILURE = "Permission denied: the service role cannot read s3://batchtrace-demo/bedrock-input/calls.jsonl"


def job(status: str = "Completed", **changes: Any) -> dict[str, Any]:
    """A GetModelInvocationJob response, as Bedrock sends it (times as ISO strings)."""
    return {
        "jobArn": JOB_ARN,
        "jobName": EVENT["detail"]["batchJobName"],
        "modelId": MODEL_ARN,
        "roleArn": "arn:aws:iam::123456789012:role/BedrockBatchInferenceRole",
        "status": status,
        "submitTime": "2026-08-17T21:52:03.118Z",
        "lastModifiedTime": "2026-08-18T00:31:47.902Z",
        "endTime": "2026-08-18T00:31:47.902Z",
        "inputDataConfig": {"s3InputDataConfig": {"s3Uri": f"s3://{BUCKET}/bedrock-input/"}},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": f"s3://{BUCKET}/{OUTPUT_PREFIX}"}},
        "timeoutDurationInHours": 24,
        **changes,
    }


def event(status: str = "Completed") -> dict[str, Any]:
    changed = copy.deepcopy(EVENT)
    changed["detail"]["status"] = status
    return changed


def claude_lines() -> list[bytes]:
    return (FIXTURES / "claude.jsonl.out").read_bytes().splitlines(keepends=True)


@dataclass
class Stack:
    bedrock: FakeBedrock
    s3: Any
    app: ModuleType
    receiver: OtlpReceiver

    def invoke(self, payload: dict[str, Any]) -> dict[str, Any]:
        result = self.app.lambda_handler(payload, FakeLambdaContext())
        json.dumps(result)  # what Lambda returns must be JSON
        return result  # type: ignore[no-any-return]

    def put_outputs(self, files: dict[str, bytes], manifest: bool = True) -> None:
        for name, body in files.items():
            self.s3.put_object(Bucket=BUCKET, Key=f"{FOLDER}{name}", Body=body)
        if manifest:
            self.s3.upload_file(str(FIXTURES / "manifest.json.out"), BUCKET, f"{FOLDER}manifest.json.out")


@pytest.fixture
def stack(moto: MotoServer, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    with FakeBedrock() as bedrock:
        env = {
            "AWS_ENDPOINT_URL_BEDROCK": bedrock.endpoint,
            "BATCHTRACE_BEDROCK_OUTPUT_URI": f"s3://{BUCKET}/{OUTPUT_PREFIX}",
            "POWERTOOLS_SERVICE_NAME": "batchtrace",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        app = load_function("log_batch_results", "log_batch_results_app_bedrock_job")
        yield Stack(bedrock=bedrock, s3=s3, app=app, receiver=receiver)


def batch_span(spans: list[ReceivedSpan]) -> ReceivedSpan:
    found = [s for s in spans if s.name == "batch_results"]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def picked(doc: dict[str, Any], *names: str) -> tuple[Any, ...]:
    return tuple(doc[name] for name in names)


def linkage(span: ReceivedSpan) -> tuple[Any, ...]:
    """Where a completion sits and what it names: trace, parent, model, batch."""
    attributes = span.attributes
    return span.trace_id, span.parent_span_id, attributes["gen_ai.request.model"], attributes["batchtrace.batch_id"]


def test_a_completed_job_with_two_output_files_is_one_batch_in_the_tagged_trace(stack: Stack) -> None:
    lines = claude_lines()
    stack.bedrock.add_job(job(), tags={"traceparent": TRACEPARENT, "team": "support"})
    stack.put_outputs({"calls-part1.jsonl.out": b"".join(lines[:3]), "calls-part2.jsonl.out": b"".join(lines[3:])})

    summary = stack.invoke(event())

    names = ("batch_id", "provider", "trace_id", "requests", "results", "malformed_lines")
    assert picked(summary, *names) == (JOB_ID, "aws.bedrock", SUBMITTER_TRACE, len(lines), len(lines), 0)
    assert summary["reconciliation"]["agree"] is True  # manifest.json.out covers both files
    spans = delivered(stack.receiver, len(lines) + 1)
    root = batch_span(spans)
    assert (root.trace_id, root.parent_span_id, root.status_code == "ERROR") == (SUBMITTER_TRACE, SUBMITTER_SPAN, False)
    assert picked(root.attributes, "batchtrace.batch.status", "batchtrace.batch.model") == ("Completed", MODEL_ID)
    completions = {s.attributes["batchtrace.custom_id"]: linkage(s) for s in spans if s is not root}
    assert completions == {
        json.loads(line)["recordId"]: (SUBMITTER_TRACE, root.span_id, MODEL_ID, JOB_ID) for line in lines
    }
    # The job's timeline bounds the batch: submitted 21:52:03, ended 00:31:47 the next day.
    assert root.end_ns - root.start_ns == pytest.approx((2 * 3600 + 39 * 60 + 44.784) * 1e9, rel=1e-6)
    assert [op for op, _ in stack.bedrock.calls] == ["GetModelInvocationJob", "ListTagsForResource"]


def test_a_failed_job_without_outputs_still_gets_its_span_in_error(stack: Stack) -> None:
    stack.bedrock.add_job(job("Failed", message=FAILURE), tags={"traceparent": TRACEPARENT})

    summary = stack.invoke(event("Failed"))

    assert (summary["batch_id"], summary["requests"], summary["spans_exported"]) == (JOB_ID, 0, 1)
    root = batch_span(delivered(stack.receiver, 1))
    assert root.status_code == "ERROR"
    assert FAILURE in root.status_message
    assert (root.trace_id, root.parent_span_id) == (SUBMITTER_TRACE, SUBMITTER_SPAN)
    assert root.attributes["batchtrace.batch.status"] == "Failed"


def test_tags_bedrock_will_not_list_cost_the_link_not_the_spans(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    stack.bedrock.add_job(job(), tags={"traceparent": TRACEPARENT})
    stack.bedrock.fail("ListTagsForResource", "ValidationException")
    stack.put_outputs({"calls.jsonl.out": b"".join(claude_lines())})

    with caplog.at_level(logging.WARNING, logger="batchtrace"):
        summary = stack.invoke(event())

    root = batch_span(delivered(stack.receiver, summary["spans_built"]))
    assert root.parent_span_id is None and root.trace_id != SUBMITTER_TRACE  # a trace of the job's own
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("list tags of Bedrock job" in w and "ValidationException" in w for w in warnings), warnings


def test_a_trace_json_in_the_output_folder_wins_over_the_tag(stack: Stack) -> None:
    stack.bedrock.add_job(job(), tags={"traceparent": TRACEPARENT})
    stack.put_outputs({"calls.jsonl.out": b"".join(claude_lines())})
    own = {"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331"}
    stack.s3.put_object(Bucket=BUCKET, Key=f"{FOLDER}trace.json", Body=json.dumps(own).encode())

    summary = stack.invoke(event())

    root = batch_span(delivered(stack.receiver, summary["spans_built"]))
    assert (root.trace_id, root.parent_span_id) == (own["trace_id"], own["span_id"])


@pytest.mark.parametrize("status", ["InProgress", "Stopping"])
def test_a_job_still_running_sends_nothing(stack: Stack, status: str) -> None:
    stack.bedrock.add_job(job(status))
    assert stack.invoke(event(status)) == {"batches": [], "job_status": status}
    assert stack.receiver.span_count == 0


def test_a_job_writing_outside_the_stacks_prefix_is_left_alone(stack: Stack) -> None:
    elsewhere = {"s3OutputDataConfig": {"s3Uri": "s3://another-teams-bucket/out/"}}
    stack.bedrock.add_job(job(outputDataConfig=elsewhere))
    assert stack.invoke(event()) == {"batches": [], "job_status": "Completed"}
    assert stack.receiver.span_count == 0


def test_an_unknown_job_is_one_clear_error(stack: Stack) -> None:
    with pytest.raises(Exception) as raised:
        stack.invoke(event())
    assert type(raised.value).__name__ == "BedrockJobError"
    assert str(raised.value) == (
        f"could not read Bedrock job {JOB_ARN}: ResourceNotFoundException: The specified job {JOB_ARN} does not exist."
    )
    assert stack.receiver.span_count == 0


def test_a_redelivered_event_sends_the_job_once(
    stack: Stack, idempotency_table: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = load_function("log_batch_results", "log_batch_results_app_bedrock_job_idempotent")
    stack.bedrock.add_job(job(), tags={"traceparent": TRACEPARENT})
    stack.put_outputs({"calls.jsonl.out": b"".join(claude_lines())})

    first = app.lambda_handler(event(), FakeLambdaContext())
    second = app.lambda_handler(event(), FakeLambdaContext())

    assert first == second
    assert stack.receiver.span_count == first["spans_built"]
    assert [op for op, _ in stack.bedrock.calls].count("GetModelInvocationJob") == 1
