"""The batch's lifecycle from every provider's batch object or job, and the reconciliation of its counts.

The objects are the fixtures' (``tests/fixtures/formats/*/batch.json``, ``job.json``), each
written from its provider's documentation, so each test says what a user of that provider would
see on ``batch_results``: which events, which outcome, which counts.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from batchtrace import semconv as sc
from batchtrace.errors import InputError
from batchtrace.lifecycle import (
    BatchLifecycle,
    Outcome,
    check_counts,
    lifecycle_of,
    lifecycle_or_warn,
    reconcile,
    require_lifecycle,
)
from batchtrace.lifecycle.model import instant_ns
from batchtrace.lifecycle.span import batch_span_extras
from batchtrace.lifecycle.stored import stored_lifecycle
from batchtrace.tally import Tally
from batchtrace.timestamps import TimestampPolicy
from batchtrace.trace_link import resolve_link
from batchtrace.write.spans import SpanFactory
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import StatusCode

from tests.support.fixtures import FORMATS

NS = 1_000_000_000


def fixture(path: str) -> dict[str, Any]:
    return json.loads((FORMATS / path).read_text(encoding="utf-8"))


def parsed(obj: Any) -> BatchLifecycle:
    lifecycle = lifecycle_of(obj)
    assert lifecycle is not None, obj
    return lifecycle


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp()) * NS


def event_names(lifecycle: BatchLifecycle) -> list[str]:
    return [event.name for event in lifecycle.events]


# --------------------------------------------------------------------------- one parser per shape


def test_openai_batch_with_every_lifecycle_timestamp() -> None:
    """All eight of OpenAI's timestamps become events, in time order; ``expires_at`` (a deadline) does not."""
    fields = ("created", "in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled")
    batch = {f"{name}_at": 1_787_000_000 + 100 * i for i, name in enumerate(fields)}
    batch.update(id="batch_1", object="batch", status="completed", expires_at=1_787_086_400)
    lifecycle = parsed(batch)
    assert lifecycle.provider == "openai"
    assert event_names(lifecycle) == list(fields)
    assert [e.field for e in lifecycle.events] == [f"{name}_at" for name in fields]
    assert lifecycle.created_ns == 1_787_000_000 * NS
    assert lifecycle.queue_time_s == 100.0


def test_openai_expired_batch_of_the_chat_fixture() -> None:
    lifecycle = parsed(fixture("openai/chat.batch.json"))
    assert (lifecycle.id, lifecycle.status, lifecycle.outcome) == (
        "batch_68f3c1d2e4a5b6978c0d1e2f",
        "expired",
        "expired",
    )
    assert event_names(lifecycle) == ["created", "in_progress", "finalizing", "expired"]
    assert lifecycle.queue_time_s == 97.0
    assert lifecycle.run_time_s == 1_787_090_463 - 1_787_004_097
    assert (lifecycle.endpoint, lifecycle.completion_window) == ("/v1/chat/completions", "24h")
    assert dict(lifecycle.counts) == {
        "total": 12,
        "succeeded": 7,
        "failed": 3,
        "input_tokens": 1790,
        "output_tokens": 243,
    }
    assert lifecycle.unsuccessful
    assert lifecycle.failure == "the batch expired before every request ran"


def test_openai_batch_that_failed_validation() -> None:
    lifecycle = parsed(fixture("openai/failed.batch.json"))
    assert lifecycle.outcome is Outcome.FAILED
    assert lifecycle.validation_errors == (
        "line 3: invalid_json_line: This line is not parseable as valid JSON.",
        "line 7: model_not_found: The model `gpt-4o-mini-2023` does not exist or you do not have access to it.",
    )
    assert lifecycle.failure == (
        "the batch failed validation: line 3: invalid_json_line: This line is not parseable as valid JSON. (and 1 more)"
    )
    assert lifecycle.traceparent == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert lifecycle.ended_ns == 1_787_011_214 * NS and lifecycle.run_time_s is None


