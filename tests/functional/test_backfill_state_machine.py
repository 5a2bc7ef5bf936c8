"""The Distributed Map backfill, end to end: `start_distributed_backfill` -> the state machine -> spans and results.

``start_distributed_backfill`` writes the manifest to moto S3 and starts an execution of a backfill
state machine registered in moto's Step Functions; the execution's input, read back from moto, is
then run through the real definition in the walker (``tests/support/sfn_walker.py``: moto cannot
run an HTTP task or a Distributed Map) with:

* the HTTP task answered by a fake OpenAI API on 127.0.0.1,
* the map's ItemReader reading the manifest from moto S3 and its ResultWriter writing Step
  Functions' result files there,
* ``FetchBatchFiles`` and ``LogBatchResults`` = the two functions' real handlers, in-process,
  exporting to a real OTLP receiver.
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

from tests.support.batches import batch_object
from tests.support.fake_openai import FakeOpenAI
from tests.support.lambda_context import FakeLambdaContext, fetch_context, load_function
from tests.support.moto_s3 import MotoServer
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.support.sfn_walker import (
    BACKFILL_STATE_MACHINE,
    BACKFILL_SUBSTITUTIONS,
    FETCH_ARN,
    HTTP_INVOKE,
    LAMBDA_INVOKE,
    LOG_ARN,
    S3_GET_OBJECT,
    S3_PUT_OBJECT,
    AslInterpreter,
    Execution,
    lambda_task,
    load_definition,
    openai_http_task,
    s3_json_items,
    s3_result_writer,
)

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samplefiles"
API_KEY = "sk-backfill-" + "Q7vL2mX9cB4nR8tY1wE6uI3o"
BUCKET = "batchtrace-demo"
PREFIX = "batches/"
DONE, FAILED, RUNNING = (
    "batch_0a1b2c3d4e5f60718293a4b5",
    "batch_1f2e3d4c5b6a79880716253a",
    "batch_2c3d4e5f6a7b8c9d0e1f2a3b",
)
FAILURE = "Line 3: the model gpt-4o-minii does not exist"


@dataclass
class Backfill:
    api: FakeOpenAI
    s3: Any
    sfn: Any
    state_machine_arn: str
    fetch_app: ModuleType
    log_app: ModuleType
    receiver: OtlpReceiver

    def run(self, execution_input: Mapping[str, Any], **limits: str) -> Execution:
        substitutions = {
            **BACKFILL_SUBSTITUTIONS,
            **limits,
            "OpenAIBaseUrl": self.api.base_url,
            "BatchesBucketName": BUCKET,
            "BatchPrefix": PREFIX,
        }
        tasks = {
            HTTP_INVOKE: openai_http_task(API_KEY),
            LAMBDA_INVOKE: lambda_task(
                {
                    FETCH_ARN: lambda payload: self.fetch_app.lambda_handler(payload, fetch_context()),
                    LOG_ARN: lambda payload: self.log_app.lambda_handler(
                        payload, FakeLambdaContext(remaining_ms=900_000)
                    ),
                }
            ),
            S3_GET_OBJECT: s3_json_items(self.s3),
            S3_PUT_OBJECT: s3_result_writer(self.s3, self.state_machine_arn),
        }
        definition = load_definition(substitutions, BACKFILL_STATE_MACHINE)
        return AslInterpreter(definition, tasks).run(dict(execution_input))

    def start(self, batch_ids: list[str]) -> dict[str, Any]:
        """What `batchtrace backfill --on-aws` does; the execution input Step Functions got."""
        from batchtrace.sources.backfill_aws import start_distributed_backfill

        started = start_distributed_backfill(batch_ids, self.state_machine_arn, BUCKET, s3=self.s3, sfn=self.sfn)
        described = self.sfn.describe_execution(executionArn=started.execution_arn)
        return json.loads(described["input"])  # type: ignore[no-any-return]

    def results(self) -> dict[str, list[dict[str, Any]]]:
        """The map run's result files, by status, as Step Functions writes them (even for a failed run)."""
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix="backfill/results/").get("Contents", [])
        (key,) = [item["Key"] for item in listed if item["Key"].endswith("/manifest.json")]
        manifest = json.loads(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        return {
            status: [
                entry
                for file in files
                for entry in json.loads(self.s3.get_object(Bucket=BUCKET, Key=file["Key"])["Body"].read())
            ]
            for status, files in manifest["ResultFiles"].items()
        }


@pytest.fixture
def backfill(
    moto: MotoServer, receiver: OtlpReceiver, idempotency_table: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backfill]:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", moto.endpoint)
    secret_arn = boto3.client("secretsmanager").create_secret(Name="openai-api-key", SecretString=API_KEY)["ARN"]
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="stack-Backfill",
        definition=json.dumps(load_definition(BACKFILL_SUBSTITUTIONS, BACKFILL_STATE_MACHINE)),
        roleArn="arn:aws:iam::123456789012:role/stack-BackfillStateMachineRole",
    )["stateMachineArn"]
    with FakeOpenAI(api_key=API_KEY) as api:
        for name, value in {
            "OPENAI_BASE_URL": api.base_url,
            "OPENAI_API_KEY_SECRET_ARN": secret_arn,
            "POWERTOOLS_SERVICE_NAME": "batchtrace",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }.items():
            monkeypatch.setenv(name, value)
        fetch_app = load_function("fetch_batch_files", "fetch_handler_backfill", "fetch_handler")
        log_app = load_function("log_batch_results", "log_batch_results_app_backfill")
        yield Backfill(api, s3, sfn, arn, fetch_app, log_app, receiver)


