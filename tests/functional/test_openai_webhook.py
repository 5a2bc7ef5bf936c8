"""OpenAIWebhookFunction: signed batch webhooks through a Lambda Function URL, end to end.

Everything it talks to is real or a wire-level fake on 127.0.0.1: the openai SDK against the fake
OpenAI API (which the "user" also submits the batch to, through the same SDK), S3, DynamoDB and
Secrets Manager in moto, the asynchronous self-invocation through a fake Lambda ``Invoke`` API
(boto3 signs and sends the real request; the test then runs the recorded payload through the
handler, as Lambda would), and the spans into the real OTLP receiver. Requests are signed as
OpenAI signs them, with the ``standardwebhooks`` library's signer or by hand from the spec, and
wrapped in real Function URL events (payload 2.0).

The handler module is loaded afresh per test, after the environment is set: a cold start.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import openai
import pytest
from batchtrace import submission_metadata
from batchtrace.errors import InvalidBatchPayloadError
from opentelemetry.sdk.trace import TracerProvider

from tests.functional.assertions import assert_batch_delivered, delivered
from tests.support.batches import Batch, fault_batch
from tests.support.fake_lambda_invoke import FakeLambdaInvoke
from tests.support.fake_openai import FakeOpenAI
from tests.support.lambda_context import FakeLambdaContext, load_function
from tests.support.moto_s3 import MotoServer
from tests.support.openai_webhooks import (
    batch_event_body,
    function_url_event,
    hand_signed_headers,
    new_secret,
    signed_headers,
)
from tests.support.otlp_receiver import OtlpReceiver

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk-test-" + "Wb7nQ2xR9kT4mV1zL8pD5sF3"
BUCKET = "batchtrace-webhook-tests"
PREFIX = "batches/"
FUNCTION_NAME = "batchtrace-OpenAIWebhook"
N_REQUESTS = 24
#: The issue's "within a few seconds"; loopback answers take milliseconds.
ANSWER_WITHIN_S = 3.0

tracer = TracerProvider().get_tracer("submitting-app")


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeOpenAI, FakeLambdaInvoke]]:
    with FakeOpenAI(api_key=API_KEY) as api, FakeLambdaInvoke() as lambda_api:
        yield api, lambda_api


@dataclass
class World:
    """One deployed function: its handler, the fakes it calls, the stores it writes."""

    handler: ModuleType
    api: FakeOpenAI
    lambda_api: FakeLambdaInvoke
    s3: Any
    table: Any
    receiver: OtlpReceiver
    secret: str

    def deliver(self, event: dict[str, Any]) -> dict[str, Any]:
        """A Function URL request; the response, which must come back within seconds."""
        started = time.monotonic()
        response = self.handler.lambda_handler(event, _context())
        assert time.monotonic() - started < ANSWER_WITHIN_S, "the webhook was not acknowledged within seconds"
        return response  # type: ignore[no-any-return]

    def run_jobs(self) -> list[dict[str, Any]]:
        """Run the asynchronous invocations the function made of itself, as Lambda would."""
        results = []
        for call in self.lambda_api.take():
            assert (call.function_name, call.invocation_type, call.signed) == (FUNCTION_NAME, "Event", True)
            results.append(self.handler.lambda_handler(call.payload, _context()))
        return results

    def keys(self, batch_id: str) -> set[str]:
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}{batch_id}/")
        return {o["Key"].rsplit("/", 1)[1] for o in listed.get("Contents", [])}

    def body(self, batch_id: str, name: str) -> bytes:
        return self.s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}{batch_id}/{name}")["Body"].read()  # type: ignore[no-any-return]

    def records(self) -> list[dict[str, Any]]:
        return self.table.scan()["Items"]  # type: ignore[no-any-return]


def _context() -> FakeLambdaContext:
    return FakeLambdaContext(remaining_ms=900_000, function_name=FUNCTION_NAME, memory_limit_in_mb=1769)


@pytest.fixture
def world(
    fakes: tuple[FakeOpenAI, FakeLambdaInvoke],
    moto: MotoServer,
    idempotency_table: Any,
    receiver: OtlpReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> World:
    api, lambda_api = fakes
    api.clear()
    lambda_api.take()
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    secrets = boto3.client("secretsmanager")
    secret = new_secret()
    env = {
        "AWS_ENDPOINT_URL_LAMBDA": lambda_api.base_url,
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
        "OPENAI_WEBHOOK_SECRET_ARN": secrets.create_secret(Name="openai-webhook", SecretString=secret)["ARN"],
        "OPENAI_API_KEY_SECRET_ARN": secrets.create_secret(Name="openai-key", SecretString=API_KEY)["ARN"],
        "OPENAI_BASE_URL": api.base_url,
        "BATCHTRACE_BUCKET": BUCKET,
        "BATCHTRACE_PREFIX": PREFIX,
        "POWERTOOLS_SERVICE_NAME": "batchtrace",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    handler = load_function("openai_webhook", f"webhook_handler_{uuid.uuid4().hex[:8]}", "webhook_handler")
    return World(handler, api, lambda_api, s3, idempotency_table, receiver, secret)


def _submit(world: World, batch: Batch) -> tuple[str, str, str]:
    """The user's code, as the README shows it: upload, create with the trace in the metadata, inside a span.

    Returns the batch id and the submitting span's trace and span ids (hex).
    """
    client = openai.OpenAI(api_key=API_KEY, base_url=world.api.base_url, max_retries=0)
    with tracer.start_as_current_span("submit batch") as span:
        uploaded = client.files.create(file=("input.jsonl", batch.input_bytes()), purpose="batch")
        created = client.batches.create(
            input_file_id=uploaded.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata=submission_metadata(),
        )
    ids = span.get_span_context()
    return created.id, f"{ids.trace_id:032x}", f"{ids.span_id:016x}"


def _complete(world: World, batch_id: str) -> Batch:
    """OpenAI finishes the batch: its output and error files, counts and times as the files say."""
    batch = fault_batch(N_REQUESTS, batch_id=batch_id)
    succeeded = batch.requests - batch.http_errors - batch.expired - batch.no_result
    world.api.finish(
        batch_id,
        "completed",
        output_file=batch.output_bytes(),
        error_file=batch.errors_bytes(),
        created_at=batch.created_at,
        in_progress_at=batch.created_at + 60,
        finalizing_at=batch.completed_at - 100,
        completed_at=batch.completed_at,
        request_counts={"total": batch.requests, "completed": succeeded, "failed": batch.http_errors},
    )
    return batch


def _announce(world: World, batch_id: str, event_type: str = "batch.completed", **sign: Any) -> dict[str, Any]:
    body = batch_event_body(batch_id, event_type)
    return world.deliver(function_url_event(body, signed_headers(world.secret, body, **sign)))


def _nothing_changed(world: World, batch_id: str) -> None:
    assert world.lambda_api.take() == [], "the function queued work"
    assert world.keys(batch_id) == set(), "the function wrote to the bucket"
    assert world.receiver.span_count == 0, "spans were sent"
    assert world.records() == [], "an idempotency record was written"


# =========================================================================== the "done when"


def test_submitted_batch_lands_in_the_submitting_trace_with_no_file_written_by_the_user(world: World) -> None:
    batch = fault_batch(N_REQUESTS, batch_id="batch_placeholder")
    batch_id, trace_id, span_id = _submit(world, batch)
    (create,) = world.api.created
    assert create["metadata"] == {"traceparent": f"00-{trace_id}-{span_id}-03"}  # the sampled, random-id flags
    batch = _complete(world, batch_id)

    response = _announce(world, batch_id)

    assert response["statusCode"] == 200, response
    assert json.loads(response["body"]) == {"message": "accepted"}
    assert world.receiver.span_count == 0, "the work must not happen before the answer"
    (summary,) = world.run_jobs()
    spans = delivered(world.receiver, N_REQUESTS + 1)
    assert_batch_delivered(
        spans,
        batch,
        trace_id=trace_id,
        parent_span_id=span_id,
        mode="explicit",
        batch_id=batch_id,
        lifecycle_known=True,
    )
    assert summary["trace_id"] == trace_id and summary["spans_failed"] == 0, summary
    assert summary["reconciliation"]["agree"] is True, summary["reconciliation"]
    # The folder was filled by the function alone: the input from OpenAI's input file, no trace.json.
    assert world.keys(batch_id) == {"input.jsonl", "errors.jsonl", "batch.json", "output.jsonl"}
    assert world.body(batch_id, "input.jsonl") == batch.input_bytes()
    assert world.body(batch_id, "output.jsonl") == batch.output_bytes()
    stored = json.loads(world.body(batch_id, "batch.json"))
    assert stored["metadata"]["traceparent"] == create["metadata"]["traceparent"]


def test_trace_json_in_the_folder_wins_over_the_batch_metadata(world: World) -> None:
    """The documented precedence: trace.json, then the batch's metadata."""
    batch_id, _, _ = _submit(world, fault_batch(N_REQUESTS, batch_id="batch_placeholder"))
    batch = _complete(world, batch_id)
    stored_trace, stored_span = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    trace_doc = {"trace_id": stored_trace, "span_id": stored_span}
    world.s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}{batch_id}/trace.json", Body=json.dumps(trace_doc).encode())

    assert _announce(world, batch_id)["statusCode"] == 200
    world.run_jobs()

    spans = delivered(world.receiver, N_REQUESTS + 1)
    assert_batch_delivered(spans, batch, trace_id=stored_trace, parent_span_id=stored_span, mode="explicit")