def test_azure_batch_object_with_iso_times_and_capitalised_status() -> None:
    """Azure's REST docs show ISO ``created_at`` and ``Validating``: the same parser reads both."""
    lifecycle = parsed(
        {"id": "batch_az", "object": "batch", "status": "Completed", "created_at": "2026-08-17T10:00:00Z"}
    )
    assert lifecycle.outcome is Outcome.COMPLETED and lifecycle.status == "completed"
    assert lifecycle.created_ns == ns("2026-08-17T10:00:00+00:00")


def test_anthropic_message_batch() -> None:
    """A batch whose cancel was initiated was cancelled; the five buckets add up to its size."""
    lifecycle = parsed(fixture("anthropic/batch.json"))
    assert (lifecycle.provider, lifecycle.status, lifecycle.outcome) == ("anthropic", "ended", Outcome.CANCELLED)
    assert event_names(lifecycle) == ["created", "cancel_initiated", "ended"]
    assert lifecycle.ended_ns == ns("2026-08-18T21:40:12+00:00") + 448_917_000
    assert lifecycle.duration_s == 86_400.0 and lifecycle.queue_time_s is None
    counts = dict(lifecycle.counts)
    assert counts == {"pending": 0, "succeeded": 8, "failed": 2, "canceled": 1, "expired": 1, "total": 12}


def test_anthropic_batch_that_ran_out_of_time_is_expired() -> None:
    batch = {**fixture("anthropic/batch.json"), "cancel_initiated_at": None}
    assert parsed(batch).outcome is Outcome.EXPIRED
    running = {**batch, "processing_status": "in_progress", "ended_at": None}
    assert parsed(running).outcome is None and parsed(running).ended_ns is None


def test_bedrock_job_and_manifest() -> None:
    job = parsed(fixture("bedrock/job.json"))
    assert (job.provider, job.id, job.status, job.outcome) == ("aws.bedrock", "p14wfmvc17r9", "Completed", "completed")
    assert event_names(job) == ["submitted", "ended"]
    assert job.model == "anthropic.claude-3-haiku-20240307-v1:0"
    assert job.completion_window == "24h"
    manifest = parsed(fixture("bedrock/manifest.json.out"))
    merged = job.with_counts(manifest)
    assert merged.counts_source == "manifest.json.out" and merged.events == job.events
    assert dict(merged.counts) == {
        "total": 6,
        "processed": 6,
        "succeeded": 4,
        "failed": 2,
        "input_tokens": 599,
        "output_tokens": 152,
    }


def test_bedrock_job_from_boto3_has_datetimes_and_a_failure_message() -> None:
    job = {
        "jobArn": "arn:aws:bedrock:us-east-1:111122223333:model-invocation-job/abc123def456",
        "status": "Failed",
        "message": "The input file is not valid JSONL",
        "submitTime": datetime(2026, 8, 17, 21, 52, 3, 118000, tzinfo=UTC),
        "endTime": datetime(2026, 8, 17, 21, 55, 0, tzinfo=UTC),
    }
    lifecycle = parsed(job)
    assert lifecycle.failure == "The input file is not valid JSONL"
    assert lifecycle.created_ns == ns("2026-08-17T21:52:03+00:00") + 118_000_000
    stopped = parsed({**job, "status": "Stopped"})
    assert stopped.outcome is Outcome.CANCELLED


def test_gemini_batch_operation() -> None:
    """The API's operation: its metadata holds the batch; int64 strings; zero counts left out."""
    lifecycle = parsed(fixture("gemini/batch.json"))
    assert (lifecycle.provider, lifecycle.status, lifecycle.outcome) == (
        "gcp.gemini",
        "BATCH_STATE_SUCCEEDED",
        Outcome.COMPLETED,
    )
    assert lifecycle.id == "batches/dia40n538h90i1c9hh6nsq4e6tuoms2bgza51cbc"
    assert lifecycle.created_ns == ns("2026-08-17T21:40:12+00:00") + 448_917_203  # nanoseconds kept
    assert event_names(lifecycle) == ["created", "ended"]
    assert lifecycle.model == "gemini-2.5-flash"
    assert dict(lifecycle.counts) == {"total": 8, "succeeded": 6, "failed": 2, "pending": 0}


