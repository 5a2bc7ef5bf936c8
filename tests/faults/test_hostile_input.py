"""Hostile input: bad lines, missing files, unreadable trace.json, invalid trace ids.

Bad lines (broken JSON, arrays, nulls where objects belong, blank lines, a line of several MB,
invalid UTF-8, wrong-shaped objects) sit in the input, output and error files at once: each is
counted per file and logged with its line number but never its content, and every good line
still becomes its span, exactly once. Missing files and invalid ids handed in explicitly are
one-line errors (CLI exit 2, a typed exception); ids stored in ``trace.json`` or object
metadata fall back, with a warning, to a new trace derived from the batch.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from batchtrace import InvalidTraceContextError, MissingFileError, TraceHint, log_batch_results

from tests.faults.helpers import (
    BATCH_SPAN,
    INVALID_TRACE_IDS,
    PARENT_SPAN_ID,
    TRACE_ID,
    Expected,
    assert_accounted,
    assert_exactly_once,
    assert_one_line_error,
    golden,
    invoke,
    run_cli,
    run_local,
    s3_event,
)
from tests.support.batches import CANARY, Batch, fault_batch
from tests.support.moto_s3 import BUCKET
from tests.support.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.timeout(30)

FOLDER = "batches/{batch_id}"
INVALID_IDS = pytest.mark.parametrize("bad_id", list(INVALID_TRACE_IDS.values()), ids=list(INVALID_TRACE_IDS))
VALID_TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"


@pytest.fixture(scope="module")
def clean() -> Batch:
    """40 requests, one of them a valid 3 MB prompt (a long line that must still become a span)."""
    return fault_batch(40, batch_id="batch_hostile_0001").with_long_prompt("req-0002", 3_000_000)


@pytest.fixture(scope="module")
def hostile(clean: Batch) -> Batch:
    return clean.with_hostile_lines()


@pytest.fixture(scope="module")
def small() -> Batch:
    return fault_batch(20, batch_id="batch_small_0001")


def _folder(batch: Batch) -> str:
    return FOLDER.format(batch_id=batch.batch_id)


def assert_bad_lines_logged(caplog: pytest.LogCaptureFixture, names: dict[str, str], batch: Batch) -> None:
    """Each bad line is logged with its file and number, and no bad content reaches the log."""
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("batchtrace")]
    for role, name in names.items():
        for line_no in batch.bad_lines[role]:
            pattern = re.compile(rf"(?<![\d.])({line_no})(?![\d])")
            assert any(name in m and pattern.search(m.replace(name, "")) for m in messages), (
                f"line {line_no} of {name} was not reported in the log"
            )
    assert CANARY not in caplog.text, "the content of a bad line reached the log"
    assert max(len(m) for m in messages) < 2_000, "a log line carries a whole input line"


def assert_malformed_counted(summary: dict[str, Any], names: dict[str, str], batch: Batch) -> None:
    want = {names[role]: len(lines) for role, lines in batch.bad_lines.items()}
    assert summary["malformed_by_file"] == want
    assert summary["malformed_lines"] == sum(want.values())


def assert_good_lines_counted(summary: dict[str, Any], batch: Batch) -> None:
    assert summary["requests"] == batch.requests
    assert summary["results"] == batch.results
    assert summary["errors"] == batch.http_errors + batch.expired
    assert summary["expired"] == batch.expired
    assert summary["no_result"] == batch.no_result
    assert summary["orphan_results"] == 0
    assert summary["duplicate_ids"] == 0


# ---------------------------------------------------------------------------- hostile lines


@pytest.mark.parametrize("workers", [0, 2], ids=["inline", "forked"])
def test_library_counts_and_logs_every_bad_line_and_sends_every_good_one(
    rx: OtlpReceiver, clean: Batch, hostile: Batch, caplog: pytest.LogCaptureFixture, workers: int
) -> None:
    expected = golden(clean)
    caplog.set_level(logging.INFO)
    summary = run_local(hostile, rx.endpoint, workers=workers).as_dict()

    assert_exactly_once(rx.spans, expected)
    assert_accounted(summary, expected)
    names = {"input": "input", "output": "output", "errors": "errors"}
    assert_malformed_counted(summary, names, hostile)
    assert_good_lines_counted(summary, clean)
    assert_bad_lines_logged(caplog, names, hostile)
    batch_span = next(s for s in rx.spans if s.name == BATCH_SPAN)
    assert batch_span.attributes["batchtrace.malformed_lines"] == summary["malformed_lines"]


def test_seed_signature_library_call_survives_wrong_shaped_dicts(rx: OtlpReceiver) -> None:
    """``log_batch_results(requests, results)`` takes parsed lines: nulls and wrong shapes among them."""
    batch = fault_batch(20, batch_id="batch_lib_0001")
    expected = golden(batch, span_id=None)
    requests: list[Any] = batch.input_lines
    results: list[Any] = batch.output_lines + batch.error_lines
    requests[3:3] = [None, [1, 2], {"custom_id": None, "body": {}}, {"custom_id": "x", "body": None}, "text"]
    results[5:5] = [None, [CANARY], {"custom_id": "req-0001", "response": CANARY}, {"response": {}}, 7]
    from batchtrace import DeliveryPolicy, OtlpConfig

    summary = log_batch_results(
        requests,
        results,
        TRACE_ID,
        batch_id=batch.batch_id,
        otlp=OtlpConfig.resolve(endpoint=rx.endpoint, timeout_s=2, env={}),
        delivery=DeliveryPolicy(backoff_base_s=0.01, backoff_max_s=0.2),
        workers=0,
    )
    assert_exactly_once(rx.spans, expected)
    assert summary.malformed_by_file == {"requests": 5, "results": 5}


def test_cli_counts_and_reports_every_bad_line(clean: Batch, hostile: Batch, rx: OtlpReceiver, tmp_path: Path) -> None:
    expected = golden(clean, span_id=None)
    paths = hostile.write(tmp_path)
    proc = run_cli(
        *paths.cli_args(),
        "--trace-id", TRACE_ID, "--batch-id", hostile.batch_id,
        endpoint=rx.endpoint,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert_exactly_once(rx.spans, expected)
    summary = json.loads(proc.stdout)
    names = {role: str(path) for role, path in paths.items()}
    assert_malformed_counted(summary, names, hostile)
    assert_good_lines_counted(summary, clean)
    assert "Traceback" not in proc.stderr
    assert CANARY not in proc.stderr and CANARY not in proc.stdout
    for role, line_numbers in hostile.bad_lines.items():
        for line_no in line_numbers:
            assert re.search(
                rf"\b{line_no}\b.*{re.escape(names[role])}|{re.escape(names[role])}.*\b{line_no}\b", proc.stderr
            ), f"line {line_no} of {names[role]} not reported on stderr"


def test_handler_counts_and_logs_every_bad_line(
    s3: Any, load_app: Any, clean: Batch, hostile: Batch, rx: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    expected = golden(clean)
    folder = _folder(hostile)
    key = hostile.upload(s3, BUCKET, folder, trace_doc=hostile.trace_doc(TRACE_ID, PARENT_SPAN_ID))
    app = load_app(rx.endpoint)
    caplog.set_level(logging.INFO)
    summary = invoke(app, s3_event(BUCKET, key))

    assert_exactly_once(rx.spans, expected)
    assert_accounted(summary, expected)
    names = {role: f"s3://{BUCKET}/{folder}/{role}.jsonl" for role in ("input", "output", "errors")}
    assert_malformed_counted(summary, names, hostile)
    assert_good_lines_counted(summary, clean)
    assert_bad_lines_logged(caplog, names, hostile)
    assert CANARY not in json.dumps(summary)


# ---------------------------------------------------------------------------- missing files


@pytest.mark.parametrize("missing", ["requests", "results", "errors"])
def test_cli_missing_file_is_a_one_line_error(small: Batch, rx: OtlpReceiver, tmp_path: Path, missing: str) -> None:
    paths = small.write(tmp_path)
    role = {"requests": "input", "results": "output", "errors": "errors"}[missing]
    paths[role].unlink()
    proc = run_cli(
        *paths.cli_args(),
        endpoint=rx.endpoint,
    )  # fmt: skip
    assert_one_line_error(proc, str(paths[role]), "not found")
    assert rx.attempts == 0


def test_cli_missing_trace_json_is_a_one_line_error(small: Batch, rx: OtlpReceiver, tmp_path: Path) -> None:
    paths = small.write(tmp_path)
    missing = tmp_path / "trace.json"
    proc = run_cli(
        "--requests", str(paths["input"]), "--results", str(paths["output"]), "--trace-json", str(missing),
        endpoint=rx.endpoint,
    )  # fmt: skip
    assert_one_line_error(proc, str(missing))
    assert rx.attempts == 0


@pytest.mark.parametrize("missing", ["input", "output"])
def test_handler_missing_file_raises_a_typed_error_naming_it(
    s3: Any, load_app: Any, small: Batch, rx: OtlpReceiver, missing: str
) -> None:
    folder = _folder(small)
    key = small.upload(s3, BUCKET, folder, with_input=missing != "input", with_output=missing != "output")
    app = load_app(rx.endpoint)
    with pytest.raises(MissingFileError) as caught:
        invoke(app, s3_event(BUCKET, key))
    message = str(caught.value)
    assert f"s3://{BUCKET}/{folder}/{missing}.jsonl" in message
    assert "\n" not in message
    assert rx.attempts == 0


def test_handler_input_not_yet_there_then_a_retry_delivers_everything_once(
    s3: Any, load_app: Any, small: Batch, rx: OtlpReceiver
) -> None:
    expected = golden(small)
    folder = _folder(small)
    key = small.upload(s3, BUCKET, folder, trace_doc=small.trace_doc(TRACE_ID, PARENT_SPAN_ID), with_input=False)
    app = load_app(rx.endpoint)
    with pytest.raises(MissingFileError):
        invoke(app, s3_event(BUCKET, key))
    assert rx.attempts == 0
    s3.put_object(Bucket=BUCKET, Key=f"{folder}/input.jsonl", Body=small.input_bytes())
    summary = invoke(app, s3_event(BUCKET, key))  # Lambda's retry of the same event
    assert_exactly_once(rx.spans, expected)
    assert_accounted(summary, expected)


def test_handler_without_an_error_file_still_gives_every_request_a_span(
    s3: Any, load_app: Any, small: Batch, rx: OtlpReceiver
) -> None:
    expected = golden(small)
    folder = _folder(small)
    key = small.upload(s3, BUCKET, folder, trace_doc=small.trace_doc(TRACE_ID, PARENT_SPAN_ID))
    s3.delete_object(Bucket=BUCKET, Key=f"{folder}/errors.jsonl")
    summary = invoke(load_app(rx.endpoint), s3_event(BUCKET, key))
    assert_exactly_once(rx.spans, expected)
    assert summary["no_result"] == small.no_result + small.http_errors + small.expired


# ---------------------------------------------------------------------------- trace.json and metadata: fallback


UNREADABLE_TRACE_JSON = {
    "not-json": b'{"trace_id": "4bf92f35',
    "array": json.dumps([TRACE_ID, PARENT_SPAN_ID]).encode(),
    "string": b'"4bf92f3577b34da6a3ce929d0e0e4736"',
    "null": b"null",
    "empty": b"",
    "invalid-utf8": b'{"trace_id": "\xff\xfe"}',
}


def _new_trace_expected(batch: Batch) -> Expected:
    return golden(batch, trace_id=None, span_id=None)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("batchtrace")]


@pytest.mark.parametrize("body", list(UNREADABLE_TRACE_JSON.values()), ids=list(UNREADABLE_TRACE_JSON))
def test_handler_unreadable_trace_json_warns_and_goes_to_a_new_trace(
    s3: Any, load_app: Any, small: Batch, rx: OtlpReceiver, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    expected = _new_trace_expected(small)
    folder = _folder(small)
    key = small.upload(s3, BUCKET, folder, trace_json=body)
    app = load_app(rx.endpoint)
    caplog.set_level(logging.INFO)
    summary = invoke(app, s3_event(BUCKET, key))
    assert summary["trace_id"] == expected.trace_id
    assert_exactly_once(rx.spans, expected)
    assert any("trace.json" in w for w in _warnings(caplog)), _warnings(caplog)


def test_handler_unreadable_trace_json_falls_back_to_the_input_metadata(
    s3: Any, load_app: Any, small: Batch, rx: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    expected = golden(small)
    key = small.upload(
        s3,
        BUCKET,
        _folder(small),
        trace_json=b"[not json",
        input_metadata={"trace-id": TRACE_ID, "span-id": PARENT_SPAN_ID},
    )
    caplog.set_level(logging.INFO)
    summary = invoke(load_app(rx.endpoint), s3_event(BUCKET, key))
    assert summary["trace_id"] == TRACE_ID
    assert_exactly_once(rx.spans, expected)
    batch_span = next(s for s in rx.spans if s.name == BATCH_SPAN)
    assert batch_span.parent_span_id == PARENT_SPAN_ID
    assert any("trace.json" in w for w in _warnings(caplog))


STORED_BAD_IDS = {
    **INVALID_TRACE_IDS,
    "number": 12345,
    "uuid-like-but-bad": "4bf92f35-77b3-4da6-a3ce-929d0e0e47zz",
}


@pytest.mark.parametrize("bad_id", list(STORED_BAD_IDS.values()), ids=list(STORED_BAD_IDS))
def test_handler_invalid_trace_id_in_trace_json_warns_and_goes_to_a_new_trace(
    s3: Any, load_app: Any, small: Batch, rx: OtlpReceiver, caplog: pytest.LogCaptureFixture, bad_id: Any
) -> None:
    expected = _new_trace_expected(small)
    key = small.upload(s3, BUCKET, _folder(small), trace_doc=small.trace_doc(bad_id, PARENT_SPAN_ID))
    caplog.set_level(logging.INFO)
    summary = invoke(load_app(rx.endpoint), s3_event(BUCKET, key))
    assert summary["trace_id"] == expected.trace_id
    assert summary["batch_id"] == small.batch_id
    assert_exactly_once(rx.spans, expected)
    warnings = _warnings(caplog)
    assert any("trace id" in w and "new trace" in w for w in warnings), warnings
    batch_span = next(s for s in rx.spans if s.name == BATCH_SPAN)
    assert batch_span.parent_span_id is None
    assert "new trace" in str(batch_span.attributes.get("batchtrace.trace_link_warning", ""))


@pytest.mark.parametrize(
    "traceparent",
    [f"00-{'0' * 32}-{PARENT_SPAN_ID}-01", f"00-{TRACE_ID[:-2]}zz-{PARENT_SPAN_ID}-01", "garbage", f"00-{TRACE_ID}"],
    ids=["zero-trace", "non-hex", "garbage", "truncated"],
)
def test_handler_invalid_traceparent_in_trace_json_warns_and_goes_to_a_new_trace(
    s3: Any, load_app: Any, small: Batch, rx: OtlpReceiver, caplog: pytest.LogCaptureFixture, traceparent: str
) -> None:
    expected = _new_trace_expected(small)
    key = small.upload(s3, BUCKET, _folder(small), trace_doc=small.trace_doc(traceparent=traceparent))
    caplog.set_level(logging.INFO)
    summary = invoke(load_app(rx.endpoint), s3_event(BUCKET, key))
    assert summary["trace_id"] == expected.trace_id
    assert_exactly_once(rx.spans, expected)
    assert any("new trace" in w for w in _warnings(caplog))


@INVALID_IDS
def test_handler_invalid_trace_id_in_object_metadata_warns_and_goes_to_a_new_trace(
    s3: Any, load_app: Any, small: Batch, rx: OtlpReceiver, caplog: pytest.LogCaptureFixture, bad_id: str
) -> None:
    expected = _new_trace_expected(small)
    key = small.upload(s3, BUCKET, _folder(small), input_metadata={"trace-id": bad_id, "span-id": PARENT_SPAN_ID})
    caplog.set_level(logging.INFO)
    summary = invoke(load_app(rx.endpoint), s3_event(BUCKET, key))
    assert summary["trace_id"] == expected.trace_id
    assert_exactly_once(rx.spans, expected)
    assert any("new trace" in w for w in _warnings(caplog))


def test_handler_invalid_span_id_in_trace_json_keeps_the_valid_trace_id(
    s3: Any, load_app: Any, small: Batch, rx: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """(Regression: the valid stored trace id used to be dropped for a new trace.)"""
    expected = golden(small, span_id=None)
    key = small.upload(s3, BUCKET, _folder(small), trace_doc=small.trace_doc(TRACE_ID, "not-a-span-id"))
    caplog.set_level(logging.INFO)
    summary = invoke(load_app(rx.endpoint), s3_event(BUCKET, key))
    assert any("span id" in w for w in _warnings(caplog))
    assert summary["trace_id"] == TRACE_ID
    assert_exactly_once(rx.spans, expected)


# ---------------------------------------------------------------------------- explicit ids: errors


@INVALID_IDS
def test_library_invalid_trace_id_argument_raises_before_sending(small: Batch, rx: OtlpReceiver, bad_id: str) -> None:
    with pytest.raises(InvalidTraceContextError):
        run_local(small, rx.endpoint, hint=TraceHint(trace_id=bad_id))
    with pytest.raises(InvalidTraceContextError):
        log_batch_results([small.input_lines[0]], [small.output_lines[0]], bad_id)
    assert rx.attempts == 0


@pytest.mark.parametrize(
    "hint",
    [
        TraceHint(trace_id=TRACE_ID, span_id="xyz"),
        TraceHint(trace_id=TRACE_ID, span_id="0" * 16),
        TraceHint(traceparent="00-zz-zz-01"),
        TraceHint(traceparent=f"00-{'0' * 32}-{PARENT_SPAN_ID}-01"),
    ],
    ids=["span-id-short", "span-id-zero", "traceparent-garbage", "traceparent-zero-trace"],
)
def test_library_invalid_span_id_or_traceparent_raises_before_sending(
    small: Batch, rx: OtlpReceiver, hint: TraceHint
) -> None:
    with pytest.raises(InvalidTraceContextError):
        run_local(small, rx.endpoint, hint=hint)
    assert rx.attempts == 0


STEP_FUNCTIONS_BAD = {
    **{f"trace_id-{k}": {"trace_id": v} for k, v in INVALID_TRACE_IDS.items()},
    "span_id-bad": {"trace_id": TRACE_ID, "span_id": "xyz"},
    "traceparent-bad": {"traceparent": f"00-{TRACE_ID}-{'0' * 16}-01"},
}


@pytest.mark.parametrize("fields", list(STEP_FUNCTIONS_BAD.values()), ids=list(STEP_FUNCTIONS_BAD))
def test_handler_invalid_ids_in_a_step_functions_payload_raise(
    s3: Any, load_app: Any, small: Batch, rx: OtlpReceiver, fields: dict[str, str]
) -> None:
    key = small.upload(s3, BUCKET, _folder(small), trace_doc=small.trace_doc(TRACE_ID, PARENT_SPAN_ID))
    app = load_app(rx.endpoint)
    with pytest.raises(InvalidTraceContextError) as caught:
        invoke(app, {"bucket": BUCKET, "output_key": key, **fields})
    assert "\n" not in str(caught.value)
    assert rx.attempts == 0


@pytest.mark.parametrize(
    "flags",
    [
        ["--trace-id", INVALID_TRACE_IDS["short"]],
        ["--trace-id", INVALID_TRACE_IDS["all-zeros"]],
        ["--trace-id", TRACE_ID, "--parent-span-id", "nothex!!nothex!!"],
        ["--traceparent", "00-abc-def-01"],
    ],
    ids=["trace-id-short", "trace-id-zeros", "parent-span-id", "traceparent"],
)
def test_cli_invalid_id_flags_exit_2_with_one_line(
    small: Batch, rx: OtlpReceiver, tmp_path: Path, flags: list[str]
) -> None:
    paths = small.write(tmp_path)
    proc = run_cli("--requests", str(paths["input"]), "--results", str(paths["output"]), *flags, endpoint=rx.endpoint)
    assert_one_line_error(proc, "invalid")
    assert rx.attempts == 0


def test_cli_unreadable_trace_json_is_a_one_line_error(small: Batch, rx: OtlpReceiver, tmp_path: Path) -> None:
    paths = small.write(tmp_path)
    trace_json = tmp_path / "trace.json"
    trace_json.write_bytes(b"[1, 2")
    proc = run_cli(
        "--requests", str(paths["input"]), "--results", str(paths["output"]), "--trace-json", str(trace_json),
        endpoint=rx.endpoint,
    )  # fmt: skip
    assert_one_line_error(proc, str(trace_json))
    assert rx.attempts == 0


def test_cli_invalid_trace_id_stored_in_trace_json_falls_back_to_a_new_trace(
    small: Batch, rx: OtlpReceiver, tmp_path: Path
) -> None:
    """(Regression: an id stored in --trace-json used to be strict, exit 2.)"""
    expected = _new_trace_expected(small)
    paths = small.write(tmp_path)
    trace_json = tmp_path / "trace.json"
    trace_json.write_text(json.dumps(small.trace_doc(INVALID_TRACE_IDS["all-zeros"], PARENT_SPAN_ID)))
    proc = run_cli(
        *paths.cli_args(),
        "--trace-json", str(trace_json),
        endpoint=rx.endpoint,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "new trace" in proc.stderr
    assert json.loads(proc.stdout)["trace_id"] == expected.trace_id
    assert_exactly_once(rx.spans, expected)