def test_an_input_file_already_in_the_folder_is_used_not_copied(world: World) -> None:
    batch_id, trace_id, span_id = _submit(world, fault_batch(N_REQUESTS, batch_id="batch_placeholder"))
    batch = _complete(world, batch_id)
    world.s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}{batch_id}/input.jsonl", Body=batch.input_bytes())

    _announce(world, batch_id)
    world.run_jobs()

    assert [p for p in world.api.paths() if p.endswith("/content")] == [
        f"/v1/files/file-error-{batch_id}/content",
        f"/v1/files/file-output-{batch_id}/content",
    ]
    assert_batch_delivered(
        delivered(world.receiver, N_REQUESTS + 1), batch, trace_id=trace_id, parent_span_id=span_id, mode="explicit"
    )


# =========================================================================== forged, replayed, duplicated


def _forged(secret: str, body: bytes) -> dict[str, str]:
    return signed_headers(new_secret(), body)


def _tampered(secret: str, body: bytes) -> dict[str, str]:
    return signed_headers(secret, body.replace(b"batch.completed", b"batch.cancelled"))


def _unversioned(secret: str, body: bytes) -> dict[str, str]:
    headers = signed_headers(secret, body)
    return headers | {"webhook-signature": headers["webhook-signature"].removeprefix("v1,")}