def test_gemini_sdk_state_and_error() -> None:
    batch = {"name": "batches/x", "state": "JOB_STATE_FAILED", "error": {"code": 3, "message": "bad input file"}}
    lifecycle = parsed(batch)
    assert lifecycle.outcome is Outcome.FAILED and lifecycle.failure == "bad input file"


def test_vertex_batch_prediction_job() -> None:
    lifecycle = parsed(fixture("vertex/job.json"))
    assert (lifecycle.provider, lifecycle.outcome) == ("gcp.vertex_ai", Outcome.COMPLETED)
    assert event_names(lifecycle) == ["created", "started", "ended"]
    assert lifecycle.queue_time_s == pytest.approx(21.385192)
    assert lifecycle.model == "gemini-2.0-flash-001"
    assert dict(lifecycle.counts) == {"succeeded": 4, "failed": 1, "incomplete": 0, "total": 5}
    assert lifecycle.traceparent == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_mistral_job() -> None:
    lifecycle = parsed(fixture("mistral/job.json"))
    assert (lifecycle.provider, lifecycle.status, lifecycle.outcome) == ("mistral_ai", "SUCCESS", Outcome.COMPLETED)
    assert event_names(lifecycle) == ["created", "started", "completed"]
    assert (lifecycle.queue_time_s, lifecycle.run_time_s) == (41.0, 347.0)
    assert dict(lifecycle.counts) == {"total": 6, "processed": 6, "succeeded": 4, "failed": 2}
    timeout = parsed({**fixture("mistral/job.json"), "status": "TIMEOUT_EXCEEDED"})
    assert timeout.outcome is Outcome.EXPIRED


def test_together_and_fireworks_jobs() -> None:
    together = parsed(fixture("together/job.json"))
    assert (together.provider, together.outcome, together.counts) == ("together_ai", Outcome.COMPLETED, {})
    assert together.duration_s == 209.0
    fireworks = parsed(fixture("fireworks/job.json"))
    assert (fireworks.provider, fireworks.outcome) == ("fireworks_ai", Outcome.COMPLETED)
    assert event_names(fireworks) == ["created", "ended"]
    assert fireworks.counts["succeeded"] == 4 and fireworks.counts["output_tokens"] == 74


def test_shapes_that_share_fields_are_told_apart() -> None:
    """Mistral's job also says ``object: batch``; a trace.json may keep a fragment of OpenAI's object."""
    assert parsed({"object": "batch", "input_files": [], "status": "QUEUED"}).provider == "mistral_ai"
    assert parsed({"created_at": 100}).provider == "openai"
    assert lifecycle_of({"hello": "world"}) is None
    assert lifecycle_of(["not", "an", "object"]) is None


def test_an_unknown_object_is_one_clear_error_from_a_user_and_a_warning_when_stored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(InputError, match=r"batch\.json is not a batch object or job of a known provider"):
        require_lifecycle({"hello": "world"}, "batch.json")
    caplog.set_level(logging.WARNING)
    assert not lifecycle_or_warn({"hello": "world"}).known
    assert [r.getMessage() for r in caplog.records] == [
        "ignoring the batch object: not a batch object or job of a known provider"
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_787_004_000, 1_787_004_000 * NS),
        (1_787_004_000.5, 1_787_004_000 * NS + NS // 2),
        ("2026-08-17T21:40:12.448917203Z", ns("2026-08-17T21:40:12+00:00") + 448_917_203),
        ("2026-08-17T23:40:12+02:00", ns("2026-08-17T21:40:12+00:00")),
        ("2026-08-17T21:40:12", ns("2026-08-17T21:40:12+00:00")),
        (0, None),
        (None, None),
        (True, None),
        ("yesterday", None),
        ("2026-13-45T99:00:00Z", None),
    ],
)
def test_instants_in_every_providers_notation(value: Any, expected: int | None) -> None:
    assert instant_ns(value) == expected


