"""The tally and the run summary: what Step Functions receives, the CLI prints and the handler logs.

Totals are summed from the records themselves (never read back from attributes),
chunk tallies add up across processes, and the summary carries every documented field.
"""

from __future__ import annotations

import json

from batchtrace.errors import BatchtraceError, DeliveryError, InputError, InvalidTraceContextError, MissingFileError
from batchtrace.extract.base import NO_RESULT, ExtractContext, keep
from batchtrace.extract.openai import ADAPTER
from batchtrace.record import Failure, Record, Usage
from batchtrace.tally import MAX_REASONS, Summary, Tally

from tests.support.contract import SUMMARY_FIELDS
from tests.support.fixtures import FORMATS, lines

FIXTURES = FORMATS / "openai"


def record(
    failure: Failure | None = None,
    usage: Usage | None = None,
    *,
    no_result: bool = False,
) -> Record:
    return Record("a", "openai", "chat", usage=usage or Usage(), failure=failure, no_result=no_result)


# --------------------------------------------------------------------------- counting records


def test_count_record_sums_tokens_from_the_record() -> None:
    """Each record adds its tokens (every part on its own) and one built span; unreported counts add nothing."""
    tally = Tally()
    tally.count_record(
        record(usage=Usage(100, 20, cache_read_tokens=64, cache_creation_tokens=8, reasoning_tokens=5)), 1
    )
    tally.count_record(record(usage=Usage(input_tokens=7)), 2)
    tally.count_record(record(), 3)
    assert (tally.input_tokens, tally.output_tokens) == (107, 20)
    assert (tally.cache_read_tokens, tally.cache_creation_tokens, tally.reasoning_tokens) == (64, 8, 5)
    assert tally.spans_built == 3
    assert tally.errors == 0


def test_failures_are_errors_and_expiries_are_also_expired() -> None:
    """A failed result is an error; an expired one is an error and an expiry; a missing result is neither."""
    tally = Tally()
    tally.count_record(record(Failure("invalid_request_error", "bad")), 1)
    tally.count_record(record(Failure("batch_expired", "late", expired=True)), 1)
    tally.count_record(record(NO_RESULT, no_result=True), 1)
    assert tally.errors == 2
    assert tally.expired == 1
    assert tally.spans_built == 3


def test_count_record_keeps_the_earliest_and_latest_time() -> None:
    tally = Tally()
    for at_ns in (50, 10, 90, 30):
        tally.count_record(record(), at_ns)
    assert (tally.earliest_ns, tally.latest_ns) == (10, 90)
    tally.observe_time(None)
    assert (tally.earliest_ns, tally.latest_ns) == (10, 90)


def test_fixture_totals_equal_the_sum_over_the_lines() -> None:
    """The chat fixtures' token totals, tallied from records, equal the sum of the lines' usage."""
    requests = {line["custom_id"]: line for line in lines(FIXTURES / "chat.requests.jsonl")}
    results = lines(FIXTURES / "chat.results.jsonl") + lines(FIXTURES / "chat.errors.jsonl")
    tally = Tally()
    for line in results:
        custom_id = line["custom_id"]
        tally.count_record(ADAPTER.extract(custom_id, requests[custom_id], line, ExtractContext(keep)), 1)
    usages = [
        line["response"]["body"]["usage"] for line in results if "usage" in (line["response"] or {}).get("body", {})
    ]
    assert tally.input_tokens == sum(u["prompt_tokens"] for u in usages) == 1790
    assert tally.output_tokens == sum(u["completion_tokens"] for u in usages)
    assert tally.cache_read_tokens == 1152
    assert tally.errors == 5
    assert tally.expired == 2


# --------------------------------------------------------------------------- delivery


def test_delivered_counts_exported_and_failed_spans_with_a_reason() -> None:
    tally = Tally()
    tally.delivered(8)
    tally.delivered(0, 2, "HTTP 500 from http://collector:4318/v1/traces")
    assert (tally.spans_exported, tally.spans_failed) == (8, 2)
    assert tally.failure_reasons == ["HTTP 500 from http://collector:4318/v1/traces"]


def test_lost_spans_are_built_and_failed() -> None:
    """Spans a dead worker never sent still count: as built and as failed, with why."""
    tally = Tally()
    tally.lost(5, "worker died")
    assert (tally.spans_built, tally.spans_exported, tally.spans_failed) == (5, 0, 5)
    assert tally.failure_reasons == ["worker died"]


def test_failure_reasons_are_distinct_and_bounded() -> None:
    """The same reason is kept once, and only the first few distinct ones are kept."""
    tally = Tally()
    for n in range(3 * MAX_REASONS):
        tally.add_reason(f"reason {n % (2 * MAX_REASONS)}")
    assert len(tally.failure_reasons) == MAX_REASONS
    assert len(set(tally.failure_reasons)) == MAX_REASONS
    assert tally.failure_reasons[0] == "reason 0"


