"""End to end against a real trace backend: the sample batch, through the handler, into Arize Phoenix.

Phoenix runs from its own venv (``make phoenix-venv`` builds ``.venv-phoenix`` from
``tests/e2e/phoenix-requirements.txt``) as a subprocess on 127.0.0.1, with its SQLite database in
a temporary directory and everything that could reach the internet switched off (telemetry, the
WASM sandbox download, the assistant). The handler runs in-process against a local S3 (moto),
exports to Phoenix's OTLP/HTTP endpoint, and the spans are read back through Phoenix's REST API
(``GET /v1/projects/{project}/spans``), which is what a user of Phoenix would see.

Phoenix (since 15.10.0) turns the OTel GenAI attributes we emit into OpenInference ones on
ingestion, so the assertions are on the OpenInference names Phoenix shows (``llm.model_name``,
``llm.token_count.*``, ``llm.input_messages.*``, ...).

Without ``.venv-phoenix`` the test is skipped on a developer machine and fails in CI (``CI`` set).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import posixpath
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.lambda_context import FakeLambdaContext
from tests.support.moto_s3 import MotoServer
from tests.support.otlp_receiver import unused_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PHOENIX_VENV = ROOT / ".venv-phoenix"
PHOENIX_PYTHON = PHOENIX_VENV / "bin" / "python"
EVENT = ROOT / "events" / "s3-put.json"
SAMPLES = ROOT / "samplefiles"
#: Upload order matters: the output file's creation is what triggers the function.
UPLOAD_ORDER = ("input.jsonl", "trace.json", "errors.jsonl", "output.jsonl")
PROJECT = "batchtrace-e2e"

#: Bounds (seconds). A cold start on 2 cores runs Phoenix's migrations and imports a large tree.
STARTUP_TIMEOUT_S = 180.0
SPANS_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0

#: Phoenix settings for a hermetic run: loopback only, nothing fetched or reported to the internet.
PHOENIX_SETTINGS = {
    "PHOENIX_HOST": "127.0.0.1",
    "PHOENIX_TELEMETRY_ENABLED": "false",
    # No downloads of its own (the WASM sandbox runtime from GitHub, the docs MCP server).
    "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
    "PHOENIX_ALLOWED_SANDBOX_PROVIDERS": "NONE",
    "PHOENIX_DISABLE_AGENT_ASSISTANT": "true",
    "PHOENIX_LOG_MIGRATIONS": "false",
    "PYTHONUNBUFFERED": "1",
}
#: Inherited variables that could point either process at a real backend or real AWS.
_SCRUBBED_PREFIXES = ("OTEL_", "PHOENIX_", "RESPAN_", "AWS_", "BATCHTRACE_")
_SCRUBBED_NAMES = ("OTLP_HEADERS_SECRET_ARN", "RESPAN_API_KEY_SECRET_ARN", "IDEMPOTENCY_TABLE")

ERROR_IDS = {"ticket-classify-0003", "translate-faq-0012", "extract-contact-0551", "ticket-priority-0004"}
TOOL_CALL_ID = "extract-invoice-INV-2026-0193"


def _scrubbed_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES) and k not in _SCRUBBED_NAMES}


def _get_json(url: str, timeout: float = 10.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # loopback only
        return json.load(response)


@dataclass
class Phoenix:
    """A running Phoenix server and where its log goes."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def otlp_endpoint(self) -> str:
        return f"{self.base_url}/v1/traces"

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def traces(self, project: str) -> list[dict[str, Any]]:
        """Phoenix's trace list of ``project`` (one page is plenty here), with its token totals."""
        quoted = urllib.parse.quote(project, safe="")
        return list(_get_json(f"{self.base_url}/v1/projects/{quoted}/traces?limit=100")["data"])

    def spans(self, project: str) -> list[dict[str, Any]]:
        """Every span of ``project`` (an empty list while the project does not exist yet)."""
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        quoted = urllib.parse.quote(project, safe="")
        while True:
            query = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
            url = f"{self.base_url}/v1/projects/{quoted}/spans?{urllib.parse.urlencode(query)}"
            try:
                page = _get_json(url)
            except urllib.error.HTTPError as err:
                if err.code == 404:
                    return []
                raise
            out.extend(page["data"])
            cursor = page.get("next_cursor")
            if not cursor:
                return out


def _start_phoenix(workdir: Path) -> Phoenix:
    port, grpc_port = unused_port(), unused_port()
    env = {
        **_scrubbed_environ(),
        **PHOENIX_SETTINGS,
        "PHOENIX_WORKING_DIR": str(workdir),
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(grpc_port),
    }
    log_path = workdir / "phoenix.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(PHOENIX_PYTHON), "-m", "phoenix.server.main", "serve"],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stopping it reaches any children
        )
    phoenix = Phoenix(process, port, log_path)
    try:
        _wait_until_ready(phoenix)
    except BaseException:
        _stop_phoenix(phoenix)
        raise
    return phoenix


