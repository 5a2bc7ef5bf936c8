"""FetchBatchFilesFunction against a fake OpenAI API and an S3 + Secrets Manager API (moto).

The function is loaded from its file under the module name ``fetch_batch_files_app`` (both
functions have an ``app.py``; the log function's is the ``app`` on the test path). moto runs
in its own process here, so that ``tracemalloc`` in the large-file test measures the
function's memory only, not the mock's copy of the uploaded object.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from tests.support.batches import batch_object
from tests.support.fake_openai import FakeOpenAI
from tests.support.lambda_context import fetch_context, load_function
from tests.support.moto_s3 import MotoServer

ROOT = Path(__file__).resolve().parents[2]
FETCH_APP = ROOT / "functions" / "fetch_batch_files" / "app.py"
API_KEY = "sk-test-" + "Zq8vR2mT5wX1yB4nK7pL0sD3fG6hJ9cV"
BUCKET = "batchtrace-fetch-tests"
PREFIX = "batches/"


def load_fetch_app(name: str = "fetch_batch_files_app") -> ModuleType:
    """A fresh copy of functions/fetch_batch_files/app.py as module ``name``."""
    return load_function("fetch_batch_files", name)


@dataclass
class World:
    app: ModuleType
    api: FakeOpenAI
    s3: Any
    secret_arn: str

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.app.lambda_handler(event, fetch_context())  # type: ignore[no-any-return]

    def body(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()  # type: ignore[no-any-return]

    def keys(self, batch_id: str) -> set[str]:
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}{batch_id}/")
        return {o["Key"] for o in listed.get("Contents", [])}


def fetch_env(moto: MotoServer, api: FakeOpenAI, secret_arn: str) -> dict[str, str]:
    """The function's environment: AWS through moto, OpenAI through the fake, debug logging."""
    return {
        **moto.env(),
        "OPENAI_BASE_URL": api.base_url,
        "OPENAI_API_KEY_SECRET_ARN": secret_arn,
        "OPENAI_RETRY_BACKOFF_SECONDS": "0",
        "POWERTOOLS_SERVICE_NAME": "batchtrace",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
    }


@pytest.fixture(scope="module")
def backend() -> Iterator[tuple[MotoServer, FakeOpenAI, str, ModuleType]]:
    """moto (own process), the fake OpenAI API, the secret, and the function's module."""
    with MotoServer(own_process=True) as moto, FakeOpenAI(api_key=API_KEY) as api:
        arn = moto.client("secretsmanager").create_secret(Name="openai-api-key", SecretString=API_KEY)["ARN"]
        s3 = moto.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield moto, api, arn, load_fetch_app()


@pytest.fixture
def world(backend: tuple[MotoServer, FakeOpenAI, str, ModuleType], monkeypatch: pytest.MonkeyPatch) -> World:
    # Per test: the functional tier's autouse fixture scrubs AWS_* before every test.
    moto, api, arn, app = backend
    for name, value in fetch_env(moto, api, arn).items():
        monkeypatch.setenv(name, value)
    # Powertools loggers of one service share a stdlib logger: another test module may have set
    # its level first, so set the level these tests read their logs at.
    app.logger.setLevel("DEBUG")
    return World(app=app, api=api, s3=moto.client("s3"), secret_arn=arn)


@pytest.fixture
def api(world: World) -> Iterator[FakeOpenAI]:
    world.api.clear()
    world.api.on_request = None
    yield world.api
    world.api.on_request = None


def new_batch_id() -> str:
    return f"batch_{uuid.uuid4().hex[:24]}"


def lines(n: int, tag: str) -> bytes:
    return b"".join(
        json.dumps({"id": f"batch_req_{tag}{i}", "custom_id": f"{tag}-{i}", "response": None}).encode() + b"\n"
        for i in range(n)
    )


def event_for(batch_id: str, status: str = "completed", **files: Any) -> dict[str, Any]:
    """The state machine's data at FetchBatchFiles."""
    return {
        "batch_id": batch_id,
        "bucket": BUCKET,
        "prefix": PREFIX,
        "poll_interval_seconds": 300,
        "batch": {"status": status, "object": batch_object(batch_id, status, **files)},
    }


# --------------------------------------------------------------------------- the happy path


