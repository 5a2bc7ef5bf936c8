"""The function's own observability: every log line says which batch and trace, EMF metrics for
what an SRE alarms on, a cold-start metric, and never a word of message content.

The sample batch (plus one malformed output line, so the core logs a warning of its own) goes
through the handler with the S3 event from ``events/``, against moto's S3 and a real receiver.
"""

from __future__ import annotations

import importlib
import io
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.metrics.provider import cold_start

from tests.support.lambda_context import FakeLambdaContext
from tests.support.moto_s3 import MotoServer
from tests.support.otlp_receiver import OtlpReceiver

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samplefiles"
EVENT = json.loads((ROOT / "events" / "s3-put.json").read_text())
BUCKET = EVENT["Records"][0]["s3"]["bucket"]["name"]
OUTPUT_KEY = EVENT["Records"][0]["s3"]["object"]["key"]
TRACE = json.loads((SAMPLES / "trace.json").read_text())


def _message_texts() -> list[str]:
    """Every message content in the sample input and output: none may reach the function's output."""
    texts: list[str] = []
    for line in (SAMPLES / "input.jsonl").read_text().splitlines():
        for message in json.loads(line)["body"]["messages"]:
            if isinstance(message.get("content"), str) and len(message["content"]) > 20:
                texts.append(message["content"][:60])
    for line in (SAMPLES / "output.jsonl").read_text().splitlines():
        choice = json.loads(line)["response"]["body"]["choices"][0]["message"]
        if isinstance(choice.get("content"), str) and len(choice["content"]) > 20:
            texts.append(choice["content"][:60])
    return texts


@pytest.fixture
def invocation(
    moto: MotoServer, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One cold invocation: (the summary, every JSON document the function wrote to stdout)."""
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "batchtrace")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Batchtrace")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "INFO")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    folder = OUTPUT_KEY.rsplit("/", 1)[0]
    for name in ("input.jsonl", "trace.json", "errors.jsonl"):
        s3.upload_file(str(SAMPLES / name), BUCKET, f"{folder}/{name}")
    output = (SAMPLES / "output.jsonl").read_bytes() + b'{"custom_id": "broken", "response": \n'
    s3.put_object(Bucket=BUCKET, Key=OUTPUT_KEY, Body=output)

    app: ModuleType = importlib.reload(sys.modules["app"]) if "app" in sys.modules else importlib.import_module("app")
    logs = io.StringIO()
    # Powertools loggers of one service share a stdlib logger that keeps the level and handler it
    # was first given (another test module's): set both for this invocation.
    app.logger.setLevel("INFO")
    handler = app.logger.registered_handler
    handler.setStream(logs)
    monkeypatch.setattr(cold_start, "is_cold_start", True)
    # Powertools keeps metrics in a store shared by every Metrics instance: a test that ran the
    # core without flushing (another module's) must not add its values to this invocation's.
    app.metrics.clear_metrics()
    try:
        summary = app.lambda_handler(EVENT, FakeLambdaContext())
    finally:
        handler.setStream(sys.__stdout__)
    written = logs.getvalue() + capsys.readouterr().out
    documents = [json.loads(line) for line in written.splitlines() if line.startswith("{")]
    return summary, documents


def test_every_log_line_carries_the_batch_and_trace_ids(
    invocation: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    summary, documents = invocation
    lines = [d for d in documents if "level" in d]
    broken_line = len((SAMPLES / "output.jsonl").read_text().splitlines()) + 1
    warning = f"skipped malformed line {broken_line} of s3://{BUCKET}/{OUTPUT_KEY}"
    assert any(warning in d["message"] for d in lines), "the core's own warning is a JSON log line"
    assert any(d["message"] == "batch processed" for d in lines)
    for line in lines:
        assert line["batch_id"] == TRACE["batch"]["id"], line
        assert line["trace_id"] == TRACE["trace_id"] == summary["trace_id"], line


def test_emf_metrics_for_delivery_tokens_malformed_lines_duration_and_cold_start(
    invocation: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    summary, documents = invocation
    emf = [d for d in documents if "_aws" in d]
    names = {m["Name"] for d in emf for directive in d["_aws"]["CloudWatchMetrics"] for m in directive["Metrics"]}
    assert {"spans_exported", "spans_failed", "input_tokens", "output_tokens", "malformed_lines", "duration"} <= names
    assert "ColdStart" in names
    assert all(d["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Batchtrace" for d in emf)
    values = {key: value for d in emf for key, value in d.items() if key != "_aws"}
    assert values["spans_exported"] == [float(summary["spans_exported"])] == [14.0]
    assert values["spans_failed"] == [0.0]
    assert values["malformed_lines"] == [1.0]
    assert values["input_tokens"] == [2253.0] and values["output_tokens"] == [285.0]


def test_no_message_content_in_anything_the_function_writes(
    invocation: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    _, documents = invocation
    written = json.dumps(documents, ensure_ascii=False)
    texts = _message_texts()
    assert len(texts) > 10
    for text in texts:
        assert text not in written