def _wait_until_ready(phoenix: Phoenix) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if phoenix.process.poll() is not None:
            code = phoenix.process.returncode
            pytest.fail(f"Phoenix exited with code {code} during startup:\n{phoenix.log_tail()}")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{phoenix.base_url}/healthz", timeout=2) as ready:
            if ready.status == 200:
                return
        if time.monotonic() > deadline:
            pytest.fail(f"Phoenix not ready after {STARTUP_TIMEOUT_S:.0f} s:\n{phoenix.log_tail()}")
        time.sleep(0.25)


def _stop_phoenix(phoenix: Phoenix) -> None:
    """SIGTERM (uvicorn shuts down in ~2 s), then SIGKILL of the whole group if it hangs."""
    process = phoenix.process
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT_S)


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Phoenix]:
    if not PHOENIX_PYTHON.exists():
        reason = f"{PHOENIX_VENV.name} not found: run `make phoenix-venv` (make test does it)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; in CI this test must run, not skip")
        pytest.skip(reason)
    server = _start_phoenix(tmp_path_factory.mktemp("phoenix"))
    try:
        yield server
    finally:
        _stop_phoenix(server)


@dataclass(frozen=True)
class Delivered:
    summary: dict[str, Any]
    spans: list[dict[str, Any]]


@pytest.fixture(scope="module")
def delivered(phoenix: Phoenix) -> Delivered:
    """The sample batch through the handler into Phoenix; the spans as Phoenix's REST API returns them."""
    event = json.loads(EVENT.read_text())
    record = event["Records"][0]["s3"]
    bucket, output_key = record["bucket"]["name"], record["object"]["key"]
    folder = posixpath.dirname(output_key)
    with MotoServer() as moto, pytest.MonkeyPatch.context() as mp:
        # Module scope runs before conftest's per-test scrubbing, so this fixture scrubs for itself.
        for name in list(os.environ):
            if name.startswith(_SCRUBBED_PREFIXES) or name in _SCRUBBED_NAMES:
                mp.delenv(name)
        for name, value in {
            **moto.env(),
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": phoenix.otlp_endpoint,
            "OTEL_SERVICE_NAME": "batchtrace",
            # Phoenix files spans under the project named by this resource attribute.
            "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={PROJECT}",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }.items():
            mp.setenv(name, value)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=bucket)
        for name in UPLOAD_ORDER:
            s3.upload_file(str(SAMPLES / name), bucket, f"{folder}/{name}")
        app = importlib.import_module("app")
        # The handler module builds its S3 client and settings at import (Lambda's cold start);
        # another test may have imported it under other variables, so give it this test's.
        mp.setattr(app, "s3", boto3.client("s3"))
        mp.setattr(app, "settings", app.Settings.from_env())
        context = FakeLambdaContext(remaining_ms=300_000)
        summary = app.lambda_handler(event, context)

    expected = summary["spans_exported"]
    deadline = time.monotonic() + SPANS_TIMEOUT_S
    spans = phoenix.spans(PROJECT)
    while len(spans) < expected and time.monotonic() < deadline:
        time.sleep(0.5)  # Phoenix inserts received spans in the background, in batches
        spans = phoenix.spans(PROJECT)
    assert len(spans) >= expected, (
        f"Phoenix shows {len(spans)} of {expected} spans after {SPANS_TIMEOUT_S:.0f} s:\n{phoenix.log_tail()}"
    )
    return Delivered(summary, spans)


def _jsonl(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (SAMPLES / name).read_text().splitlines() if line.strip()]