def test_copies_both_files_beside_the_input_and_returns_the_log_payload(world: World, api: FakeOpenAI) -> None:
    batch_id = new_batch_id()
    output, errors = lines(20, "out"), lines(3, "err")
    api.add_file("file-out1", output)
    api.add_file("file-err1", errors)
    event = event_for(batch_id, output_file_id="file-out1", error_file_id="file-err1")
    event |= {"trace_id": "f928e55f9973eedc2351a29c36377768", "span_id": "fedc642ff8c46be9"}

    payload = world.invoke(event)

    folder = f"{PREFIX}{batch_id}/"
    assert world.body(folder + "output.jsonl") == output
    assert world.body(folder + "errors.jsonl") == errors
    assert world.keys(batch_id) == {folder + "output.jsonl", folder + "errors.jsonl"}
    version = world.s3.head_object(Bucket=BUCKET, Key=folder + "output.jsonl")["VersionId"]
    assert payload == {
        "bucket": BUCKET,
        "batch_id": batch_id,
        "input_key": folder + "input.jsonl",
        "output_key": folder + "output.jsonl",
        "errors_key": folder + "errors.jsonl",
        "object_version": version,
        "trace_id": "f928e55f9973eedc2351a29c36377768",
        "span_id": "fedc642ff8c46be9",
    }
    assert all(r.authorized for r in api.requests)
    assert api.paths() == ["/v1/files/file-err1/content", "/v1/files/file-out1/content"]


def test_payload_is_what_the_log_function_accepts(world: World, api: FakeOpenAI) -> None:
    """The returned payload parses as a Step Functions payload, keyed by the output's version id."""
    event_locations = pytest.importorskip("event_locations")
    batch_id = new_batch_id()
    api.add_file("file-out2", lines(2, "o"))
    payload = world.invoke(
        event_for(batch_id, output_file_id="file-out2") | {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}
    )

    (location,) = event_locations.locations_from_event(payload, "output.jsonl")
    assert location.bucket == BUCKET
    assert location.output_key == f"{PREFIX}{batch_id}/output.jsonl"
    assert location.input_key == f"{PREFIX}{batch_id}/input.jsonl"
    assert location.errors_key is None
    assert location.object_tag == payload["object_version"]
    assert location.traceparent == payload["traceparent"]
    assert location.batch_id == batch_id


def test_error_file_is_in_place_before_the_output_file_is_written(world: World, api: FakeOpenAI) -> None:
    """The output's creation triggers the S3 path, which must find errors.jsonl already there."""
    batch_id = new_batch_id()
    folder = f"{PREFIX}{batch_id}/"
    api.add_file("file-out3", lines(5, "o"))
    api.add_file("file-err3", lines(5, "e"))
    seen: dict[str, set[str]] = {}
    api.on_request = lambda path: seen.setdefault(path, world.keys(batch_id))

    world.invoke(event_for(batch_id, output_file_id="file-out3", error_file_id="file-err3"))

    assert seen["/v1/files/file-err3/content"] == set()
    assert seen["/v1/files/file-out3/content"] == {folder + "errors.jsonl"}


@pytest.mark.parametrize("status", ["completed", "expired"])
def test_no_output_file_gives_an_empty_output_jsonl(world: World, api: FakeOpenAI, status: str) -> None:
    batch_id = new_batch_id()
    folder = f"{PREFIX}{batch_id}/"
    api.add_file("file-err4", lines(4, "e"))

    payload = world.invoke(event_for(batch_id, status, output_file_id=None, error_file_id="file-err4"))

    assert world.body(folder + "output.jsonl") == b""
    assert world.body(folder + "errors.jsonl") == lines(4, "e")
    assert payload["output_key"] == folder + "output.jsonl"
    assert payload["errors_key"] == folder + "errors.jsonl"
    assert payload["object_version"]
    assert api.paths() == ["/v1/files/file-err4/content"]


def test_no_error_file_writes_only_the_output(world: World, api: FakeOpenAI) -> None:
    batch_id = new_batch_id()
    api.add_file("file-out5", lines(3, "o"))

    payload = world.invoke(event_for(batch_id, output_file_id="file-out5", error_file_id=None))

    assert world.keys(batch_id) == {f"{PREFIX}{batch_id}/output.jsonl"}
    assert "errors_key" not in payload
    assert not {"trace_id", "span_id", "traceparent"} & set(payload)


def test_plain_batch_object_and_custom_prefix(world: World, api: FakeOpenAI) -> None:
    """A direct invocation may pass the OpenAI batch object itself, under any prefix."""
    batch_id = new_batch_id()
    api.add_file("file-out6", lines(1, "o"))
    event = {
        "batch_id": batch_id,
        "bucket": BUCKET,
        "prefix": "batches/team-a/",
        "batch": batch_object(batch_id, "completed", output_file_id="file-out6"),
    }
    payload = world.invoke(event)
    assert payload["output_key"] == f"batches/team-a/{batch_id}/output.jsonl"
    assert world.body(payload["output_key"]) == lines(1, "o")


# --------------------------------------------------------------------------- streaming


def _write_jsonl(path: Path, size: int) -> str:
    """A JSONL file of about ``size`` bytes; returns its sha256."""
    digest = hashlib.sha256()
    line = json.dumps({"custom_id": "x" * 40, "response": {"body": {"content": "y" * 900}}}).encode() + b"\n"
    block = line * 1024
    with path.open("wb") as fh:
        while fh.tell() < size:
            fh.write(block)
            digest.update(block)
    return digest.hexdigest()