# --------------------------------------------------------------------------- merging chunks


def chunk(*, at: tuple[int, int], reason: str, malformed: dict[str, int]) -> Tally:
    tally = Tally(requests=2, results=3, errors=1, expired=1, malformed_lines=sum(malformed.values()))
    tally.count_record(record(usage=Usage(10, 2, reasoning_tokens=1)), at[0])
    tally.count_record(record(usage=Usage(5, 1)), at[1])
    tally.delivered(2, 0, reason)
    tally.malformed_by_file.update(malformed)
    tally.add_seconds("build", 0.25)
    return tally


def test_merge_adds_counts_and_keeps_the_widest_time_range() -> None:
    """Chunk tallies from several processes add up; times widen, they are not summed."""
    total = Tally()
    total.merge(chunk(at=(100, 200), reason="slow", malformed={"output.jsonl": 1}))
    total.merge(chunk(at=(50, 150), reason="slow", malformed={"output.jsonl": 2, "input.jsonl": 1}))
    assert (total.requests, total.results, total.errors, total.expired) == (4, 6, 2, 2)
    assert (total.input_tokens, total.output_tokens, total.reasoning_tokens) == (30, 6, 2)
    assert (total.spans_built, total.spans_exported, total.spans_failed) == (4, 4, 0)
    assert total.malformed_lines == 4
    assert total.malformed_by_file == {"output.jsonl": 3, "input.jsonl": 1}
    assert total.failure_reasons == ["slow"]
    assert total.seconds == {"build": 0.5}
    assert (total.earliest_ns, total.latest_ns) == (50, 200)


def test_merging_an_empty_tally_changes_nothing() -> None:
    total = chunk(at=(1, 2), reason="r", malformed={})
    before = Summary.of(total).as_dict()
    total.merge(Tally())
    assert Summary.of(total).as_dict() == before
    assert (total.earliest_ns, total.latest_ns) == (1, 2)


# --------------------------------------------------------------------------- the summary


def test_summary_of_a_tally_has_every_design_field_and_is_json() -> None:
    """The summary carries every documented field, the tally's counts and the run's identity, as JSON."""
    tally = chunk(at=(1, 2), reason="r", malformed={"output.jsonl": 1})
    tally.add_seconds("send", 1.5)
    summary = Summary.of(tally, batch_id="batch_1", trace_id="ab" * 16, provider="openai", duration_ms=1234)
    data = json.loads(json.dumps(summary.as_dict()))
    assert set(data) >= SUMMARY_FIELDS
    assert data["batch_id"] == "batch_1"
    assert data["trace_id"] == "ab" * 16
    assert data["provider"] == "openai"
    assert data["duration_ms"] == 1234
    assert (data["requests"], data["results"], data["errors"], data["expired"]) == (2, 3, 1, 1)
    assert (data["input_tokens"], data["output_tokens"], data["reasoning_tokens"]) == (15, 3, 1)
    assert (data["spans_built"], data["spans_exported"], data["spans_failed"]) == (2, 2, 0)
    assert data["malformed_lines"] == 1
    assert data["malformed_by_file"] == {"output.jsonl": 1}
    assert data["failure_reasons"] == ["r"]
    assert data["stage_ms"] == {"build": 250, "send": 1500}
    assert "earliest_ns" not in data
    assert "seconds" not in data


def test_summary_has_every_field_of_the_contract_and_is_json() -> None:
    """A summary built directly carries every documented field and serialises to JSON as is."""
    summary = Summary(batch_id="batch_1", trace_id="ab" * 16, requests=3, spans_built=4, spans_exported=4)
    data = summary.as_dict()
    assert set(data) >= SUMMARY_FIELDS
    assert json.loads(json.dumps(data))["requests"] == 3


def test_fresh_summary_counts_are_zero() -> None:
    """An empty batch reports zeros, not missing fields."""
    for data in (Summary().as_dict(), Summary.of(Tally()).as_dict()):
        assert all(data[key] == 0 for key in SUMMARY_FIELDS - {"batch_id", "trace_id"})


def test_delivered_all_only_when_every_built_span_was_exported() -> None:
    """``delivered_all`` is what decides exit 0 vs 1: every built span exported, none failed."""
    assert Summary(spans_built=5, spans_exported=5).delivered_all
    assert not Summary(spans_built=5, spans_exported=4, spans_failed=1).delivered_all
    assert not Summary(spans_built=5, spans_exported=4).delivered_all


def test_failure_reason_is_one_line() -> None:
    summary = Summary(spans_built=10, spans_exported=7, spans_failed=3, failure_reasons=["HTTP 500", "timeout"])
    assert summary.failure_reason() == "3 of 10 spans not delivered (HTTP 500; timeout)"
    assert "see the log" in Summary(spans_built=1, spans_failed=1).failure_reason()


# --------------------------------------------------------------------------- typed errors


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