def _no_signature(secret: str, body: bytes) -> dict[str, str]:
    headers = signed_headers(secret, body)
    del headers["webhook-signature"]
    return headers


def _no_headers(secret: str, body: bytes) -> dict[str, str]:
    return {}


def _garbage(secret: str, body: bytes) -> dict[str, str]:
    return signed_headers(secret, body) | {"webhook-signature": "v1,***not base64***"}


@pytest.mark.parametrize(
    "headers",
    [_forged, _tampered, _unversioned, _no_signature, _no_headers, _garbage],
    ids=["other-secret", "body-changed", "no-v1-prefix", "no-signature", "no-headers", "garbage"],
)
def test_a_forged_webhook_is_401_and_changes_nothing(world: World, headers: Any) -> None:
    batch_id, _, _ = _submit(world, fault_batch(N_REQUESTS, batch_id="batch_placeholder"))
    _complete(world, batch_id)
    body = batch_event_body(batch_id)

    response = world.deliver(function_url_event(body, headers(world.secret, body)))

    assert response["statusCode"] == 401, response
    assert json.loads(response["body"]) == {"message": "invalid webhook signature"}
    _nothing_changed(world, batch_id)


@pytest.mark.parametrize("offset_s", [-6 * 60, +6 * 60, -3600 * 24], ids=["6-min-old", "6-min-ahead", "a-day-old"])
def test_a_replayed_webhook_is_401(world: World, offset_s: int) -> None:
    """A genuine signature, but made outside five minutes of now: a replay."""
    batch_id, _, _ = _submit(world, fault_batch(N_REQUESTS, batch_id="batch_placeholder"))
    _complete(world, batch_id)

    response = _announce(world, batch_id, at=time.time() + offset_s)

    assert response["statusCode"] == 401, response
    _nothing_changed(world, batch_id)


