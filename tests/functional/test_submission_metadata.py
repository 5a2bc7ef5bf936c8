"""``batchtrace.submission_metadata()``: the submitting trace in the batch's own metadata, and back.

The helper's output is checked against what each provider accepts (OpenAI's documented limits,
the patterns in botocore's own model of ``CreateModelInvocationJob``, Vertex AI's label rules),
and against what batchtrace reads back: the lifecycle parsers, and the spans a batch object with
that metadata produces in the real OTLP receiver, including a metadata value that is not a
traceparent at all (one warning, then a trace of the batch's own).
"""

from __future__ import annotations

import io
import logging
import re

import boto3
import pytest
from batchtrace import log_batch_status, run_batch, submission_metadata
from batchtrace import submit as submit_module
from batchtrace.lifecycle import lifecycle_of
from batchtrace.sources.bedrock_job import TRACEPARENT_TAG
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tests.functional.assertions import assert_batch_delivered, delivered
from tests.support.batches import batch_object, fault_batch
from tests.support.otlp_receiver import OtlpReceiver

tracer = TracerProvider().get_tracer("submitting-app")
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACESTATE = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
#: Vertex AI label keys and values (Google Cloud's labels rules).
VERTEX_KEY, VERTEX_VALUE = re.compile(r"[a-z][a-z0-9_-]{0,62}"), re.compile(r"[a-z0-9_-]{0,63}")


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees the helper's once-per-process warnings afresh."""
    monkeypatch.setattr(submit_module, "_warned", set())


def _ids(span: trace.Span) -> tuple[str, str]:
    context = span.get_span_context()
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def _parsed(traceparent: str) -> tuple[str, str]:
    context = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    ids = trace.get_current_span(context).get_span_context()
    assert ids.is_valid, traceparent
    return f"{ids.trace_id:032x}", f"{ids.span_id:016x}"


def test_outside_a_span_there_is_nothing_to_carry() -> None:
    assert submission_metadata() == {}
    assert submission_metadata("bedrock") == []
    assert submission_metadata("vertex") == {}


def test_inside_a_span_every_format_names_that_span() -> None:
    with tracer.start_as_current_span("submit") as span:
        openai_metadata = submission_metadata()
        tags = submission_metadata("bedrock")
        labels = submission_metadata("vertex")
    assert set(openai_metadata) == {"traceparent"}
    assert _parsed(openai_metadata["traceparent"]) == _ids(span)
    assert tags == [{"key": TRACEPARENT_TAG, "value": openai_metadata["traceparent"]}]
    assert labels == openai_metadata


def test_tracestate_goes_where_the_provider_accepts_it(caplog: pytest.LogCaptureFixture) -> None:
    carrier = {"traceparent": TRACEPARENT, "tracestate": TRACESTATE}
    context = TraceContextTextMapPropagator().extract(carrier)
    caplog.set_level(logging.WARNING, logger="batchtrace.submit")

    assert submission_metadata(context=context) == carrier
    for _ in range(3):  # said once, not at every submission
        assert submission_metadata("bedrock", context=context) == [
            {"key": "traceparent", "value": carrier["traceparent"]}
        ]
        assert submission_metadata("vertex", context=context) == {"traceparent": carrier["traceparent"]}

    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "tracestate left out of the bedrock metadata" in lines[0]
    assert "tracestate left out of the vertex metadata" in lines[1]


def test_values_fit_each_providers_rules() -> None:
    carrier = {
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "tracestate": "congo=t61rcWkgMzE",
    }
    context = TraceContextTextMapPropagator().extract(carrier)
    # OpenAI: at most 16 pairs, keys of at most 64 characters, values of at most 512.
    metadata = submission_metadata(context=context)
    assert len(metadata) <= 16 and all(len(k) <= 64 and len(v) <= 512 for k, v in metadata.items())
    # Bedrock: the tag shape and patterns of botocore's model of CreateModelInvocationJob.
    shape = boto3.client("bedrock", region_name="us-east-1").meta.service_model.operation_model(
        "CreateModelInvocationJob"
    )
    tag = shape.input_shape.members["tags"].member
    assert set(tag.members) == {"key", "value"}
    tags = submission_metadata("bedrock", context=context)
    assert [t["key"] for t in tags] == ["traceparent", "tracestate"]  # "congo=t61rcWkgMzE" has no comma: it fits
    for item in tags:
        for name, value in item.items():
            limits = tag.members[name].metadata
            assert re.fullmatch(limits["pattern"], value) and limits["min"] <= len(value) <= limits["max"], item
    # Vertex AI: lower-case letters, digits, _ and -, at most 63 characters, keys starting with a letter.
    for key, value in submission_metadata("vertex", context=context).items():
        assert VERTEX_KEY.fullmatch(key) and VERTEX_VALUE.fullmatch(value), (key, value)


def test_an_unknown_format_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match="format must be one of"):
        submission_metadata("anthropic")  # type: ignore[call-overload]


# --------------------------------------------------------------------------- read back


def test_the_lifecycle_parsers_read_it_back() -> None:
    with tracer.start_as_current_span("submit"):
        metadata = submission_metadata()
        labels = submission_metadata("vertex")
    openai_batch = lifecycle_of(batch_object("batch_meta", "completed", metadata=metadata))
    vertex_job = lifecycle_of(
        {
            "name": "projects/p/locations/us-central1/batchPredictionJobs/123",
            "state": "JOB_STATE_SUCCEEDED",
            "labels": {"team": "search", **labels},
            "createTime": "2026-03-10T00:00:00Z",
        }
    )
    assert openai_batch is not None and vertex_job is not None
    assert openai_batch.traceparent == metadata["traceparent"]
    assert vertex_job.traceparent == labels["traceparent"]


@pytest.mark.parametrize(
    "value",
    ["not a traceparent", "00-zz-01", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"],
    ids=["text", "short", "zero-trace-id"],
)
def test_an_invalid_metadata_traceparent_is_one_warning_and_falls_through(
    receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    failed = batch_object("batch_bad_meta", "failed", metadata={"traceparent": value})
    caplog.set_level(logging.WARNING)

    summary = log_batch_status(failed)

    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "\n" not in warnings[0].getMessage() and warnings[0].exc_info is None
    assert "new trace" in warnings[0].getMessage()
    (span,) = delivered(receiver, 1)
    # A trace of the batch's own, the same on every run (derived from the batch id), not a crash.
    assert span.trace_id == summary.trace_id and span.parent_span_id is None
    assert span.attributes.get("batchtrace.trace_link_warning")
    assert log_batch_status(failed).trace_id == summary.trace_id


def test_the_spans_of_a_logged_batch_land_under_the_submitting_span(receiver: OtlpReceiver) -> None:
    """No trace.json, no argument: the batch object's metadata alone links the spans."""
    batch = fault_batch(10, batch_id="batch_metadata_tree")
    with tracer.start_as_current_span("submit") as span:
        obj = batch_object(batch.batch_id, "completed", metadata=submission_metadata())
    trace_id, span_id = _ids(span)

    summary = run_batch(
        io.BytesIO(batch.input_bytes()),
        [("output", io.BytesIO(batch.output_bytes())), ("errors", io.BytesIO(batch.errors_bytes()))],
        batch=obj,
    )

    spans = delivered(receiver, summary.spans_built)
    assert_batch_delivered(spans, batch, trace_id=trace_id, parent_span_id=span_id, mode="explicit")
