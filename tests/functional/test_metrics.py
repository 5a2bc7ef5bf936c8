"""Run metrics, as a user of ``batchtrace replay`` and of the Lambda function sees them.

The hostile batch is replayed by the real CLI with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointing at the
test receiver, which decodes the OTLP metrics (real protobuf) next to the spans. The figures must
match both the summary the CLI prints and the batch's own fates (which the code under test never
sees): tokens per model and token type, one histogram measurement per request that reported usage,
and requests by outcome. Metrics are best effort: switched off they send nothing, and an
unreachable metrics endpoint costs one warning and a few seconds, never a span or the exit code.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from batchtrace.send.metrics import MAX_EXPORT_S

from tests.functional.assertions import delivered
from tests.functional.test_handler import s3_event
from tests.support.batches import EXPIRED, HTTP_ERROR, NO_RESULT, Batch, BatchFiles, hostile_batch
from tests.support.cli import replay
from tests.support.lambda_context import FakeLambdaContext
from tests.support.moto_s3 import BUCKET, MotoServer
from tests.support.otlp_metrics import ReceivedPoint, counts, totals
from tests.support.otlp_receiver import OtlpReceiver, unused_port

pytestmark = pytest.mark.timeout(60)

TOKENS = "gen_ai.client.token.usage"
REQUESTS = "batchtrace.batch.requests"
MODEL, TOKEN_TYPE, OUTCOME = "gen_ai.request.model", "gen_ai.token.type", "batchtrace.outcome"
OUTCOME_OF = {HTTP_ERROR: "failed", EXPIRED: "expired", NO_RESULT: "no_result"}


@pytest.fixture(scope="module")
def batch() -> Batch:
    return hostile_batch(seed=23)


@pytest.fixture
def files(batch: Batch, tmp_path: Path) -> BatchFiles:
    return batch.write(tmp_path / "hostile batch")


def fate_tokens(batch: Batch) -> dict[tuple[str, str], int]:
    """Tokens per (model, token type), from the fates the batch was generated with."""
    out: Counter[tuple[str, str]] = Counter()
    for fate in batch.fates.values():
        if fate.has_usage:
            out[(fate.model, "input")] += fate.input_tokens or 0
            out[(fate.model, "output")] += fate.output_tokens or 0
    return dict(out)


def fate_outcomes(batch: Batch) -> dict[tuple[str, str], int]:
    out: Counter[tuple[str, str]] = Counter()
    for fate in batch.fates.values():
        out[(fate.model, OUTCOME_OF.get(fate.kind, "succeeded"))] += 1
    return dict(out)


def nonzero(values: dict[tuple[Any, ...], float]) -> dict[tuple[Any, ...], float]:
    return {key: value for key, value in values.items() if value}


def timed_replay(files: BatchFiles, *args: str | Path) -> tuple[Any, dict[str, Any], float]:
    """``batchtrace replay`` with this test's environment: (the process, its summary, its wall time)."""
    started = time.monotonic()
    result, summary = replay(*files.cli_args(), *args, script=True)
    return result, summary, time.monotonic() - started


def assert_tokens(points: list[ReceivedPoint], summary: dict[str, Any], batch: Batch) -> None:
    """Tokens per model and type equal the fates' and the summary's; one measurement per request and type."""
    tokens = totals(points, TOKENS, MODEL, TOKEN_TYPE)
    assert tokens == fate_tokens(batch)
    rows = summary["by_model"]
    from_summary = {(row["model"], kind): row[f"{kind}_tokens"] for row in rows for kind in ("input", "output")}
    assert nonzero(tokens) == nonzero(from_summary)
    for kind in ("input", "output"):
        assert sum(value for (_, of), value in tokens.items() if of == kind) == summary[f"{kind}_tokens"]
    measured = Counter(fate.model for fate in batch.fates.values() if fate.has_usage)
    assert counts(points, TOKENS, MODEL) == {(model,): 2 * n for model, n in measured.items()}


def assert_outcomes(points: list[ReceivedPoint], summary: dict[str, Any], batch: Batch) -> None:
    """Requests by model and outcome equal the fates'; by outcome, the summary's counts."""
    outcomes = nonzero(totals(points, REQUESTS, MODEL, OUTCOME))
    assert outcomes == fate_outcomes(batch)
    by_outcome = Counter[str]()
    for (_, outcome), value in outcomes.items():
        by_outcome[outcome] += int(value)
    assert (by_outcome["expired"], by_outcome["no_result"]) == (summary["expired"], summary["no_result"])
    assert by_outcome["failed"] + by_outcome["expired"] == summary["errors"]


def assert_lifecycle(points: list[ReceivedPoint], batch: Batch) -> None:
    """Queue and run time, one measurement each, in seconds, from the batch object's timestamps."""
    named = {p.name: p for p in points}
    queue, run = named["batchtrace.batch.queue_time"], named["batchtrace.batch.run_time"]
    in_progress_at = batch.batch_object()["in_progress_at"]
    assert (queue.unit, queue.count, queue.value) == ("s", 1, in_progress_at - batch.created_at)
    assert (run.unit, run.count, run.value) == ("s", 1, batch.completed_at - in_progress_at)


