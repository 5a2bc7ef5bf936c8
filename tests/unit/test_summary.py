"""The run summary and the typed errors: what Step Functions receives, the CLI prints, the handler raises."""

from __future__ import annotations

import json

from batchtrace.errors import BatchtraceError, DeliveryError, InputError, InvalidTraceContextError, MissingFileError
from batchtrace.summary import Summary

from tests.support.contract import SUMMARY_FIELDS

DESIGN_FIELDS = SUMMARY_FIELDS


def test_summary_has_every_field_of_the_contract_and_is_json() -> None:
    """The summary carries every DESIGN.md field and serialises to JSON as is (Step Functions output)."""
    summary = Summary(batch_id="batch_1", trace_id="ab" * 16, requests=3, spans_built=4, spans_exported=4)
    data = summary.as_dict()
    assert set(data) >= DESIGN_FIELDS
    assert json.loads(json.dumps(data))["requests"] == 3


def test_fresh_summary_counts_are_zero() -> None:
    """A new summary starts every count at zero (an empty batch reports zeros, not missing fields)."""
    data = Summary().as_dict()
    assert all(data[key] == 0 for key in DESIGN_FIELDS - {"batch_id", "trace_id"})


def test_delivered_all_only_when_every_built_span_was_exported() -> None:
    """``delivered_all`` is what decides exit 0 vs 1: every built span exported, none failed."""
    assert Summary(spans_built=5, spans_exported=5).delivered_all
    assert not Summary(spans_built=5, spans_exported=4, spans_failed=1).delivered_all


def test_delivery_error_carries_the_summary_and_a_one_line_reason() -> None:
    """A delivery failure names the batch and how many spans were lost, on one line, with the summary attached."""
    summary = Summary(batch_id="batch_9", spans_built=10, spans_exported=7, spans_failed=3)
    summary.failure_reasons.append("HTTP 500 from http://collector:4318/v1/traces")
    err = DeliveryError(summary)
    assert isinstance(err, BatchtraceError)
    assert err.summary is summary
    message = str(err)
    assert "\n" not in message
    assert "batch_9" in message
    assert "3 of 10" in message
    assert "HTTP 500" in message


def test_missing_file_error_is_an_input_error_naming_the_location() -> None:
    """A missing batch file is an input error (not retried forever) whose message says what and where."""
    err = MissingFileError("output file", "s3://bucket/batches/batch_1/output.jsonl")
    assert isinstance(err, InputError)
    assert isinstance(err, ValueError)
    assert "output file" in str(err)
    assert "s3://bucket/batches/batch_1/output.jsonl" in str(err)


def test_invalid_trace_context_is_an_input_error() -> None:
    """A bad trace id is the user's input to fix: an InputError (CLI exit 2)."""
    assert issubclass(InvalidTraceContextError, InputError)
