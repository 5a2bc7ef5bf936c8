"""The lifecycle step's contract, with the real functions behind the state machine's tasks.

The definition runs in :class:`AslInterpreter` (``test_state_machine_interpreter.py``) with:

* the HTTP task answered by a fake OpenAI API on 127.0.0.1 (the key the connection would add),
* ``FetchBatchFiles`` = FetchBatchFilesFunction's handler, in-process, streaming from that fake
  API into a moto S3 bucket, its key read from moto's Secrets Manager,
* ``LogBatchResults`` = LogBatchResultsFunction's handler, in-process, with the payload the
  fetch returned, exporting to a real OTLP receiver, with its idempotency table in moto.

Every state's input and output, and each task's result, must stay under Step Functions' 256 KB
payload limit (the interpreter fails the run otherwise), for the sample batch and for a batch of
thousands of requests with many malformed lines. Both functions are loaded from their files
afresh for each test, once its environment is set (each reads its settings at cold start).
"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
import requests

from tests.functional.test_fetch_batch_files import fetch_context, load_fetch_handler
from tests.functional.test_state_machine_definition import FETCH_ARN, LOG_ARN, load_definition
from tests.functional.test_state_machine_interpreter import (
    HTTP_INVOKE,
    LAMBDA_INVOKE,
    PAYLOAD_LIMIT,
    AslInterpreter,
    Execution,
    StatesError,
    lambda_task,
)
from tests.support.fake_openai import FakeOpenAI, batch_object
from tests.support.lambda_context import FakeLambdaContext
from tests.support.moto_s3 import MotoServer
from tests.support.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samplefiles"
EVENTS = ROOT / "events"
LOG_APP = ROOT / "functions" / "log_batch_results" / "app.py"
API_KEY = "sk-contract-" + "N4bW7xQ2rT9yU5iO1pA3sD6f"
BUCKET = "batchtrace-demo"
PREFIX = "batches/"
TABLE = "batchtrace-idempotency"


def load_log_app() -> ModuleType:
    """A fresh copy of the log function's app.py (its module-level clients bind the current env)."""
    name = "log_batch_results_app_contract"
    spec = importlib.util.spec_from_file_location(name, LOG_APP)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def openai_http_task(api_key: str) -> Any:
    """``arn:aws:states:::http:invoke`` against the fake API, with the connection's header."""

    def invoke(parameters: Mapping[str, Any]) -> Any:
        assert parameters["Method"] == "GET" and "Headers" not in parameters
        response = requests.get(parameters["ApiEndpoint"], headers={"Authorization": f"Bearer {api_key}"}, timeout=10)
        if response.status_code >= 400:
            raise StatesError(f"States.Http.StatusCode.{response.status_code}", response.text)
        return {
            "ResponseBody": response.json(),
            "StatusCode": response.status_code,
            "StatusText": response.reason,
            "Headers": {k.lower(): [v] for k, v in response.headers.items()},
        }

    return invoke


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
def lifecycle(moto: MotoServer, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lifecycle]:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto.endpoint)
    secret_arn = boto3.client("secretsmanager").create_secret(Name="openai-api-key", SecretString=API_KEY)["ARN"]
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    boto3.client("dynamodb").create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with FakeOpenAI(api_key=API_KEY) as api:
        env = {
            "OPENAI_BASE_URL": api.base_url,
            "OPENAI_API_KEY_SECRET_ARN": secret_arn,
            "IDEMPOTENCY_TABLE": TABLE,
            "POWERTOOLS_SERVICE_NAME": "batchtrace",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "BATCHTRACE_DEADLINE_MARGIN_SECONDS": "15",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        # Both functions cold-start with this environment (their settings and clients are read at import).
        fetch_app = load_fetch_handler("fetch_handler_contract")
        yield Lifecycle(api=api, s3=s3, fetch_app=fetch_app, log_app=load_log_app(), receiver=receiver)


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


def make_messy_batch(n: int, seed: int = 5) -> tuple[bytes, bytes, bytes, dict[str, int]]:
    """input, output and errors JSONL for ``n`` requests, with malformed lines and odd results."""
    rng = random.Random(seed)
    inputs, outputs, errors = [], [], []
    counts = {"ok": 0, "http_error": 0, "expired": 0, "no_result": 0, "malformed": 0}
    for i in range(n):
        custom_id = f"req-{i:05d}"
        body = {
            "model": "gpt-4o-mini",
            "max_tokens": 64,
            "messages": [
                {"role": "system", "content": "Classify the ticket."},
                {"role": "user", "content": f"Ticket {i}: " + "lorem ipsum " * rng.randint(1, 20)},
            ],
        }
        inputs.append({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body})
        fate = rng.random()
        if fate < 0.80:
            counts["ok"] += 1
            outputs.append(
                {
                    "id": f"batch_req_{i:024x}",
                    "custom_id": custom_id,
                    "response": {
                        "status_code": 200,
                        "request_id": f"req_{i:032x}",
                        "body": {
                            "id": f"chatcmpl-{i}",
                            "object": "chat.completion",
                            "created": 1_773_100_000 + i,
                            "model": "gpt-4o-mini-2024-07-18",
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": rng.choice(["billing", "outage"])},
                                    "finish_reason": "stop",
                                }
                            ],
                            "usage": {"prompt_tokens": 40, "completion_tokens": 2, "total_tokens": 42},
                        },
                    },
                    "error": None,
                }
            )
        elif fate < 0.88:
            counts["http_error"] += 1
            errors.append(
                {
                    "id": f"batch_req_{i:024x}",
                    "custom_id": custom_id,
                    "response": {
                        "status_code": 400,
                        "request_id": f"req_{i:032x}",
                        "body": {
                            "error": {"message": "bad", "type": "invalid_request_error", "param": None, "code": None}
                        },
                    },
                    "error": None,
                }
            )
        elif fate < 0.95:
            counts["expired"] += 1
            errors.append(
                {
                    "id": f"batch_req_{i:024x}",
                    "custom_id": custom_id,
                    "response": None,
                    "error": {
                        "code": "batch_expired",
                        "message": "This request could not be executed before the completion window expired.",
                    },
                }
            )
        else:
            counts["no_result"] += 1
    rng.shuffle(outputs)

    def jsonl(rows: list[dict[str, Any]], junk: int) -> bytes:
        lines = [json.dumps(r) for r in rows]
        for k in range(junk):
            lines.insert(
                rng.randrange(len(lines) + 1),
                rng.choice(['{"custom_id": "trunc', "not json at all", "[1, 2", f'{{"x": {k}']),
            )
        counts["malformed"] += junk
        return ("\n".join(lines) + "\n").encode()

    return jsonl(inputs, 0), jsonl(outputs, 400), jsonl(errors, 100), counts