def test_replay_sends_token_usage_outcomes_and_lifecycle_that_match_the_summary_and_the_batch(
    receiver: OtlpReceiver, batch: Batch, files: BatchFiles, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.base_url)
    trace_json = tmp_path / "trace.json"
    trace_json.write_text(json.dumps(batch.trace_doc()), encoding="utf-8")
    _, summary, _ = timed_replay(files, "--trace-json", trace_json)
    delivered(receiver, len(batch.fates) + 1)
    [request] = receiver.metric_requests()
    assert request.status == 200 and request.headers["content-type"] == "application/x-protobuf"
    points = receiver.metric_points
    assert_tokens(points, summary, batch)
    assert_outcomes(points, summary, batch)
    assert_lifecycle(points, batch)
    assert {p.attributes["gen_ai.provider.name"] for p in points} == {"openai"}
    assert {p.resource.get("service.name") for p in points} == {s.resource.get("service.name") for s in receiver.spans}


def test_metrics_none_sends_no_metrics(
    receiver: OtlpReceiver, batch: Batch, files: BatchFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.base_url)
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    result, _, _ = timed_replay(files)
    delivered(receiver, len(batch.fates) + 1)
    assert receiver.metric_requests() == [] and receiver.metric_points == []
    assert "metrics not sent" not in result.stderr


def test_an_unreachable_metrics_endpoint_is_one_warning_and_a_few_seconds(
    receiver: OtlpReceiver, batch: Batch, files: BatchFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit 0, every span delivered, one more warning line than without metrics, at most a few seconds more."""
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    baseline, _, baseline_s = timed_replay(files)
    receiver.reset()
    monkeypatch.delenv("OTEL_METRICS_EXPORTER")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", f"http://127.0.0.1:{unused_port()}/v1/metrics")
    result, summary, elapsed = timed_replay(files)

    delivered(receiver, len(batch.fates) + 1)
    assert summary["spans_failed"] == 0 and summary["spans_exported"] == summary["spans_built"]
    extra = [line for line in result.stderr.splitlines() if line not in baseline.stderr.splitlines()]
    assert len(extra) == 1, result.stderr
    assert "metrics not sent to http://127.0.0.1:" in extra[0] and "OTEL_METRICS_EXPORTER=none" in extra[0]
    assert "Traceback" not in result.stderr
    print(f"unreachable metrics endpoint: {elapsed:.2f}s against {baseline_s:.2f}s without metrics")
    assert elapsed - baseline_s < MAX_EXPORT_S + 2, f"{elapsed:.2f}s against {baseline_s:.2f}s without metrics"


# ---------------------------------------------------------------------------- in Lambda: CloudWatch too


def emf_documents(written: str) -> list[dict[str, Any]]:
    return [doc for line in written.splitlines() if line.startswith("{") and "_aws" in (doc := json.loads(line))]


def assert_cloudwatch_per_model(documents: list[dict[str, Any]], batch: Batch) -> None:
    """One EMF document per model, with provider, model and operation dimensions, its tokens and outcomes."""
    per_model = {doc["model"]: doc for doc in documents if "model" in doc}
    assert {(doc["provider"], doc["operation"]) for doc in per_model.values()} == {("openai", "chat")}
    tokens = {(model, kind): per_model[model][f"{kind}_tokens"] for model in per_model for kind in ("input", "output")}
    assert tokens == {key: [float(value)] for key, value in fate_tokens(batch).items()}
    for (model, outcome), value in fate_outcomes(batch).items():
        assert per_model[model][f"requests_{outcome}"] == [float(value)], (model, outcome)


def assert_cloudwatch(documents: list[dict[str, Any]], summary: dict[str, Any], batch: Batch) -> None:
    """Per model, and the batch's outcomes beside the handler's delivery counts."""
    assert_cloudwatch_per_model(documents, batch)
    batch_doc = next(doc for doc in documents if "requests_succeeded" in doc and "model" not in doc)
    assert batch_doc["requests_expired"] == [float(summary["expired"])]
    assert batch_doc["requests_no_result"] == [float(summary["no_result"])]


def test_lambda_puts_the_same_figures_in_cloudwatch_and_over_otlp(
    moto: MotoServer,
    receiver: OtlpReceiver,
    batch: Batch,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", receiver.metrics_endpoint)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Batchtrace")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    key = batch.upload(s3, BUCKET, f"batches/{batch.batch_id}", trace_doc=batch.trace_doc())
    event = s3_event((BUCKET, key))
    app: ModuleType = importlib.reload(sys.modules["app"]) if "app" in sys.modules else importlib.import_module("app")
    capsys.readouterr()
    summary = app.lambda_handler(event, FakeLambdaContext())
    documents = emf_documents(capsys.readouterr().out)

    assert_cloudwatch(documents, summary, batch)
    otlp = totals(receiver.metric_points, TOKENS, MODEL, TOKEN_TYPE)
    assert otlp == fate_tokens(batch), "the same figures over OTLP"
