"""The batch's own timeline and the reconciliation of its counts, through ``batchtrace replay``.

``--batch-json`` hands the provider's batch object or job to a real replay (a subprocess,
exporting to the real OTLP receiver): ``batch_results`` must then run from the batch's creation
to its final state with one event per lifecycle timestamp, carry queue and run time, status and
the provider's counts, be in ERROR for an expired batch, and the summary must say whether the
provider's counts agree with the files. A disagreement is a warning and a flag, never a failure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.functional.assertions import delivered
from tests.support.cli import assert_exit, assert_usage_error, replay, run_batchtrace
from tests.support.fixtures import FORMATS
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.timeout(60)

OPENAI = FORMATS / "openai"
CHAT = ("--requests", OPENAI / "chat.requests.jsonl", "--results", OPENAI / "chat.results.jsonl")
CHAT_FILES = (*CHAT, "--errors", OPENAI / "chat.errors.jsonl")
NS = 1_000_000_000
#: OpenAI's eight lifecycle timestamps, in the order this batch went through them.
EVERY_TIMESTAMP = {
    "created_at": 1_787_004_000,
    "in_progress_at": 1_787_004_120,
    "cancelling_at": 1_787_004_300,
    "finalizing_at": 1_787_006_400,
    "failed_at": 1_787_006_500,
    "expired_at": 1_787_006_600,
    "cancelled_at": 1_787_006_700,
    "completed_at": 1_787_006_900,
}


def batch_span(receiver: OtlpReceiver, summary: dict[str, Any]) -> ReceivedSpan:
    [span] = [s for s in delivered(receiver, summary["spans_built"]) if s.name == "batch_results"]
    return span


def write_json(path: Path, obj: Any) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def chat_batch(**changes: Any) -> dict[str, Any]:
    batch = json.loads((OPENAI / "chat.batch.json").read_text(encoding="utf-8"))
    batch.update(changes)
    return batch


def test_every_lifecycle_timestamp_is_an_event_on_batch_results(receiver: OtlpReceiver, tmp_path: Path) -> None:
    batch = chat_batch(status="completed", **EVERY_TIMESTAMP)
    _, summary = replay(*CHAT_FILES, "--batch-json", write_json(tmp_path / "batch.json", batch))
    span = batch_span(receiver, summary)

    assert [(e.name, e.time_ns) for e in span.events] == [
        (f"batch.{field.removesuffix('_at')}", at * NS) for field, at in EVERY_TIMESTAMP.items()
    ]
    assert [e.attributes["batchtrace.batch.field"] for e in span.events] == list(EVERY_TIMESTAMP)
    assert (span.start_ns, span.end_ns) == (EVERY_TIMESTAMP["created_at"] * NS, EVERY_TIMESTAMP["completed_at"] * NS)
    attrs = span.attributes
    assert attrs["batchtrace.batch.queue_time_s"] == 120.0
    assert attrs["batchtrace.batch.run_time_s"] == 1_787_006_900 - 1_787_004_120
    assert attrs["batchtrace.batch.duration_s"] == 2_900.0
    assert attrs["batchtrace.batch.status"] == "completed"
    assert attrs["batchtrace.batch.provider"] == "openai"
    assert attrs["batchtrace.batch.endpoint"] == "/v1/chat/completions"
    assert attrs["batchtrace.batch.completion_window"] == "24h"
    counts = {name: attrs[f"batchtrace.batch.request_counts.{name}"] for name in ("total", "succeeded", "failed")}
    assert counts == {"total": 12, "succeeded": 7, "failed": 3}
    assert (attrs["batchtrace.batch.usage.input_tokens"], attrs["batchtrace.batch.usage.output_tokens"]) == (1790, 243)
    assert span.status_code == "UNSET"
    assert attrs["batchtrace.reconciliation.agree"] is True
    assert summary["reconciliation"]["agree"] is True
    assert summary["batch_id"] == "batch_68f3c1d2e4a5b6978c0d1e2f", "the batch object names the batch"


def test_an_expired_batch_is_an_error_span_whose_counts_agree_with_its_files(
    receiver: OtlpReceiver,
) -> None:
    _, summary = replay(*CHAT_FILES, "--batch-json", OPENAI / "chat.batch.json")
    span = batch_span(receiver, summary)
    assert span.status_code == "ERROR"
    assert span.status_message == "the batch expired before every request ran"
    assert span.attributes["error.type"] == "batch_expired"
    assert [e.name for e in span.events] == ["batch.created", "batch.in_progress", "batch.finalizing", "batch.expired"]
    assert summary["reconciliation"] == {
        "source": "request_counts",
        "provider": {"total": 12, "succeeded": 7, "failed": 3, "input_tokens": 1790, "output_tokens": 243},
        "seen": {"total": 12, "succeeded": 7, "failed": 3, "input_tokens": 1790, "output_tokens": 243},
        "agree": True,
    }


def test_files_that_disagree_with_the_request_counts_are_flagged_not_failed(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """The error file is left out: OpenAI counted 3 failed requests, the files hold none."""
    batch = write_json(tmp_path / "batch.json", chat_batch())
    result, summary = replay(*CHAT, "--batch-json", batch)
    reconciliation = summary["reconciliation"]
    assert reconciliation["agree"] is False
    assert (reconciliation["provider"]["failed"], reconciliation["seen"]["failed"]) == (3, 0)
    assert (reconciliation["provider"]["total"], reconciliation["seen"]["total"]) == (12, 12)
    warnings = [line for line in result.stderr.splitlines() if "disagree" in line]
    assert len(warnings) == 1, result.stderr
    assert "batch_68f3c1d2e4a5b6978c0d1e2f" in warnings[0] and "failed 3 (files 0)" in warnings[0]
    attrs = batch_span(receiver, summary).attributes
    assert attrs["batchtrace.reconciliation.agree"] is False
    assert attrs["batchtrace.reconciliation.provider.failed"] == 3
    assert attrs["batchtrace.reconciliation.seen.failed"] == 0
    assert summary["spans_failed"] == 0


@pytest.mark.parametrize(
    ("files", "batch_json", "events"),
    [
        (
            ("--requests", "anthropic/requests.jsonl", "--results", "anthropic/results.jsonl"),
            "anthropic/batch.json",
            ["batch.created", "batch.cancel_initiated", "batch.ended"],
        ),
        (
            ("--requests", "gemini/requests.jsonl", "--results", "gemini/results.jsonl"),
            "gemini/batch.json",
            ["batch.created", "batch.ended"],
        ),
        (
            ("--results", "vertex/predictions.jsonl"),
            "vertex/job.json",
            ["batch.created", "batch.started", "batch.ended"],
        ),
        (("--results", "bedrock/claude.jsonl.out"), "bedrock/manifest.json.out", []),
        (
            (
                "--requests",
                "mistral/requests.jsonl",
                "--results",
                "mistral/results.jsonl",
                "--errors",
                "mistral/errors.jsonl",
                "--provider",
                "mistral",
            ),
            "mistral/job.json",
            ["batch.created", "batch.started", "batch.completed"],
        ),
        (
            (
                "--requests",
                "fireworks/requests.jsonl",
                "--results",
                "fireworks/results.jsonl",
                "--errors",
                "fireworks/errors.jsonl",
                "--provider",
                "fireworks",
            ),
            "fireworks/job.json",
            ["batch.created", "batch.ended"],
        ),
    ],
    ids=["anthropic", "gemini", "vertex", "bedrock-manifest", "mistral", "fireworks"],
)
def test_each_providers_counts_agree_with_its_files(
    receiver: OtlpReceiver, files: tuple[str, ...], batch_json: str, events: list[str]
) -> None:
    """Each fixture's batch object describes its files: any disagreement is a wrong mapping."""
    args = [FORMATS / arg if arg.endswith((".jsonl", ".out")) else arg for arg in files]
    _, summary = replay(*args, "--batch-json", FORMATS / batch_json)
    reconciliation = summary["reconciliation"]
    assert reconciliation is not None and reconciliation["agree"] is True, reconciliation
    assert [e.name for e in batch_span(receiver, summary).events] == events


