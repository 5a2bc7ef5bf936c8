"""Bedrock batch inference outputs reaching the Lambda handler from S3, as AWS writes them.

Bedrock writes ``<output prefix>/<job id>/<input name>.jsonl.out`` and ``manifest.json.out``; the
S3 event for the ``.jsonl.out`` (``events/s3-put-bedrock.json``) runs the function, which needs
no input file and reconciles the manifest's counts with what it saw.
"""

from __future__ import annotations

import copy
import importlib
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest

from tests.functional.assertions import delivered
from tests.support.fixtures import FORMATS
from tests.support.lambda_context import FakeLambdaContext
from tests.support.moto_s3 import MotoServer
from tests.support.otlp_receiver import OtlpReceiver

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = FORMATS / "bedrock"
EVENT = json.loads((ROOT / "events" / "s3-put-bedrock.json").read_text(encoding="utf-8"))
RECORD = EVENT["Records"][0]["s3"]
BUCKET, KEY = RECORD["bucket"]["name"], RECORD["object"]["key"]
FOLDER = KEY.rsplit("/", 1)[0]
JOB_ID = FOLDER.rsplit("/", 1)[-1]


def _lines() -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / "claude.jsonl.out").read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def handler(moto: MotoServer, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "batchtrace")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    return importlib.reload(sys.modules["app"]) if "app" in sys.modules else importlib.import_module("app")


@pytest.fixture
def bucket(moto: MotoServer) -> Any:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.upload_file(str(FIXTURES / "manifest.json.out"), BUCKET, f"{FOLDER}/manifest.json.out")
    s3.upload_file(str(FIXTURES / "claude.jsonl.out"), BUCKET, KEY)
    return s3


def test_the_bedrock_event_sends_one_span_per_record_without_an_input_file(
    handler: ModuleType, bucket: Any, receiver: OtlpReceiver
) -> None:
    lines = _lines()
    summary = handler.lambda_handler(copy.deepcopy(EVENT), FakeLambdaContext())
    failed = [line["recordId"] for line in lines if "error" in line]
    assert summary["provider"] == "aws.bedrock"
    assert summary["batch_id"] == JOB_ID
    assert (summary["requests"], summary["results"], summary["errors"]) == (len(lines), len(lines), len(failed))
    assert summary["spans_exported"] == summary["spans_built"] == len(lines) + 1
    spans = delivered(receiver, len(lines) + 1)
    completions = {s.attributes["batchtrace.custom_id"]: s for s in spans if s.name != "batch_results"}
    assert set(completions) == {line["recordId"] for line in lines}
    for record_id in failed:
        assert completions[record_id].status_code == "ERROR"
        assert completions[record_id].attributes.get("error.type")
    for span in completions.values():
        assert span.attributes["gen_ai.provider.name"] == "aws.bedrock"
        assert span.attributes["batchtrace.batch_id"] == JOB_ID


def test_the_manifest_is_reconciled_in_the_summary(handler: ModuleType, bucket: Any, receiver: OtlpReceiver) -> None:
    manifest = json.loads((FIXTURES / "manifest.json.out").read_text(encoding="utf-8"))
    summary = handler.lambda_handler(copy.deepcopy(EVENT), FakeLambdaContext())
    lines = _lines()
    failed = sum(1 for line in lines if "error" in line)
    assert summary["reconciliation"] == {
        "source": "manifest.json.out",
        "provider": {
            "total": manifest["totalRecordCount"],
            "processed": manifest["processedRecordCount"],
            "succeeded": manifest["successRecordCount"],
            "failed": manifest["errorRecordCount"],
            "input_tokens": manifest["inputTokenCount"],
            "output_tokens": manifest["outputTokenCount"],
        },
        "seen": {
            "total": len(lines),
            "processed": len(lines),
            "succeeded": len(lines) - failed,
            "failed": failed,
            "input_tokens": summary["input_tokens"],
            "output_tokens": summary["output_tokens"],
        },
        "agree": True,
    }
    batch_span = next(s for s in delivered(receiver, len(lines) + 1) if s.name == "batch_results")
    assert batch_span.attributes["batchtrace.reconciliation.agree"] is True


def test_a_manifest_that_disagrees_is_reported_not_failed(
    handler: ModuleType, bucket: Any, receiver: OtlpReceiver
) -> None:
    manifest = json.loads((FIXTURES / "manifest.json.out").read_text(encoding="utf-8"))
    manifest["totalRecordCount"] += 5
    bucket.put_object(Bucket=BUCKET, Key=f"{FOLDER}/manifest.json.out", Body=json.dumps(manifest).encode())
    summary = handler.lambda_handler(copy.deepcopy(EVENT), FakeLambdaContext())
    assert summary["reconciliation"]["agree"] is False
    assert summary["reconciliation"]["provider"]["total"] == summary["reconciliation"]["seen"]["total"] + 5
    assert summary["spans_failed"] == 0
    batch_span = next(s for s in delivered(receiver, summary["spans_built"]) if s.name == "batch_results")
    assert batch_span.attributes["batchtrace.reconciliation.agree"] is False
    assert batch_span.attributes["batchtrace.reconciliation.provider.total"] == manifest["totalRecordCount"]


def test_a_manifest_object_never_runs_the_function(handler: ModuleType, bucket: Any, receiver: OtlpReceiver) -> None:
    event = copy.deepcopy(EVENT)
    event["Records"][0]["s3"]["object"]["key"] = f"{FOLDER}/manifest.json.out"
    assert handler.lambda_handler(event, FakeLambdaContext()) == {"batches": []}