def script_batches(api: FakeOpenAI, *, input_available: bool = True) -> None:
    """A completed batch with files (the sample batch), a failed one without, one still running."""
    if input_available:
        api.add_file("file-in-done", (SAMPLES / "input.jsonl").read_bytes())
    api.add_file("file-out-done", (SAMPLES / "output.jsonl").read_bytes())
    api.add_file("file-err-done", (SAMPLES / "errors.jsonl").read_bytes())
    done = batch_object(DONE, "completed", output_file_id="file-out-done", error_file_id="file-err-done", total=12)
    api.set_batch(DONE, {**done, "input_file_id": "file-in-done"})
    errors = {
        "object": "list",
        "data": [{"code": "model_not_found", "message": FAILURE, "param": "body.model", "line": 3}],
    }
    api.set_batch(FAILED, batch_object(FAILED, "failed", errors=errors))
    api.set_batch(RUNNING, batch_object(RUNNING, "in_progress"))


def roots(spans: list[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    return {s.attributes["batchtrace.batch_id"]: s for s in spans if s.name == "batch_results"}  # type: ignore[misc]


def test_a_manifest_of_past_batches_traces_each_and_writes_the_results(backfill: Backfill) -> None:
    script_batches(backfill.api)
    execution_input = backfill.start([DONE, FAILED, RUNNING, DONE])  # a repeated id is backfilled once
    assert execution_input["manifest"].startswith("backfill/manifests/backfill-")

    run = backfill.run(execution_input, BackfillToleratedFailurePercentage="50")

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    map_step = run.step("BackfillFromManifest")  # one step: the map ran once
    assert (map_step.max_concurrency, [c.input["batch_id"] for c in map_step.children]) == (5, [DONE, FAILED, RUNNING])
    # The completed batch: its input copied from OpenAI beside the files, every span sent.
    copied = backfill.s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}{DONE}/input.jsonl")["Body"].read()
    assert copied == (SAMPLES / "input.jsonl").read_bytes()
    results = backfill.results()
    summaries = {json.loads(e["Output"])["batch_id"]: json.loads(e["Output"])["summary"] for e in results["SUCCEEDED"]}
    assert (summaries[DONE]["requests"], summaries[DONE]["orphan_results"], summaries[DONE]["spans_failed"]) == (
        12,
        1,
        0,
    )
    assert backfill.receiver.span_count == summaries[DONE]["spans_built"] + summaries[FAILED]["spans_built"]
    # The failed batch: no files, its batch_results span alone, in ERROR with OpenAI's reason.
    failed_root = roots(backfill.receiver.spans)[FAILED]
    assert (failed_root.status_code, FAILURE in failed_root.status_message) == ("ERROR", True)
    # The unfinished one is a counted, explained failure: tolerated here, and listed.
    (failure,) = results["FAILED"]
    reason = (json.loads(failure["Input"])["batch_id"], failure["Error"], "in_progress" in failure["Cause"])
    assert reason == (RUNNING, "BatchNotFinished", True)


def test_more_failures_than_tolerated_fail_the_backfill_with_the_results_written(backfill: Backfill) -> None:
    script_batches(backfill.api)

    run = backfill.run({"batch_ids": [DONE, RUNNING, "batch_3e4f5a6b7c8d9e0f1a2b3c4d"]})

    assert (run.status, run.end_state, run.error) == (
        "FAILED",
        "BackfillFailed",
        "States.ExceedToleratedFailureThreshold",
    )
    failures = {json.loads(e["Input"])["batch_id"]: e["Error"] for e in backfill.results()["FAILED"]}
    assert failures == {RUNNING: "BatchNotFinished", "batch_3e4f5a6b7c8d9e0f1a2b3c4d": "BatchUnavailable"}
    assert len(roots(backfill.receiver.spans)) == 1  # the batch that could be traced still was


def test_an_input_file_openai_no_longer_has_still_sends_the_results(backfill: Backfill) -> None:
    script_batches(backfill.api, input_available=False)

    run = backfill.run({"batch_ids": [DONE]})

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    summary = json.loads(backfill.results()["SUCCEEDED"][0]["Output"])["summary"]
    # Every result is a span, flagged as having no request; nothing is lost.
    assert summary["requests"] == 0 and summary["orphan_results"] == summary["results"] > 0
    assert summary["spans_exported"] == summary["spans_built"] == summary["results"] + 1


def test_an_input_already_in_the_folder_is_kept(backfill: Backfill) -> None:
    script_batches(backfill.api)
    mine = (SAMPLES / "input.jsonl").read_bytes()
    backfill.s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}{DONE}/input.jsonl", Body=mine, Metadata={"trace-id": "f" * 32})

    run = backfill.run({"batch_ids": [DONE]})

    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert "/v1/files/file-in-done/content" not in backfill.api.paths()
    head = backfill.s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}{DONE}/input.jsonl")
    assert head["Metadata"] == {"trace-id": "f" * 32}
    assert roots(backfill.receiver.spans)[DONE].trace_id == "f" * 32


@pytest.mark.parametrize(
    "execution_input",
    [{}, {"batch_ids": []}, {"manifest": "elsewhere/ids.json"}, {"manifest": "backfill/manifests/none.json"}],
    ids=["nothing", "empty-list", "manifest-outside-the-prefix", "missing-manifest"],
)
def test_unusable_input_starts_no_work(backfill: Backfill, execution_input: dict[str, Any]) -> None:
    run = backfill.run(execution_input)
    assert run.status == "FAILED"
    assert run.error in ("InvalidExecutionInput", "States.ItemReaderFailed")
    assert backfill.api.paths() == [] and backfill.receiver.span_count == 0
