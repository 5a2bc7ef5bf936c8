"""Copying a finished OpenAI batch's files into S3: FetchBatchFilesFunction and ``batchtrace fetch``.

Both run the real openai SDK against a fake OpenAI API on 127.0.0.1 (``tests/support/fake_openai.py``,
whose base URL includes ``/v1`` as ``OPENAI_BASE_URL`` does) and write to S3 through moto. moto
runs in its own process here, so that ``tracemalloc`` in the large-file test measures the
function's memory only, not the mock's copy of the uploaded object.

The handler module is loaded from its file afresh for every test, after the test's environment
is set: its settings are read once, at (cold) start, as in Lambda.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from batchtrace import errors

from tests.support.batches import batch_object
from tests.support.cli import run_batchtrace
from tests.support.fake_openai import FakeOpenAI
from tests.support.lambda_context import fetch_context, load_function
from tests.support.moto_s3 import MotoServer

ROOT = Path(__file__).resolve().parents[2]
FETCH_DIR = ROOT / "functions" / "fetch_batch_files"
API_KEY = "sk-test-" + "Zq8vR2mT5wX1yB4nK7pL0sD3fG6hJ9cV"
BUCKET = "batchtrace-fetch-tests"
PREFIX = "batches/"
MIB = 1024 * 1024


def load_fetch_handler(name: str = "fetch_handler") -> ModuleType:
    """A fresh copy of the fetch function's handler module as ``name``: a cold start, reading the current env."""
    return load_function("fetch_batch_files", name, "fetch_handler")


def fetch_env(moto: MotoServer, api: FakeOpenAI, secret_arn: str) -> dict[str, str]:
    """The function's environment: AWS through moto, OpenAI through the fake, debug logging."""
    return {
        **moto.env(),
        "OPENAI_BASE_URL": api.base_url,
        "OPENAI_API_KEY_SECRET_ARN": secret_arn,
        "BATCHTRACE_PREFIX": PREFIX,
        "POWERTOOLS_SERVICE_NAME": "batchtrace",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
    }


@dataclass
class World:
    api: FakeOpenAI
    s3: Any
    secret_arn: str
    monkeypatch: pytest.MonkeyPatch
    _handler: ModuleType | None = None

    @property
    def handler(self) -> ModuleType:
        """The handler module, cold-started on first use with the environment as it is then."""
        if self._handler is None:
            self._handler = load_fetch_handler()
            # Powertools loggers of one service share a stdlib logger: another test module may have
            # set its level first, so set the level these tests read their logs at.
            self._handler.logger.setLevel("DEBUG")
        return self._handler

    def setenv(self, name: str, value: str) -> None:
        assert self._handler is None, "settings are read at cold start: set the environment before invoking"
        self.monkeypatch.setenv(name, value)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.handler.lambda_handler(event, fetch_context())  # type: ignore[no-any-return]

    def body(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()  # type: ignore[no-any-return]

    def keys(self, batch_id: str) -> set[str]:
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}{batch_id}/")
        return {o["Key"] for o in listed.get("Contents", [])}

    def pending_uploads(self, batch_id: str) -> list[str]:
        listed = self.s3.list_multipart_uploads(Bucket=BUCKET, Prefix=f"{PREFIX}{batch_id}/")
        return [u["Key"] for u in listed.get("Uploads", [])]


@pytest.fixture(scope="module")
def backend() -> Iterator[tuple[MotoServer, FakeOpenAI, str]]:
    """moto (own process), the fake OpenAI API, and the secret holding the key."""
    with MotoServer(own_process=True) as moto, FakeOpenAI(api_key=API_KEY) as api:
        arn = moto.client("secretsmanager").create_secret(Name="openai-api-key", SecretString=API_KEY)["ARN"]
        s3 = moto.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield moto, api, arn