def test_an_unknown_batch_json_is_one_clear_line(receiver: OtlpReceiver, tmp_path: Path) -> None:
    result = run_batchtrace("replay", *CHAT, "--batch-json", write_json(tmp_path / "b.json", {"hello": "world"}))
    assert_usage_error(result, "b.json is not a batch object or job of a known provider")
    missing = run_batchtrace("replay", *CHAT, "--batch-json", tmp_path / "nope.json")
    assert_exit(missing, 2)
    assert "batch object not found" in missing.stderr
    assert receiver.span_count == 0


def test_a_traceparent_in_the_batch_metadata_links_the_spans_unless_the_caller_names_a_trace(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """The documented order: the caller's ids, then trace.json, then the batch's own metadata, then a new trace."""
    stored_trace, stored_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    batch = chat_batch(metadata={"traceparent": f"00-{stored_trace}-{stored_span}-01"})
    batch_json = write_json(tmp_path / "batch.json", batch)
    _, summary = replay(*CHAT_FILES, "--batch-json", batch_json)
    span = batch_span(receiver, summary)
    assert (span.trace_id, span.parent_span_id) == (stored_trace, stored_span)
    assert {s.trace_id for s in receiver.spans} == {stored_trace}
    receiver.reset()
    caller_trace = "0af7651916cd43dd8448eb211c80319c"
    _, summary = replay(*CHAT_FILES, "--batch-json", batch_json, "--trace-id", caller_trace)
    span = batch_span(receiver, summary)
    assert (span.trace_id, span.parent_span_id) == (caller_trace, None)
