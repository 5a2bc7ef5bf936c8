"""The lifecycle step's contract, with the real functions behind the state machine's tasks.

The definition runs in the walker (``tests/support/sfn_walker.py``) with:

* the HTTP task answered by a fake OpenAI API on 127.0.0.1 (the key the connection would add),
* ``FetchBatchFiles`` = FetchBatchFilesFunction's handler, in-process, streaming from that fake
  API into a moto S3 bucket, its key read from moto's Secrets Manager,
* ``LogBatchResults`` = LogBatchResultsFunction's handler, in-process, with the payload the
  fetch returned, exporting to a real OTLP receiver, with its idempotency table in moto.

Every state's input and output, and each task's result, must stay under Step Functions' 256 KB
payload limit (the walker fails the run otherwise), for the sample batch and for a batch of
thousands of requests with many malformed lines. Both functions are loaded from their files
afresh for each test, once its environment is set (each reads its settings at cold start).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from tests.support.batches import OK, Batch, batch_object, fault_batch, malformed_lines
from tests.support.fake_openai import FakeOpenAI
from tests.support.lambda_context import FakeLambdaContext, fetch_context, load_function
from tests.support.moto_s3 import MotoServer
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.sfn_walker import (
    FETCH_ARN,
    HTTP_INVOKE,
    LAMBDA_INVOKE,
    LOG_ARN,
    PAYLOAD_LIMIT,
    AslInterpreter,
    Execution,
    lambda_task,
    load_definition,
    openai_http_task,
)

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samplefiles"
EVENTS = ROOT / "events"
API_KEY = "sk-contract-" + "N4bW7xQ2rT9yU5iO1pA3sD6f"
BUCKET = "batchtrace-demo"
PREFIX = "batches/"


@dataclass
class Lifecycle:
    api: FakeOpenAI
    s3: Any
    fetch_app: ModuleType
    log_app: ModuleType
    receiver: OtlpReceiver

    def run(self, execution_input: Mapping[str, Any]) -> Execution:
        definition = load_definition(
            {"OpenAIBaseUrl": self.api.base_url, "BatchesBucketName": BUCKET, "BatchPrefix": PREFIX}
        )
        tasks = {
            HTTP_INVOKE: openai_http_task(API_KEY),
            LAMBDA_INVOKE: lambda_task(
                {
                    FETCH_ARN: lambda payload: self.fetch_app.lambda_handler(
                        payload,
                        fetch_context(),
                    ),
                    LOG_ARN: lambda payload: self.log_app.lambda_handler(
                        payload, FakeLambdaContext(remaining_ms=900_000)
                    ),
                }
            ),
        }
        return AslInterpreter(definition, tasks).run(dict(execution_input))


@pytest.fixture
def lifecycle(
    moto: MotoServer,
    receiver: OtlpReceiver,
    idempotency_table: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Lifecycle]:
    secret_arn = boto3.client("secretsmanager").create_secret(Name="openai-api-key", SecretString=API_KEY)["ARN"]
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    with FakeOpenAI(api_key=API_KEY) as api:
        env = {
            "OPENAI_BASE_URL": api.base_url,
            "OPENAI_API_KEY_SECRET_ARN": secret_arn,
            "POWERTOOLS_SERVICE_NAME": "batchtrace",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "BATCHTRACE_DEADLINE_MARGIN_SECONDS": "15",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        # Both functions cold-start with this environment: fresh copies, whose settings and clients
        # (read at import) bind the current environment.
        fetch_app = load_function("fetch_batch_files", "fetch_handler_contract", "fetch_handler")
        log_app = load_function("log_batch_results", "log_batch_results_app_contract")
        yield Lifecycle(api=api, s3=s3, fetch_app=fetch_app, log_app=log_app, receiver=receiver)


def json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def assert_under_payload_limit(run: Execution) -> None:
    for step in run.steps:
        for what, value in (("input", step.input), ("output", step.output)):
            assert json_size(value) < PAYLOAD_LIMIT, f"{step.name} {what} is {json_size(value)} bytes"


# --------------------------------------------------------------------------- the sample batch


def test_sample_batch_from_polling_to_spans(lifecycle: Lifecycle) -> None:
    trace_doc = json.loads((SAMPLES / "trace.json").read_text(encoding="utf-8"))
    sample = trace_doc["batch"]
    batch_id = sample["id"]
    folder = f"{PREFIX}{batch_id}/"
    # What the submitter leaves in S3 before starting the execution.
    lifecycle.s3.upload_file(str(SAMPLES / "input.jsonl"), BUCKET, folder + "input.jsonl")
    lifecycle.s3.upload_file(str(SAMPLES / "trace.json"), BUCKET, folder + "trace.json")
    # What OpenAI answers while the batch runs, then once it is done.
    in_progress = {**sample, "status": "in_progress", "output_file_id": None, "error_file_id": None}
    lifecycle.api.set_batch(batch_id, in_progress, {**sample, "status": "finalizing"}, sample)
    lifecycle.api.add_file(sample["output_file_id"], (SAMPLES / "output.jsonl").read_bytes())
    lifecycle.api.add_file(sample["error_file_id"], (SAMPLES / "errors.jsonl").read_bytes())
    execution_input = json.loads((ROOT / "statemachine" / "sample-execution-input.json").read_text(encoding="utf-8"))

    run = lifecycle.run(execution_input)

    assert run.status == "SUCCEEDED", (run.end_state, run.error, run.cause)
    assert run.end_state == "BatchCompleted"
    assert run.visits("GetBatch") == 3 and run.visits("WaitForBatch") == 2
    assert_under_payload_limit(run)
    output = run.output
    assert output["status"] == "completed"
    assert output["files"]["output_key"] == folder + "output.jsonl"
    assert output["files"]["errors_key"] == folder + "errors.jsonl"
    assert (
        lifecycle.s3.get_object(Bucket=BUCKET, Key=folder + "output.jsonl")["Body"].read()
        == (SAMPLES / "output.jsonl").read_bytes()
    )
    summary = output["summary"]
    counts = sample["request_counts"]
    assert summary["batch_id"] == batch_id
    assert summary["trace_id"] == trace_doc["trace_id"]
    assert summary["requests"] == counts["total"]
    assert summary["errors"] >= counts["failed"]
    assert summary["orphan_results"] == 1 and summary["no_result"] >= 1
    assert summary["spans_failed"] == 0
    assert summary["spans_exported"] == summary["spans_built"] == lifecycle.receiver.span_count
    assert {s.trace_id for s in lifecycle.receiver.spans} == {trace_doc["trace_id"]}

    # The S3 trigger for the same upload (same version id) finds the idempotency record: no re-export.
    version = lifecycle.s3.head_object(Bucket=BUCKET, Key=folder + "output.jsonl")["VersionId"]
    assert output["files"]["object_version"] == version
    s3_event = json.loads((EVENTS / "s3-put.json").read_text(encoding="utf-8"))
    record = s3_event["Records"][0]["s3"]
    record["bucket"]["name"] = BUCKET
    record["object"].update(key=folder + "output.jsonl", versionId=version)
    again = lifecycle.log_app.lambda_handler(s3_event, FakeLambdaContext(remaining_ms=900_000))
    assert again == summary
    assert lifecycle.receiver.span_count == summary["spans_built"], "the S3 trigger exported the batch again"


# --------------------------------------------------------------------------- a large, messy batch


def messy_batch(n: int, batch_id: str, *, output_junk: int, errors_junk: int) -> Batch:
    """The fault tier's batch of ``n`` requests (errors, expiries, no results) with malformed lines spliced in."""
    return fault_batch(n, batch_id=batch_id).with_junk(
        {"output": malformed_lines(output_junk), "errors": malformed_lines(errors_junk)}
    )