def test_a_duplicate_delivery_is_200_and_the_work_is_done_once(world: World) -> None:
    batch_id, trace_id, _ = _submit(world, fault_batch(N_REQUESTS, batch_id="batch_placeholder"))
    _complete(world, batch_id)
    body = batch_event_body(batch_id)
    headers = signed_headers(world.secret, body, at=time.time() - 60)
    first = world.deliver(function_url_event(body, headers))
    # OpenAI redelivers the same message (same webhook-id), re-signed a minute later.
    again = world.deliver(
        function_url_event(body, signed_headers(world.secret, body, webhook_id=headers["webhook-id"]))
    )

    assert (first["statusCode"], again["statusCode"]) == (200, 200)
    assert json.loads(again["body"]) == {"message": "duplicate"}
    (job,) = world.lambda_api.take()
    # Lambda may also deliver an asynchronous event twice: the job runs once.
    first_run = world.handler.lambda_handler(job.payload, _context())
    second_run = world.handler.lambda_handler(job.payload, _context())
    assert first_run == second_run
    assert first_run["trace_id"] == trace_id
    assert world.receiver.span_count == N_REQUESTS + 1
    assert world.api.paths().count(f"/v1/batches/{batch_id}") == 1
    versions = world.s3.list_object_versions(Bucket=BUCKET, Prefix=f"{PREFIX}{batch_id}/output.jsonl")["Versions"]
    assert len(versions) == 1, "the output was copied twice"


def test_the_log_function_on_the_copied_output_does_not_export_again(world: World, monkeypatch: Any) -> None:
    """With TriggerMode s3 the copied output.jsonl also starts LogBatchResultsFunction: one record per upload."""
    batch_id, _, _ = _submit(world, fault_batch(N_REQUESTS, batch_id="batch_placeholder"))
    _complete(world, batch_id)
    _announce(world, batch_id)
    (summary,) = world.run_jobs()
    assert world.receiver.span_count == N_REQUESTS + 1
    version = world.s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}{batch_id}/output.jsonl")["VersionId"]

    app = load_function("log_batch_results", f"app_{uuid.uuid4().hex[:8]}")
    s3_event = json.loads((ROOT / "events" / "s3-put.json").read_text(encoding="utf-8"))
    record = s3_event["Records"][0]["s3"]
    record["bucket"] |= {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"}
    record["object"] |= {"key": f"{PREFIX}{batch_id}/output.jsonl", "versionId": version}
    result = app.lambda_handler(s3_event, FakeLambdaContext())

    assert result == summary
    time.sleep(0.3)
    assert world.receiver.span_count == N_REQUESTS + 1, "the batch was exported twice"


# =========================================================================== failed batches, other bodies


def test_a_failed_batch_gets_its_batch_results_span_in_error_in_the_submitting_trace(world: World) -> None:
    batch_id, trace_id, span_id = _submit(world, fault_batch(N_REQUESTS, batch_id="batch_placeholder"))
    errors = {"object": "list", "data": [{"code": "invalid_json_line", "message": "not JSON", "line": 3}]}
    world.api.finish(batch_id, "failed", errors=errors)

    assert _announce(world, batch_id, "batch.failed")["statusCode"] == 200
    (summary,) = world.run_jobs()

    (span,) = delivered(world.receiver, 1)
    assert span.name == "batch_results"
    assert (span.trace_id, span.parent_span_id) == (trace_id, span_id)
    assert span.status_code == "ERROR", span.status_code
    assert "invalid_json_line" in span.status_message
    assert span.attributes["batchtrace.batch.status"] == "failed"
    assert summary["spans_exported"] == 1
    assert world.keys(batch_id) == set(), "a failed batch has no files to copy"


def test_a_cancelled_batch_without_files_gets_its_span_too(world: World) -> None:
    batch_id, trace_id, _ = _submit(world, fault_batch(N_REQUESTS, batch_id="batch_placeholder"))
    world.api.finish(batch_id, "cancelled")
    _announce(world, batch_id, "batch.cancelled")
    world.run_jobs()
    (span,) = delivered(world.receiver, 1)
    assert (span.name, span.trace_id, span.status_code) == ("batch_results", trace_id, "ERROR")


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2, 3]", b'{"hello": "world"}', b'{"id": "evt_1", "type": "batch.completed", "data": {}}'],
    ids=["not-json", "a-list", "no-type", "no-batch-id"],
)
def test_a_signed_body_that_is_not_a_batch_event_is_400(world: World, body: bytes) -> None:
    response = world.deliver(function_url_event(body, signed_headers(world.secret, body)))
    assert response["statusCode"] == 400, response
    assert json.loads(response["body"]) == {"message": "not an OpenAI webhook event"}
    assert world.lambda_api.take() == []


