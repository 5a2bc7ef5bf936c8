"""The hostile batch through ``batchtrace replay``, run as a real subprocess.

The CLI reads the standard ``OTEL_EXPORTER_OTLP_*`` variables (pointed at the test receiver),
prints the summary as JSON on stdout and exits 0 (all delivered), 1 (some not delivered) or 2
(unusable input or arguments: one line on stderr, never a traceback).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from batchtrace import log_batch_results

from tests.functional.assertions import assert_batch_delivered, assert_summary, delivered
from tests.support.batches import OK, Batch, BatchFiles, hostile_batch
from tests.support.cli import assert_exit, assert_usage_error, replay, run_batchtrace
from tests.support.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.timeout(30)

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN_ID = "b7ad6b7169203331"
CALLER_SPAN_ID = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def batch() -> Batch:
    return hostile_batch(seed=11)


@pytest.fixture
def files(batch: Batch, tmp_path: Path) -> BatchFiles:
    return batch.write(tmp_path / "hostile batch é")


# ---------------------------------------------------------------------------- delivered (exit 0)


def test_replay_with_trace_id_parent_and_batch_id(receiver: OtlpReceiver, batch: Batch, files: BatchFiles) -> None:
    _, summary = replay(
        *files.cli_args(),
        "--trace-id", TRACE_ID,
        "--parent-span-id", PARENT_SPAN_ID,
        "--batch-id", batch.batch_id,
        script=True,
    )  # fmt: skip
    assert_summary(summary, batch, mode="explicit", trace_id=TRACE_ID, batch_id=batch.batch_id)
    spans = delivered(receiver, len(batch.fates) + 1)
    assert_batch_delivered(
        spans, batch, trace_id=TRACE_ID, parent_span_id=PARENT_SPAN_ID, mode="explicit", batch_id=batch.batch_id
    )


def test_replay_with_trace_json(receiver: OtlpReceiver, batch: Batch, files: BatchFiles, tmp_path: Path) -> None:
    trace_json = tmp_path / "trace.json"
    trace_json.write_text(json.dumps(batch.trace_doc(TRACE_ID, PARENT_SPAN_ID), ensure_ascii=False), encoding="utf-8")
    _, summary = replay(*files.cli_args(), "--trace-json", trace_json, script=True)
    assert_summary(summary, batch, mode="explicit", trace_id=TRACE_ID, batch_id=batch.batch_id)
    spans = delivered(receiver, len(batch.fates) + 1)
    assert_batch_delivered(
        spans,
        batch,
        trace_id=TRACE_ID,
        parent_span_id=PARENT_SPAN_ID,
        mode="explicit",
        batch_id=batch.batch_id,
        lifecycle_known=True,
    )


def test_replay_with_traceparent_nests_under_the_callers_span(
    receiver: OtlpReceiver, batch: Batch, files: BatchFiles
) -> None:
    traceparent = f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"
    _, summary = replay(*files.cli_args(), "--traceparent", traceparent, script=True)
    assert_summary(summary, batch, mode="active", trace_id=TRACE_ID)
    spans = delivered(receiver, len(batch.fates))
    assert_batch_delivered(spans, batch, trace_id=TRACE_ID, parent_span_id=CALLER_SPAN_ID, mode="active")


def test_replay_without_ids_makes_a_new_trace_and_a_rerun_repeats_it(
    receiver: OtlpReceiver, batch: Batch, files: BatchFiles
) -> None:
    _, summary = replay(*files.cli_args(), script=True)
    assert_summary(summary, batch, mode="new")
    spans = delivered(receiver, len(batch.fates) + 1)
    assert_batch_delivered(spans, batch, trace_id=summary["trace_id"], mode="new")

    receiver.reset()
    _, again_summary = replay(*files.cli_args(), script=True)
    assert again_summary["trace_id"] == summary["trace_id"]
    again = delivered(receiver, len(batch.fates) + 1)
    assert sorted((s.span_id, s.parent_span_id) for s in again) == sorted((s.span_id, s.parent_span_id) for s in spans)


def test_cli_and_library_send_the_same_span_ids(receiver: OtlpReceiver, batch: Batch, files: BatchFiles) -> None:
    """Ids derive from (trace id, batch, custom_id) only, whichever entry point built the spans."""
    result = run_batchtrace(
        "replay", *files.cli_args(),
        "--trace-id", TRACE_ID, "--batch-id", batch.batch_id,
        script=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    from_cli = {
        (s.attributes.get("batchtrace.custom_id"), s.span_id) for s in delivered(receiver, len(batch.fates) + 1)
    }
    receiver.reset()
    log_batch_results(batch.input_lines, batch.library_results(), TRACE_ID, batch_id=batch.batch_id)
    from_library = {
        (s.attributes.get("batchtrace.custom_id"), s.span_id) for s in delivered(receiver, len(batch.fates) + 1)
    }
    assert from_cli == from_library


# ---------------------------------------------------------------------------- not delivered (exit 1)


def test_receiver_rejecting_everything_exits_1_with_the_summary(
    receiver: OtlpReceiver, batch: Batch, files: BatchFiles
) -> None:
    receiver.set_faults(always_status=400)
    result, summary = replay(*files.cli_args(), expect_exit=1, script=True)
    assert_summary(summary, batch, mode="new", delivered=False)
    assert (summary["spans_exported"], summary["spans_failed"]) == (0, len(batch.fates) + 1)
    assert "not delivered" in result.stderr.strip().splitlines()[-1]
    assert receiver.spans == []


def test_one_span_too_large_exits_1_after_delivering_the_rest(
    receiver: OtlpReceiver, batch: Batch, tmp_path: Path
) -> None:
    """A 413 splits the chunk; only the span that is too large on its own is lost, and counted."""
    big_id = batch.plain_id(OK)  # its span alone is far larger than the others, and than the receiver's limit
    big = batch.with_long_prompt(big_id, 40_000)
    files = big.write(tmp_path / "big")
    receiver.set_faults(max_body_bytes=20_000)
    _, summary = replay(*files.cli_args(), expect_exit=1, script=True)
    total = len(big.fates) + 1
    assert (summary["spans_built"], summary["spans_exported"], summary["spans_failed"]) == (total, total - 1, 1)
    assert 413 in receiver.statuses()
    received = {s.attributes.get("batchtrace.custom_id") for s in delivered(receiver, total - 1)}
    assert received == (set(big.fates) - {big_id}) | {None}  # None: the batch_results span


# ---------------------------------------------------------------------------- unusable input (exit 2)


def test_missing_requests_file_exits_2(receiver: OtlpReceiver, files: BatchFiles, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "input.jsonl"
    result = run_batchtrace("replay", "--requests", missing, "--results", files.output, script=True)
    assert_usage_error(result, str(missing))
    assert receiver.attempts == 0


def test_missing_errors_file_exits_2(receiver: OtlpReceiver, files: BatchFiles, tmp_path: Path) -> None:
    missing = tmp_path / "errors.jsonl"
    result = run_batchtrace(
        "replay", "--requests", files.input, "--results", files.output, "--errors", missing, script=True
    )
    assert_usage_error(result, str(missing))
    assert receiver.attempts == 0


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (("--trace-id", "xyz"), "xyz"),
        (("--trace-id", "0" * 32), "0" * 32),
        (("--trace-id", TRACE_ID, "--parent-span-id", "nothex!!"), "nothex!!"),
        (("--traceparent", "00-zz-yy-01"), "00-zz-yy-01"),
        (("--parent-span-id", PARENT_SPAN_ID), "--trace-id"),
    ],
    ids=["not-hex", "all-zero", "bad-span-id", "bad-traceparent", "span-without-trace"],
)
def test_bad_trace_context_exits_2_and_sends_nothing(
    receiver: OtlpReceiver, files: BatchFiles, extra: tuple[str, ...], needle: str
) -> None:
    result = run_batchtrace("replay", "--requests", files.input, "--results", files.output, *extra, script=True)
    assert_usage_error(result, needle)
    assert receiver.attempts == 0


def test_requests_path_is_a_directory_exits_2(receiver: OtlpReceiver, files: BatchFiles) -> None:
    result = run_batchtrace("replay", "--requests", files.input.parent, "--results", files.output, script=True)
    assert_usage_error(result, str(files.input.parent))


def test_trace_json_not_json_exits_2(receiver: OtlpReceiver, files: BatchFiles, tmp_path: Path) -> None:
    bad = tmp_path / "trace.json"
    bad.write_text("{not json", encoding="utf-8")
    result = run_batchtrace(
        "replay", "--requests", files.input, "--results", files.output, "--trace-json", bad, script=True
    )
    assert_usage_error(result, str(bad))


def test_invalid_otlp_endpoint_exits_2(monkeypatch: pytest.MonkeyPatch, files: BatchFiles) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://collector:4318/v1/traces")
    result = run_batchtrace("replay", "--requests", files.input, "--results", files.output, script=True)
    assert_usage_error(result, "ftp://collector:4318")


@pytest.mark.parametrize(
    "args",
    [
        ("replay", "--requests", "input.jsonl"),
        ("replay", "--requests", "a", "--results", "b", "--no-such-option"),
        ("rewind",),
        (),
    ],
    ids=["missing-results", "unknown-option", "unknown-command", "no-command"],
)
def test_bad_arguments_exit_2_without_traceback(receiver: OtlpReceiver, args: tuple[str, ...]) -> None:
    result = run_batchtrace(*args, script=True)
    assert_exit(result, 2)
    assert result.stdout == ""
    assert "error:" in result.stderr.strip().splitlines()[-1], result.stderr
    assert receiver.attempts == 0


def test_a_large_hostile_batch_over_forked_workers(receiver: OtlpReceiver, tmp_path: Path) -> None:
    """Past the parallel threshold the CLI forks span workers: still complete, linked and counted."""
    large = hostile_batch(n=2_400, seed=5)
    files = large.write(tmp_path / "large")
    _, summary = replay(
        *files.cli_args(),
        "--trace-id", TRACE_ID, "--parent-span-id", PARENT_SPAN_ID, "--batch-id", large.batch_id,
        script=True,
    )  # fmt: skip
    assert_summary(summary, large, mode="explicit", trace_id=TRACE_ID, batch_id=large.batch_id)
    spans = delivered(receiver, len(large.fates) + 1)
    assert len(receiver.requests) > 1
    assert_batch_delivered(
        spans, large, trace_id=TRACE_ID, parent_span_id=PARENT_SPAN_ID, mode="explicit", batch_id=large.batch_id
    )