def _messages(attrs: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """``llm.input_messages.{i}.message.*`` (flattened, as the REST API returns them) as a list."""
    found: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        if key.startswith(f"{prefix}."):
            index, _, rest = key[len(prefix) + 1 :].partition(".")
            found.setdefault(int(index), {})[rest.removeprefix("message.")] = value
    return [found[i] for i in sorted(found)]


def _by_custom_id(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s["attributes"]["batchtrace.custom_id"]: s for s in spans if "batchtrace.custom_id" in s["attributes"]}


def _batch_span(spans: list[dict[str, Any]]) -> dict[str, Any]:
    [batch] = [s for s in spans if s["name"] == "batch_results"]
    return batch


def test_summary_and_span_count(delivered: Delivered) -> None:
    summary = delivered.summary
    assert summary["spans_built"] == summary["spans_exported"] == 14
    assert summary["spans_failed"] == 0
    assert len(delivered.spans) == 14
    assert len({s["context"]["span_id"] for s in delivered.spans}) == 14


def test_one_trace_with_completions_under_batch_results(delivered: Delivered) -> None:
    trace = json.loads((SAMPLES / "trace.json").read_text())
    assert {s["context"]["trace_id"] for s in delivered.spans} == {trace["trace_id"]}
    batch = _batch_span(delivered.spans)
    assert batch["parent_id"] == trace["span_id"]
    completions = [s for s in delivered.spans if s is not batch]
    assert len(completions) == 13
    assert {s["parent_id"] for s in completions} == {batch["context"]["span_id"]}


def test_phoenix_lists_one_trace_with_the_batch_token_totals(phoenix: Phoenix, delivered: Delivered) -> None:
    trace = json.loads((SAMPLES / "trace.json").read_text())
    [listed] = phoenix.traces(PROJECT)
    assert listed["trace_id"] == trace["trace_id"]
    assert (listed["token_count_prompt"], listed["token_count_completion"]) == (2253, 285)
    assert listed["token_count_prompt"] == delivered.summary["input_tokens"]


def test_completions_are_llm_spans_with_model_and_tokens(delivered: Delivered) -> None:
    requests = {r["custom_id"]: r for r in _jsonl("input.jsonl")}
    results = {r["custom_id"]: r for r in _jsonl("output.jsonl")}
    spans = _by_custom_id(delivered.spans)
    assert set(spans) == set(requests) | set(results)
    for custom_id, span in spans.items():
        attrs = span["attributes"]
        assert span["span_kind"] == "LLM", custom_id
        assert span["name"].startswith("chat gpt-4o-mini"), custom_id
        request = requests.get(custom_id)
        model = request["body"]["model"] if request else results[custom_id]["response"]["body"]["model"]
        assert attrs["llm.model_name"] == model, custom_id
        assert attrs["llm.provider"] == "openai", custom_id
        result = results.get(custom_id)
        if result is None:
            assert "llm.token_count.prompt" not in attrs, custom_id
            continue
        usage = result["response"]["body"]["usage"]
        assert attrs["llm.token_count.prompt"] == usage["prompt_tokens"], custom_id
        assert attrs["llm.token_count.completion"] == usage["completion_tokens"], custom_id
        assert attrs["llm.token_count.total"] == usage["total_tokens"], custom_id
    totals = [s["attributes"] for s in spans.values() if "llm.token_count.prompt" in s["attributes"]]
    assert sum(a["llm.token_count.prompt"] for a in totals) == 2253
    assert sum(a["llm.token_count.completion"] for a in totals) == 285
    cached = spans["summarise-call-0417"]["attributes"]
    assert cached["llm.token_count.prompt_details.cache_read"] == 1024


def test_input_and_output_messages(delivered: Delivered) -> None:
    requests = {r["custom_id"]: r for r in _jsonl("input.jsonl")}
    results = {r["custom_id"]: r for r in _jsonl("output.jsonl")}
    spans = _by_custom_id(delivered.spans)
    for custom_id, request in requests.items():
        attrs = spans[custom_id]["attributes"]
        shown = _messages(attrs, "llm.input_messages")
        sent = request["body"]["messages"]
        assert [m["role"] for m in shown] == [m["role"] for m in sent], custom_id
        first_user = next(m["content"] for m in sent if m["role"] == "user")
        shown_user = next(m for m in shown if m["role"] == "user")
        assert shown_user.get("content") == first_user, custom_id
        if sent[0]["role"] == "system":
            assert shown[0]["content"] == sent[0]["content"], custom_id
    for custom_id, result in results.items():
        answer = result["response"]["body"]["choices"][0]["message"]
        [reply] = _messages(spans[custom_id]["attributes"], "llm.output_messages")
        assert reply["role"] == "assistant", custom_id
        if answer.get("content") is not None:
            assert reply["content"] == answer["content"], custom_id


def test_tool_call(delivered: Delivered) -> None:
    [result] = [r for r in _jsonl("output.jsonl") if r["custom_id"] == TOOL_CALL_ID]
    [call] = result["response"]["body"]["choices"][0]["message"]["tool_calls"]
    attrs = _by_custom_id(delivered.spans)[TOOL_CALL_ID]["attributes"]
    prefix = "llm.output_messages.0.message.tool_calls.0.tool_call"
    assert attrs[f"{prefix}.function.name"] == call["function"]["name"] == "record_invoice"
    assert json.loads(attrs[f"{prefix}.function.arguments"]) == json.loads(call["function"]["arguments"])
    assert attrs[f"{prefix}.id"] == call["id"]
    assert attrs["llm.finish_reason"] == "tool_calls"


def test_errors_have_status_error(delivered: Delivered) -> None:
    spans = _by_custom_id(delivered.spans)
    for custom_id, span in spans.items():
        if custom_id in ERROR_IDS:
            assert span["status_code"] == "ERROR", custom_id
            assert span["status_message"], custom_id
        else:
            assert span["status_code"] != "ERROR", custom_id
    assert spans["ticket-classify-0003"]["attributes"]["http.response.status_code"] == 400
    assert spans["extract-contact-0551"]["attributes"]["http.response.status_code"] == 500
    assert spans["translate-faq-0012"]["attributes"]["error.type"] == "batch_expired"
    assert spans["ticket-priority-0004"]["attributes"]["error.type"] == "no_result"
    assert _batch_span(delivered.spans)["status_code"] != "ERROR"