def test_large_file_is_streamed_in_parts_with_bounded_memory(
    world: World, api: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory is a few parts, whatever the file size: 12 and 48 MiB files peak alike."""
    mib = 1024 * 1024
    part_mib, concurrency = 5, 2
    monkeypatch.setenv("FETCH_PART_SIZE_MIB", str(part_mib))
    monkeypatch.setenv("FETCH_CONCURRENCY", str(concurrency))
    world.invoke(event_for(new_batch_id(), output_file_id=None))  # warm clients and imports up
    peaks = {}
    for size_mib in (12, 48):
        source = tmp_path / f"output-{size_mib}.jsonl"
        digest = _write_jsonl(source, size_mib * mib)
        size = source.stat().st_size
        api.add_file(f"file-big{size_mib}", source)
        event = event_for(new_batch_id(), output_file_id=f"file-big{size_mib}")

        tracemalloc.start()
        try:
            payload = world.invoke(event)
            _, peaks[size_mib] = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

        head = world.s3.head_object(Bucket=BUCKET, Key=payload["output_key"])
        assert head["ContentLength"] == size
        parts = -(-size // (part_mib * mib))
        assert head["ETag"].strip('"').endswith(f"-{parts}"), "not a multipart upload"
        got = hashlib.sha256()
        for chunk in world.s3.get_object(Bucket=BUCKET, Key=payload["output_key"])["Body"].iter_chunks(mib):
            got.update(chunk)
        assert got.hexdigest() == digest

    summary = {k: f"{v / mib:.1f} MiB" for k, v in peaks.items()}
    # About part_size * (concurrency + 1), whatever the file size.
    assert peaks[48] < (concurrency + 2) * part_mib * mib, summary
    assert peaks[48] < peaks[12] + 3 * mib, f"memory grows with the file: {summary}"
    assert peaks[48] < 48 * mib / 2, summary


# --------------------------------------------------------------------------- failures


def test_missing_file_is_a_typed_error_naming_the_file(world: World, api: FakeOpenAI) -> None:
    batch_id = new_batch_id()
    api.add_file("file-err7", lines(1, "e"))  # the output file is unknown to the fake

    with pytest.raises(world.app.OpenAIFileNotFoundError, match="file-out7-gone") as info:
        world.invoke(event_for(batch_id, output_file_id="file-out7-gone", error_file_id="file-err7"))

    assert type(info.value).__name__ == "OpenAIFileNotFoundError"  # the name Step Functions sees
    assert info.value.file_id == "file-out7-gone"
    assert "output file" in str(info.value)
    assert f"{PREFIX}{batch_id}/output.jsonl" not in world.keys(batch_id)


def test_server_errors_are_retried_then_succeed(world: World, api: FakeOpenAI) -> None:
    batch_id = new_batch_id()
    api.add_file("file-out8", lines(3, "o"))
    api.fail("/v1/files/file-out8/content", status=503, times=2)

    payload = world.invoke(event_for(batch_id, output_file_id="file-out8"))

    assert world.body(payload["output_key"]) == lines(3, "o")
    assert [r.status for r in api.requests] == [503, 503, 200]


def test_persistent_server_error_is_the_transient_typed_error(world: World, api: FakeOpenAI) -> None:
    batch_id = new_batch_id()
    api.add_file("file-out9", lines(3, "o"))
    api.fail("/v1/files/file-out9/content", status=500)

    with pytest.raises(world.app.OpenAIFileError, match=r"file-out9: HTTP 500: injected failure 500"):
        world.invoke(event_for(batch_id, output_file_id="file-out9"))

    assert len(api.requests) == 5  # the first attempt and 4 retries
    assert world.keys(batch_id) == set()


def test_cut_off_download_fails_without_writing_a_partial_file(world: World, api: FakeOpenAI) -> None:
    batch_id = new_batch_id()
    api.add_file("file-out10", lines(2000, "o"))
    api.fail("/v1/files/file-out10/content", status=None)

    with pytest.raises(world.app.OpenAIFileError, match="broke off"):
        world.invoke(event_for(batch_id, output_file_id="file-out10"))

    assert world.keys(batch_id) == set()


def test_rejected_key_is_an_auth_error(world: World, api: FakeOpenAI) -> None:
    api.api_key = "sk-some-other-key-0000000000"
    try:
        api.add_file("file-out11", lines(1, "o"))
        with pytest.raises(world.app.OpenAIAuthError, match="HTTP 401"):
            world.invoke(event_for(new_batch_id(), output_file_id="file-out11"))
    finally:
        api.api_key = API_KEY
    assert [r.authorized for r in api.requests] == [False]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.pop("batch_id"), "batch_id"),
        (lambda e: e.update(batch_id="../etc"), "not an OpenAI batch id"),
        (lambda e: e.update(bucket=""), "bucket"),
        (lambda e: e.update(prefix="../other/"), "prefix"),
        (lambda e: e.update(prefix="batches"), "prefix"),
        (lambda e: e.pop("batch"), "OpenAI batch object"),
        (lambda e: e["batch"]["object"].update(status="in_progress"), "status 'in_progress'"),
        (lambda e: e["batch"]["object"].update(id="batch_other"), "is not batch"),
        (lambda e: e["batch"]["object"].update(output_file_id="../../x"), "not an OpenAI file id"),
        (lambda e: e.update(trace_id=123), "trace_id must be a string"),
    ],
)
def test_unusable_payloads_are_rejected_before_any_download(
    world: World, api: FakeOpenAI, change: Any, message: str
) -> None:
    event = event_for(new_batch_id(), output_file_id="file-out12")
    change(event)
    with pytest.raises(world.app.InvalidBatchPayloadError, match=message):
        world.invoke(event)
    assert api.requests == []


# --------------------------------------------------------------------------- the secret


def test_the_api_key_never_reaches_logs_or_errors(
    world: World, api: FakeOpenAI, capfd: pytest.CaptureFixture[str]
) -> None:
    # The Powertools handler keeps the stdout it saw at import: read its output directly.
    handler = world.app.logger.registered_handler
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        errors = _provoke_every_path(world, api)
    finally:
        handler.setStream(previous)

    out, err = capfd.readouterr()
    logged = stream.getvalue() + out + err
    assert "copied OpenAI file" in logged and "OpenAIAuthError" in logged, "logs were not captured"
    for text in (logged, *errors):
        assert API_KEY not in text
        assert API_KEY[8:] not in text
        assert "Bearer" not in text


def _provoke_every_path(world: World, api: FakeOpenAI) -> list[str]:
    """A success, a 500, a 404 and a 401; the errors' messages."""
    api.add_file("file-out13", lines(2, "o"))
    api.add_file("file-err13", lines(2, "e"))
    world.invoke(event_for(new_batch_id(), output_file_id="file-out13", error_file_id="file-err13"))
    errors: list[str] = []
    api.fail("/v1/files/file-out13/content", status=500)
    with pytest.raises(world.app.OpenAIFileError) as server_error:
        world.invoke(event_for(new_batch_id(), output_file_id="file-out13"))
    errors.append(str(server_error.value))
    with pytest.raises(world.app.OpenAIFileNotFoundError) as not_found:
        world.invoke(event_for(new_batch_id(), output_file_id="file-nope13"))
    errors.append(str(not_found.value))
    api.api_key = "sk-rotated-elsewhere-000000000"
    try:
        with pytest.raises(world.app.OpenAIAuthError) as auth:
            world.invoke(event_for(new_batch_id(), output_file_id="file-out13"))
        errors.append(str(auth.value))
    finally:
        api.api_key = API_KEY
    return errors


def test_secret_must_hold_the_bare_key(world: World, api: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = boto3.client("secretsmanager")
    json_secret = json.dumps({"api_key": API_KEY})
    arn = secrets.create_secret(Name=f"openai-json-{uuid.uuid4().hex[:6]}", SecretString=json_secret)["ARN"]
    monkeypatch.setenv("OPENAI_API_KEY_SECRET_ARN", arn)
    with pytest.raises(world.app.FetchConfigurationError, match="bare key") as info:
        world.invoke(event_for(new_batch_id(), output_file_id="file-out14"))
    assert API_KEY not in str(info.value)
    assert api.requests == []


def test_settings_need_the_secret_arn() -> None:
    app = sys.modules.get("fetch_batch_files_app") or load_fetch_app()
    with pytest.raises(app.FetchConfigurationError, match="OPENAI_API_KEY_SECRET_ARN"):
        app.FetchSettings.from_env({})
    settings = app.FetchSettings.from_env({"OPENAI_API_KEY_SECRET_ARN": "arn:x", "FETCH_PART_SIZE_MIB": "1"})
    assert settings.base_url == "https://api.openai.com"
    assert settings.part_size == 5 * 1024 * 1024, "S3's minimum part size"


def test_module_does_not_shadow_the_log_function_app() -> None:
    """Both functions have app.py: this one is loaded by path, the log function's stays ``app``."""
    app = sys.modules.get("fetch_batch_files_app") or load_fetch_app()
    assert Path(app.__file__).resolve() == FETCH_APP
    log_app = sys.modules.get("app")
    if log_app is not None:
        assert Path(log_app.__file__).parent.name == "log_batch_results"
    assert os.path.basename(FETCH_APP.parent) == "fetch_batch_files"