# --------------------------------------------------------------------------- stored with the files


def test_batch_json_beside_the_output_wins_over_trace_json() -> None:
    """trace.json's batch was written at submission (``validating``); batch.json when the batch finished."""
    submitted = {"id": "batch_1", "object": "batch", "status": "validating", "created_at": 100}
    finished = {**submitted, "status": "completed", "completed_at": 200}
    found = stored_lifecycle(submitted, {"batch.json": finished}.get)
    assert found is not None and found.status == "completed"
    only_trace = stored_lifecycle(submitted, {}.get)
    assert only_trace is not None and only_trace.status == "validating"
    assert stored_lifecycle(None, {}.get) is None


def test_a_bedrock_output_takes_the_manifest_counts() -> None:
    found = stored_lifecycle(None, {"manifest.json.out": fixture("bedrock/manifest.json.out")}.get, bedrock=True)
    assert found is not None and found.counts_source == "manifest.json.out" and found.counts["total"] == 6


# --------------------------------------------------------------------------- reconciliation


def seen(**counts: int) -> Tally:
    return Tally(**counts)


def test_openai_counts_agree_with_the_chat_files() -> None:
    """Expired requests are in neither ``completed`` nor ``failed``: they are batch_expired lines."""
    lifecycle = parsed(fixture("openai/chat.batch.json"))
    files = seen(requests=12, results=12, errors=5, expired=2, input_tokens=1790, output_tokens=243)
    found = reconcile(lifecycle.counts, files, "request_counts")
    assert found is not None and found.agree, found


def test_anthropic_canceled_requests_count_as_failed_lines() -> None:
    lifecycle = parsed(fixture("anthropic/batch.json"))
    found = reconcile(lifecycle.counts, seen(requests=12, results=12, errors=4, expired=1), "request_counts")
    assert found is not None
    assert found.provider == {"succeeded": 8, "failed": 3, "expired": 1, "total": 12}
    assert found.agree


def test_a_disagreement_is_one_warning_line_with_the_figures(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    lifecycle = parsed(fixture("openai/chat.batch.json"))
    found = check_counts(lifecycle, seen(requests=12, results=11, errors=5, expired=2), "batch_1")
    assert found is not None and not found.agree
    assert found.as_dict()["agree"] is False
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "batch batch_1: the provider's counts (request_counts) disagree with the files:"
        " succeeded 7 (files 6), input_tokens 1790 (files 0), output_tokens 243 (files 0)"
    )


def test_a_batch_object_from_before_the_batch_finished_is_not_reconciled(caplog: pytest.LogCaptureFixture) -> None:
    """trace.json's batch, written at submission, counts nothing yet: no false alarm."""
    caplog.set_level(logging.INFO, logger="batchtrace")  # another test may have set its level
    submitted = parsed({"id": "batch_1", "object": "batch", "status": "validating", "request_counts": {"total": 0}})
    assert check_counts(submitted, seen(requests=12, results=12), "batch_1") is None
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert "not a final state" in caplog.records[0].getMessage()


def test_no_counts_no_reconciliation() -> None:
    assert check_counts(BatchLifecycle(), seen(), None) is None
    assert check_counts(parsed(fixture("together/job.json")), seen(), None) is None


# --------------------------------------------------------------------------- what goes on batch_results