def test_thousands_of_requests_and_malformed_lines_stay_under_the_payload_limit(lifecycle: Lifecycle) -> None:
    n = 4000
    batch_id = "batch_" + "7" * 24
    messy = messy_batch(n, batch_id, output_junk=400, errors_junk=100)
    folder = f"{PREFIX}{batch_id}/"
    lifecycle.s3.put_object(Bucket=BUCKET, Key=folder + "input.jsonl", Body=messy.input_bytes())
    done = batch_object(
        batch_id,
        "expired",
        output_file_id="file-messy-out",
        error_file_id="file-messy-err",
        total=n,
        completed=messy.count(OK),
        failed=messy.http_errors + messy.expired,
    )
    lifecycle.api.set_batch(batch_id, batch_object(batch_id, "in_progress", total=n), done)
    lifecycle.api.add_file("file-messy-out", messy.output_bytes())
    lifecycle.api.add_file("file-messy-err", messy.errors_bytes())
    trace_id = "0af7651916cd43dd8448eb211c80319c"

    run = lifecycle.run({"batch_id": batch_id, "trace_id": trace_id, "span_id": "b7ad6b7169203331"})

    assert run.status == "SUCCEEDED", (run.end_state, run.error, run.cause)
    assert run.end_state == "CompletedWithExpiredRequests"
    assert_under_payload_limit(run)
    summary = run.output["summary"]
    assert json_size(summary) < 16 * 1024, f"the summary is {json_size(summary)} bytes"
    assert json_size(run.output) < 32 * 1024
    assert json_size(run.step("LogBatchResults").input["fetched"]["payload"]) < 1024
    assert summary["requests"] == n
    assert summary["malformed_lines"] == messy.malformed == 500
    assert summary["expired"] == messy.expired
    assert summary["no_result"] == messy.no_result
    assert summary["spans_failed"] == 0
    assert summary["spans_exported"] == summary["spans_built"] == lifecycle.receiver.span_count
    assert summary["trace_id"] == trace_id