@pytest.fixture
def world(backend: tuple[MotoServer, FakeOpenAI, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    # Per test: the functional tier's autouse fixture scrubs AWS_*, BATCHTRACE_*, OPENAI_* first.
    moto, api, arn = backend
    for name, value in fetch_env(moto, api, arn).items():
        monkeypatch.setenv(name, value)
    api.clear()
    api.on_request = None
    api.api_key = API_KEY
    yield World(api=api, s3=moto.client("s3"), secret_arn=arn, monkeypatch=monkeypatch)
    api.on_request = None
    api.api_key = API_KEY


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


# =========================================================================== the function: the happy path


def test_copies_both_files_beside_the_input_and_returns_the_log_payload(world: World) -> None:
    batch_id = new_batch_id()
    output, errors_file = lines(20, "out"), lines(3, "err")
    world.api.add_file("file-out1", output)
    world.api.add_file("file-err1", errors_file)
    event = event_for(batch_id, output_file_id="file-out1", error_file_id="file-err1")
    event |= {"trace_id": "f928e55f9973eedc2351a29c36377768", "span_id": "fedc642ff8c46be9"}

    payload = world.invoke(event)

    folder = f"{PREFIX}{batch_id}/"
    assert world.body(folder + "output.jsonl") == output
    assert world.body(folder + "errors.jsonl") == errors_file
    assert world.keys(batch_id) == {folder + "output.jsonl", folder + "errors.jsonl", folder + "batch.json"}
    # The final batch object, for the batch_results span's timeline and the counts' reconciliation.
    stored = json.loads(world.body(folder + "batch.json"))
    assert (stored["id"], stored["status"]) == (batch_id, event["batch"]["object"]["status"])
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
    # Through the official SDK, with the key, under the base URL's /v1.
    assert world.api.paths() == ["/v1/files/file-err1/content", "/v1/files/file-out1/content"]
    assert all(r.authorized and r.user_agent.startswith("OpenAI/Python") for r in world.api.requests)


def test_payload_is_what_the_log_function_accepts(world: World) -> None:
    """The returned payload parses as a Step Functions payload, keyed by the output's version id."""
    event_locations = pytest.importorskip("event_locations")
    batch_id = new_batch_id()
    world.api.add_file("file-out2", lines(2, "o"))
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


def test_error_file_is_in_place_before_the_output_file_is_written(world: World) -> None:
    """The output's creation triggers the S3 path, which must find errors.jsonl and batch.json already there."""
    batch_id = new_batch_id()
    folder = f"{PREFIX}{batch_id}/"
    world.api.add_file("file-out3", lines(5, "o"))
    world.api.add_file("file-err3", lines(5, "e"))
    seen: dict[str, set[str]] = {}
    world.api.on_request = lambda path: seen.setdefault(path, world.keys(batch_id))

    world.invoke(event_for(batch_id, output_file_id="file-out3", error_file_id="file-err3"))

    assert seen["/v1/files/file-err3/content"] == set()
    assert seen["/v1/files/file-out3/content"] == {folder + "errors.jsonl", folder + "batch.json"}


@pytest.mark.parametrize("status", ["completed", "expired"])
def test_no_output_file_gives_an_empty_output_jsonl(world: World, status: str) -> None:
    batch_id = new_batch_id()
    folder = f"{PREFIX}{batch_id}/"
    world.api.add_file("file-err4", lines(4, "e"))

    payload = world.invoke(event_for(batch_id, status, output_file_id=None, error_file_id="file-err4"))

    assert world.body(folder + "output.jsonl") == b""
    assert world.body(folder + "errors.jsonl") == lines(4, "e")
    assert payload["output_key"] == folder + "output.jsonl"
    assert payload["errors_key"] == folder + "errors.jsonl"
    assert payload["object_version"]
    assert world.api.paths() == ["/v1/files/file-err4/content"]


def test_no_error_file_writes_only_the_output(world: World) -> None:
    batch_id = new_batch_id()
    world.api.add_file("file-out5", lines(3, "o"))

    payload = world.invoke(event_for(batch_id, output_file_id="file-out5", error_file_id=None))

    assert world.keys(batch_id) == {f"{PREFIX}{batch_id}/output.jsonl", f"{PREFIX}{batch_id}/batch.json"}
    assert "errors_key" not in payload
    assert not {"trace_id", "span_id", "traceparent"} & set(payload)


def test_plain_batch_object_and_custom_prefix(world: World) -> None:
    """A direct invocation may pass the OpenAI batch object itself, under any prefix."""
    batch_id = new_batch_id()
    world.api.add_file("file-out6", lines(1, "o"))
    event = {
        "batch_id": batch_id,
        "bucket": BUCKET,
        "prefix": "batches/team-a/",
        "batch": batch_object(batch_id, "completed", output_file_id="file-out6"),
    }
    payload = world.invoke(event)
    assert payload["output_key"] == f"batches/team-a/{batch_id}/output.jsonl"
    assert world.body(payload["output_key"]) == lines(1, "o")


def test_prefix_and_file_names_come_from_the_shared_settings(world: World) -> None:
    """Without a prefix in the payload, BATCHTRACE_PREFIX; names from BATCHTRACE_*_NAME (the log function's too)."""
    world.setenv("BATCHTRACE_PREFIX", "archive/openai/")
    world.setenv("BATCHTRACE_OUTPUT_NAME", "results.jsonl")
    world.setenv("BATCHTRACE_ERRORS_NAME", "failures.jsonl")
    world.setenv("BATCHTRACE_INPUT_NAME", "requests.jsonl")
    batch_id = new_batch_id()
    world.api.add_file("file-out7", lines(2, "o"))
    world.api.add_file("file-err7", lines(1, "e"))
    event = event_for(batch_id, output_file_id="file-out7", error_file_id="file-err7")
    del event["prefix"]

    payload = world.invoke(event)

    folder = f"archive/openai/{batch_id}/"
    assert payload["output_key"] == folder + "results.jsonl"
    assert payload["errors_key"] == folder + "failures.jsonl"
    assert payload["input_key"] == folder + "requests.jsonl"
    assert world.body(folder + "results.jsonl") == lines(2, "o")
    assert world.body(folder + "failures.jsonl") == lines(1, "e")


# =========================================================================== the function: streaming


def test_large_file_is_streamed_in_parts_with_bounded_memory(world: World, tmp_path: Path) -> None:
    """Memory is a few parts, whatever the file size: 12 and 48 MiB files peak alike."""
    part_mib, concurrency = 5, 2
    world.setenv("BATCHTRACE_FETCH_PART_SIZE_MIB", str(part_mib))
    world.setenv("BATCHTRACE_FETCH_CONCURRENCY", str(concurrency))
    world.invoke(event_for(new_batch_id(), output_file_id=None))  # warm clients and imports up
    peaks = {}
    for size_mib in (12, 48):
        source = tmp_path / f"output-{size_mib}.jsonl"
        digest = _write_jsonl(source, size_mib * MIB)
        size = source.stat().st_size
        world.api.add_file(f"file-big{size_mib}", source)
        event = event_for(new_batch_id(), output_file_id=f"file-big{size_mib}")

        tracemalloc.start()
        try:
            payload = world.invoke(event)
            _, peaks[size_mib] = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

        head = world.s3.head_object(Bucket=BUCKET, Key=payload["output_key"])
        assert head["ContentLength"] == size
        parts = -(-size // (part_mib * MIB))
        assert head["ETag"].strip('"').endswith(f"-{parts}"), "not a multipart upload"
        got = hashlib.sha256()
        for chunk in world.s3.get_object(Bucket=BUCKET, Key=payload["output_key"])["Body"].iter_chunks(MIB):
            got.update(chunk)
        assert got.hexdigest() == digest

    summary = {k: f"{v / MIB:.1f} MiB" for k, v in peaks.items()}
    # About part_size * (concurrency + 1), whatever the file size.
    assert peaks[48] < (concurrency + 2) * part_mib * MIB, summary
    # The 12 MiB file (three parts, the last one small) may not fill the pipeline: one part of slack.
    assert peaks[48] < peaks[12] + part_mib * MIB, f"memory grows with the file: {summary}"
    assert peaks[48] < 48 * MIB / 2, summary


# =========================================================================== the function: failures


def test_missing_file_is_a_typed_error_naming_the_file(world: World) -> None:
    batch_id = new_batch_id()
    world.api.add_file("file-err8", lines(1, "e"))  # the output file is unknown to the fake

    with pytest.raises(errors.OpenAIFileNotFoundError, match="file-out8-gone") as info:
        world.invoke(event_for(batch_id, output_file_id="file-out8-gone", error_file_id="file-err8"))

    assert type(info.value).__name__ == "OpenAIFileNotFoundError"  # the name Step Functions sees
    assert info.value.file_id == "file-out8-gone"
    assert "output file" in str(info.value)
    assert f"{PREFIX}{batch_id}/output.jsonl" not in world.keys(batch_id)
    assert [r.status for r in world.api.requests] == [200, 404], "a 404 is not retried"


def test_server_error_then_success_is_retried_by_the_sdk(world: World) -> None:
    batch_id = new_batch_id()
    world.api.add_file("file-out9", lines(3, "o"))
    world.api.fail("/v1/files/file-out9/content", status=500, times=1)

    payload = world.invoke(event_for(batch_id, output_file_id="file-out9"))

    assert world.body(payload["output_key"]) == lines(3, "o")
    assert [r.status for r in world.api.requests] == [500, 200]


def test_persistent_server_error_is_the_transient_typed_error(world: World) -> None:
    world.setenv("BATCHTRACE_OPENAI_MAX_RETRIES", "1")
    batch_id = new_batch_id()
    world.api.add_file("file-out10", lines(3, "o"))
    world.api.fail("/v1/files/file-out10/content", status=503)

    with pytest.raises(errors.OpenAIFileError, match=r"file-out10: HTTP 503: injected failure 503") as info:
        world.invoke(event_for(batch_id, output_file_id="file-out10"))

    assert type(info.value).__name__ == "OpenAIFileError"  # the one the state machine retries
    assert [r.status for r in world.api.requests] == [503, 503], "the first attempt and BATCHTRACE_OPENAI_MAX_RETRIES"
    assert world.keys(batch_id) == set()


@pytest.mark.parametrize(
    ("status", "error", "retried"),
    [
        (401, errors.OpenAIAuthError, False),
        (403, errors.OpenAIAuthError, False),
        (400, errors.OpenAIRequestError, False),
        (429, errors.OpenAIFileError, True),
    ],
)
def test_refusals_are_typed_and_retried_only_when_transient(
    world: World, status: int, error: type[Exception], retried: bool
) -> None:
    world.setenv("BATCHTRACE_OPENAI_MAX_RETRIES", "1")
    batch_id = new_batch_id()
    world.api.add_file("file-out11", lines(1, "o"))
    world.api.fail("/v1/files/file-out11/content", status=status)

    with pytest.raises(error, match=f"HTTP {status}") as info:
        world.invoke(event_for(batch_id, output_file_id="file-out11"))

    assert isinstance(info.value, errors.InputError) is not retried
    assert len(world.api.requests) == (2 if retried else 1)
    assert world.keys(batch_id) == set()


def test_rejected_key_is_an_auth_error(world: World) -> None:
    world.api.api_key = "sk-some-other-key-0000000000"
    world.api.add_file("file-out12", lines(1, "o"))
    with pytest.raises(errors.OpenAIAuthError, match="HTTP 401") as info:
        world.invoke(event_for(new_batch_id(), output_file_id="file-out12"))
    assert type(info.value).__name__ == "OpenAIAuthError"
    assert [r.authorized for r in world.api.requests] == [False]


@pytest.mark.parametrize("size_mib", [0, 12])
def test_cut_off_download_fails_without_leaving_an_output_file(world: World, tmp_path: Path, size_mib: int) -> None:
    """A body that ends early (small: one PUT; 12 MiB: multipart) is transient, and nothing is left behind."""
    world.setenv("BATCHTRACE_FETCH_PART_SIZE_MIB", "5")
    batch_id = new_batch_id()
    if size_mib:
        source = tmp_path / "output.jsonl"
        _write_jsonl(source, size_mib * MIB)
        world.api.add_file("file-out13", source)
    else:
        world.api.add_file("file-out13", lines(2000, "o"))
    world.api.fail("/v1/files/file-out13/content", status=None)

    with pytest.raises(errors.OpenAIFileError, match="broke off"):
        world.invoke(event_for(batch_id, output_file_id="file-out13"))

    assert world.keys(batch_id) == set()
    assert world.pending_uploads(batch_id) == [], "the multipart upload was not aborted"


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
def test_unusable_payloads_are_rejected_before_any_download(world: World, change: Any, message: str) -> None:
    event = event_for(new_batch_id(), output_file_id="file-out14")
    change(event)
    with pytest.raises(errors.InvalidBatchPayloadError, match=message):
        world.invoke(event)
    assert world.api.requests == []


# =========================================================================== the function: the key and the settings


def test_the_api_key_never_reaches_logs_or_errors(world: World, capfd: pytest.CaptureFixture[str]) -> None:
    # The Powertools handler keeps the stdout it saw at import: read its output directly.
    handler = world.handler.logger.registered_handler
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        messages = _provoke_every_path(world)
    finally:
        handler.setStream(previous)

    out, err = capfd.readouterr()
    logged = stream.getvalue() + out + err
    assert "copied OpenAI file" in logged and "OpenAIAuthError" in logged, "logs were not captured"
    for text in (logged, *messages):
        assert API_KEY not in text
        assert API_KEY[8:] not in text
        assert "Bearer" not in text


def _provoke_every_path(world: World) -> list[str]:
    """A success, a 500, a 404 and a 401; the errors' messages."""
    world.api.add_file("file-out15", lines(2, "o"))
    world.api.add_file("file-err15", lines(2, "e"))
    world.invoke(event_for(new_batch_id(), output_file_id="file-out15", error_file_id="file-err15"))
    messages: list[str] = []
    world.api.fail("/v1/files/file-out15/content", status=500)
    with pytest.raises(errors.OpenAIFileError) as server_error:
        world.invoke(event_for(new_batch_id(), output_file_id="file-out15"))
    messages.append(str(server_error.value))
    with pytest.raises(errors.OpenAIFileNotFoundError) as not_found:
        world.invoke(event_for(new_batch_id(), output_file_id="file-nope15"))
    messages.append(str(not_found.value))
    world.api.api_key = "sk-rotated-elsewhere-000000000"
    with pytest.raises(errors.OpenAIAuthError) as auth:
        world.invoke(event_for(new_batch_id(), output_file_id="file-out15"))
    messages.append(str(auth.value))
    return messages


def test_secret_must_hold_the_bare_key(world: World) -> None:
    secrets = boto3.client("secretsmanager")
    json_secret = json.dumps({"api_key": API_KEY})
    arn = secrets.create_secret(Name=f"openai-json-{uuid.uuid4().hex[:6]}", SecretString=json_secret)["ARN"]
    world.setenv("OPENAI_API_KEY_SECRET_ARN", arn)
    with pytest.raises(errors.FetchConfigurationError, match="bare key") as info:
        world.invoke(event_for(new_batch_id(), output_file_id="file-out16"))
    assert API_KEY not in str(info.value)
    assert world.api.requests == []


def test_settings_are_read_and_checked_at_cold_start(world: World) -> None:
    settings_type = world.handler.Settings
    with pytest.raises(errors.FetchConfigurationError, match="OPENAI_API_KEY_SECRET_ARN"):
        settings_type.from_env({})
    settings = settings_type.from_env({"OPENAI_API_KEY_SECRET_ARN": "arn:x", "BATCHTRACE_FETCH_PART_SIZE_MIB": "1"})
    assert settings.fetch.openai.base_url == "https://api.openai.com/v1", "the SDK's default, with /v1"
    assert settings.fetch.transfer.part_size == 5 * MIB, "S3's minimum part size"
    assert settings.fetch.prefix == "batches/"
    for bad, message in [
        ({"OPENAI_BASE_URL": "api.openai.com/v1"}, "OPENAI_BASE_URL"),
        ({"BATCHTRACE_PREFIX": "/batches"}, "BATCHTRACE_PREFIX"),
        ({"BATCHTRACE_FETCH_CONCURRENCY": "many"}, "BATCHTRACE_FETCH_CONCURRENCY"),
        ({"BATCHTRACE_OUTPUT_NAME": "a/output.jsonl"}, "BATCHTRACE_OUTPUT_NAME"),
    ]:
        with pytest.raises(errors.ConfigurationError, match=message):
            settings_type.from_env({"OPENAI_API_KEY_SECRET_ARN": "arn:x", **bad})


def test_handler_modules_of_the_two_functions_do_not_collide() -> None:
    """Each function directory is a Lambda task root; tests and tools put both on one path."""
    fetch = {p.stem for p in FETCH_DIR.glob("*.py")}
    log = {p.stem for p in (ROOT / "functions" / "log_batch_results").glob("*.py")}
    assert "fetch_handler" in fetch
    assert not fetch & log, fetch & log


# =========================================================================== batchtrace fetch (the CLI)


@pytest.fixture
def cli_world(world: World) -> World:
    """The CLI reads the key from OPENAI_API_KEY (the openai SDK's variable) instead of a secret."""
    world.monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    return world


def test_cli_fetch_copies_a_finished_batch(cli_world: World) -> None:
    batch_id = new_batch_id()
    cli_world.api.set_batch(
        batch_id, batch_object(batch_id, "expired", output_file_id="file-out20", error_file_id="file-err20")
    )
    cli_world.api.add_file("file-out20", lines(4, "o"))
    cli_world.api.add_file("file-err20", lines(2, "e"))

    result = run_batchtrace(
        "fetch", "--batch-id", batch_id, "--bucket", BUCKET, "--prefix", "batches/cli/", script=True
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    payload = json.loads(result.stdout)
    folder = f"batches/cli/{batch_id}/"
    assert payload["output_key"] == folder + "output.jsonl"
    assert payload["errors_key"] == folder + "errors.jsonl"
    assert payload["batch_id"] == batch_id and payload["bucket"] == BUCKET
    assert cli_world.body(folder + "output.jsonl") == lines(4, "o")
    assert cli_world.body(folder + "errors.jsonl") == lines(2, "e")
    assert cli_world.api.paths() == [
        f"/v1/batches/{batch_id}",
        "/v1/files/file-err20/content",
        "/v1/files/file-out20/content",
    ]


def _assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("batchtrace: error: "), line
    for needle in needles:
        assert needle in line, line
    assert API_KEY not in line and API_KEY[8:] not in line


@pytest.mark.parametrize(
    ("scenario", "code", "needle"),
    [
        ("key refused", 2, "refused the API key"),
        ("no such batch", 2, "not found"),
        ("not finished", 2, "status 'in_progress'"),
        ("no such file", 2, "file-out21 not found"),
        ("server down", 1, "HTTP 500"),
        ("no key", 2, "OPENAI_API_KEY"),
        ("bad prefix", 2, "prefix"),
    ],
)
def test_cli_fetch_exit_codes(cli_world: World, scenario: str, code: int, needle: str) -> None:
    batch_id = new_batch_id()
    status = "in_progress" if scenario == "not finished" else "completed"
    if scenario != "no such batch":
        cli_world.api.set_batch(batch_id, batch_object(batch_id, status, output_file_id="file-out21"))
    if scenario != "no such file":
        cli_world.api.add_file("file-out21", lines(1, "o"))
    if scenario == "key refused":
        cli_world.api.api_key = "sk-another-key-entirely-00000"
    if scenario == "server down":
        cli_world.monkeypatch.setenv("BATCHTRACE_OPENAI_MAX_RETRIES", "0")
        cli_world.api.fail("/v1/files/file-out21/content", status=500)
    if scenario == "no key":
        cli_world.monkeypatch.delenv("OPENAI_API_KEY")
    prefix = "batches" if scenario == "bad prefix" else PREFIX

    result = run_batchtrace("fetch", "--batch-id", batch_id, "--bucket", BUCKET, "--prefix", prefix, script=True)

    _assert_one_line_error(result, code, needle)
    assert cli_world.keys(batch_id) == set()


def test_cli_fetch_needs_its_arguments() -> None:
    result = run_batchtrace("fetch", "--batch-id", "batch_abc", script=True)
    _assert_one_line_error(result, 2, "--bucket")