def test_another_event_type_is_acknowledged_and_ignored(world: World) -> None:
    """The endpoint may be subscribed to more than batches: a 400 would make OpenAI retry it for days."""
    body = json.dumps({"id": "evt_2", "type": "response.completed", "created_at": 1, "data": {"id": "resp_1"}}).encode()
    response = world.deliver(function_url_event(body, signed_headers(world.secret, body)))
    assert response["statusCode"] == 200
    assert world.lambda_api.take() == []


def test_a_get_is_405(world: World) -> None:
    body = batch_event_body("batch_abc")
    response = world.deliver(function_url_event(body, signed_headers(world.secret, body), method="GET"))
    assert response["statusCode"] == 405


# =========================================================================== the signature, as OpenAI makes it


def test_a_hand_built_signature_on_a_base64_body_is_accepted(world: World) -> None:
    """The spec's HMAC, computed with hmac alone, and a body the Function URL base64-encoded."""
    batch_id, _, _ = _submit(world, fault_batch(N_REQUESTS, batch_id="batch_placeholder"))
    _complete(world, batch_id)
    body = batch_event_body(batch_id)
    headers = hand_signed_headers(world.secret, body)

    response = world.deliver(function_url_event(body, headers, base64_body=True))

    assert response["statusCode"] == 200, response
    assert len(world.lambda_api.take()) == 1


def test_signatures_agree_with_the_openai_sdk() -> None:
    """What the library signs, the spec's HMAC and OpenAI's own verifier agree on; a forgery fails all three."""
    secret, body = new_secret(), batch_event_body("batch_sdk")
    at = time.time()
    by_library = signed_headers(secret, body, webhook_id="wh_1", at=at)
    assert hand_signed_headers(secret, body, webhook_id="wh_1", at=at) == by_library
    sdk = openai.OpenAI(api_key="sk-unused", webhook_secret=secret)
    sdk.webhooks.verify_signature(body, by_library)  # does not raise
    event = sdk.webhooks.unwrap(body, by_library)
    assert (event.type, event.data.id) == ("batch.completed", "batch_sdk")
    with pytest.raises(openai.InvalidWebhookSignatureError):
        sdk.webhooks.verify_signature(body, signed_headers(new_secret(), body))


def test_a_job_payload_that_is_not_the_functions_own_is_refused(world: World) -> None:
    with pytest.raises(InvalidBatchPayloadError, match="webhook job"):
        world.handler.lambda_handler({"openai_webhook_job": {"batch_id": "batch_x"}}, _context())
    with pytest.raises(InvalidBatchPayloadError, match="Function URL request"):
        world.handler.lambda_handler({"Records": []}, _context())