def test_all_failed_batch_gets_an_empty_output_and_is_still_logged(lifecycle: Lifecycle) -> None:
    batch_id = "batch_" + "9" * 24
    folder = f"{PREFIX}{batch_id}/"
    messy = messy_batch(50, batch_id, output_junk=0, errors_junk=100)  # only its input and its error file
    lifecycle.s3.put_object(Bucket=BUCKET, Key=folder + "input.jsonl", Body=messy.input_bytes())
    lifecycle.api.set_batch(
        batch_id, batch_object(batch_id, "completed", output_file_id=None, error_file_id="file-only-err", total=50)
    )
    lifecycle.api.add_file("file-only-err", messy.errors_bytes())

    run = lifecycle.run({"batch_id": batch_id})

    assert run.status == "SUCCEEDED", (run.end_state, run.error, run.cause)
    assert lifecycle.s3.get_object(Bucket=BUCKET, Key=folder + "output.jsonl")["Body"].read() == b""
    summary = run.output["summary"]
    assert summary["requests"] == 50
    assert summary["results"] == summary["errors"] == messy.http_errors + messy.expired
    assert summary["no_result"] == messy.count(OK) + messy.no_result
    assert summary["spans_exported"] == summary["spans_built"] == lifecycle.receiver.span_count


def test_missing_input_file_ends_in_traces_not_delivered(lifecycle: Lifecycle) -> None:
    batch_id = "batch_" + "4" * 24
    lifecycle.api.set_batch(batch_id, batch_object(batch_id, "completed", output_file_id="file-lonely"))
    lifecycle.api.add_file("file-lonely", b"")

    run = lifecycle.run({"batch_id": batch_id})

    assert run.status == "FAILED" and run.end_state == "TracesNotDelivered"
    assert "MissingFileError" in (run.cause or "") and "input.jsonl" in (run.cause or "")
    assert run.step("LogBatchResults").attempts == 1, "a missing file is not retried"


# --------------------------------------------------------------------------- a batch with no files


def test_failed_batch_is_logged_in_the_submitting_trace_before_the_execution_fails(lifecycle: Lifecycle) -> None:
    """LogFailedBatch hands the real function the state: one batch_results span, in ERROR, in the caller's trace."""
    batch_id = "batch_" + "f" * 24
    errors = {
        "object": "list",
        "data": [{"code": "invalid_json_line", "message": "not JSON", "param": None, "line": 3}],
    }
    lifecycle.api.set_batch(batch_id, batch_object(batch_id, "failed", errors=errors, created_at=1_787_011_200))
    trace_id, span_id = "f928e55f9973eedc2351a29c36377768", "fedc642ff8c46be9"

    run = lifecycle.run({"batch_id": batch_id, "trace_id": trace_id, "span_id": span_id})

    assert (run.status, run.end_state) == ("FAILED", "BatchFailed")
    assert "invalid_json_line" in (run.cause or "")
    summary = run.step("LogFailedBatch").output["logged"]["summary"]
    assert (summary["batch_id"], summary["trace_id"], summary["spans_exported"]) == (batch_id, trace_id, 1)
    assert lifecycle.receiver.wait_for_spans(1)
    [span] = lifecycle.receiver.spans
    assert (span.name, span.trace_id, span.parent_span_id) == ("batch_results", trace_id, span_id)
    assert span.status_code == "ERROR" and "line 3: invalid_json_line: not JSON" in span.status_message
    assert {"batch.created", "batch.failed"} <= {e.name for e in span.events}
    assert_under_payload_limit(run)