def test_span_extras_of_an_expired_batch() -> None:
    lifecycle = parsed(fixture("openai/chat.batch.json"))
    found = reconcile(lifecycle.counts, seen(requests=12, results=12, errors=5, expired=2), "request_counts")
    extras = batch_span_extras(lifecycle, found, lambda at_ns: at_ns)
    attrs = extras.attributes
    assert extras.error == "the batch expired before every request ran"
    assert attrs[sc.ERROR_TYPE] == "batch_expired"
    assert attrs[sc.BATCH_STATUS] == "expired" and attrs[sc.BATCH_OUTCOME] == "expired"
    assert attrs[sc.BATCH_QUEUE_TIME] == 97.0
    assert attrs[sc.BATCH_REQUEST_COUNTS_PREFIX + "total"] == 12
    assert attrs[sc.BATCH_USAGE_PREFIX + "input_tokens"] == 1790
    assert attrs[sc.RECONCILIATION_AGREE] is False
    assert attrs[sc.RECONCILIATION_SEEN_PREFIX + "input_tokens"] == 0
    assert [(e.name, e.timestamp) for e in extras.events][:2] == [
        ("batch.created", 1_787_004_000 * NS),
        ("batch.in_progress", 1_787_004_097 * NS),
    ]
    assert extras.events[0].attributes == {sc.BATCH_EVENT_FIELD: "created_at", sc.BATCH_EVENT_TIME: 1_787_004_000.0}


def test_span_extras_of_a_completed_batch_are_not_an_error() -> None:
    extras = batch_span_extras(parsed(fixture("mistral/job.json")), None, lambda at_ns: at_ns)
    assert extras.error is None and sc.ERROR_TYPE not in extras.attributes
    assert sc.RECONCILIATION_AGREE not in extras.attributes
    assert batch_span_extras(BatchLifecycle(), None, lambda at_ns: at_ns).attributes == {}


def test_the_window_ends_at_the_final_state_and_contains_every_event() -> None:
    running = parsed({"created_at": 100, "in_progress_at": 200, "cancelling_at": 300})
    assert running.end_ns is None, "a running batch ends with its latest completion"
    finalizing = parsed({"created_at": 100, "in_progress_at": 200, "finalizing_at": 300})
    assert finalizing.end_ns == 300 * NS
    odd = parsed({"created_at": 100, "cancelled_at": 200, "finalizing_at": 300})
    assert (odd.ended_ns, odd.end_ns) == (200 * NS, 300 * NS)


def test_batch_results_of_an_expired_batch_from_the_span_factory() -> None:
    lifecycle = parsed(fixture("openai/chat.batch.json"))
    now_ns = 1_787_200_000 * NS
    factory = SpanFactory(
        resolve_link(str(lifecycle.id)),
        batch_id=lifecycle.id,
        lifecycle=lifecycle,
        resource=Resource({}),
        now_ns=now_ns,
    )
    span = factory.batch_span({}, factory.batch_window(None, None))
    assert span is not None
    assert (span.start_time, span.end_time) == (1_787_004_000 * NS, 1_787_090_463 * NS)
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "the batch expired before every request ran"
    assert [event.timestamp for event in span.events] == [e.time_ns for e in lifecycle.events]


def test_at_processing_time_the_events_move_with_the_span_and_keep_their_times() -> None:
    """Backends that reject old spans reject old events too: they move, their times stay as attributes."""
    lifecycle = parsed(fixture("openai/chat.batch.json"))
    now_ns = 1_787_200_000 * NS
    factory = SpanFactory(
        resolve_link(str(lifecycle.id)),
        batch_id=lifecycle.id,
        lifecycle=lifecycle,
        resource=Resource({}),
        now_ns=now_ns,
        timestamps=TimestampPolicy("processing"),
    )
    span = factory.batch_span({}, factory.batch_window(None, None))
    assert span is not None and span.start_time == now_ns
    assert {event.timestamp for event in span.events} == {now_ns}
    assert [(event.attributes or {})[sc.BATCH_EVENT_TIME] for event in span.events] == [
        e.time_ns / NS for e in lifecycle.events
    ]