def test_thousands_of_requests_and_malformed_lines_stay_under_the_payload_limit(lifecycle: Lifecycle) -> None:
    n = 4000
    input_bytes, output_bytes, errors_bytes, counts = make_messy_batch(n)
    batch_id = "batch_" + "7" * 24
    folder = f"{PREFIX}{batch_id}/"
    lifecycle.s3.put_object(Bucket=BUCKET, Key=folder + "input.jsonl", Body=input_bytes)
    done = batch_object(
        batch_id,
        "expired",
        output_file_id="file-messy-out",
        error_file_id="file-messy-err",
        total=n,
        completed=counts["ok"],
        failed=counts["http_error"] + counts["expired"],
    )
    lifecycle.api.set_batch(batch_id, batch_object(batch_id, "in_progress", total=n), done)
    lifecycle.api.add_file("file-messy-out", output_bytes)
    lifecycle.api.add_file("file-messy-err", errors_bytes)
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
    assert summary["malformed_lines"] == counts["malformed"] == 500
    assert summary["expired"] == counts["expired"]
    assert summary["no_result"] == counts["no_result"]
    assert summary["spans_failed"] == 0
    assert summary["spans_exported"] == summary["spans_built"] == lifecycle.receiver.span_count
    assert summary["trace_id"] == trace_id


def test_all_failed_batch_gets_an_empty_output_and_is_still_logged(lifecycle: Lifecycle) -> None:
    batch_id = "batch_" + "9" * 24
    folder = f"{PREFIX}{batch_id}/"
    input_bytes, _, errors_bytes, counts = make_messy_batch(50, seed=9)
    lifecycle.s3.put_object(Bucket=BUCKET, Key=folder + "input.jsonl", Body=input_bytes)
    lifecycle.api.set_batch(
        batch_id, batch_object(batch_id, "completed", output_file_id=None, error_file_id="file-only-err", total=50)
    )
    lifecycle.api.add_file("file-only-err", errors_bytes)

    run = lifecycle.run({"batch_id": batch_id})

    assert run.status == "SUCCEEDED", (run.end_state, run.error, run.cause)
    assert lifecycle.s3.get_object(Bucket=BUCKET, Key=folder + "output.jsonl")["Body"].read() == b""
    summary = run.output["summary"]
    assert summary["requests"] == 50
    assert summary["results"] == summary["errors"] == counts["http_error"] + counts["expired"]
    assert summary["no_result"] == counts["ok"] + counts["no_result"]
    assert summary["spans_exported"] == summary["spans_built"] == lifecycle.receiver.span_count


def test_missing_input_file_ends_in_traces_not_delivered(lifecycle: Lifecycle) -> None:
    batch_id = "batch_" + "4" * 24
    lifecycle.api.set_batch(batch_id, batch_object(batch_id, "completed", output_file_id="file-lonely"))
    lifecycle.api.add_file("file-lonely", b"")

    run = lifecycle.run({"batch_id": batch_id})

    assert run.status == "FAILED" and run.end_state == "TracesNotDelivered"
    assert "MissingFileError" in (run.cause or "") and "input.jsonl" in (run.cause or "")
    assert run.step("LogBatchResults").attempts == 1, "a missing file is not retried"
