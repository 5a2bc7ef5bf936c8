"""The spans users see: one CLIENT span per result, a ``batch_results`` task span, honest times."""

from __future__ import annotations

from typing import Any

import pytest
from batchtrace.genai_attributes import ContentPolicy
from batchtrace.openai_format import BatchRequest, BatchResult, parse_request, parse_result
from batchtrace.spans import BatchTimes, SpanFactory
from batchtrace.trace_link import TraceLink, resolve_link
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from tests.unit.samples import (
    BATCH_COMPLETED_AT,
    BATCH_CREATED_AT,
    CREATED,
    chat_request,
    chat_response_body,
    expired_line,
    http_error_line,
    output_line,
)

NS = 1_000_000_000
NOW_NS = (CREATED + 86_400) * NS  # processing happens a day after the responses were created
TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
STORED_SPAN = 0x00F067AA0BA902B7
BATCH_ID = "batch_6740abcdef"
RESOURCE = Resource({"service.name": "batchtrace-unit-tests"})


def request(custom_id: str = "req-1", **body: Any) -> BatchRequest:
    parsed, reason = parse_request(chat_request(custom_id, **body))
    assert parsed is not None, reason
    return parsed


def result(line: dict[str, Any]) -> BatchResult:
    parsed, reason = parse_result(line)
    assert parsed is not None, reason
    return parsed


def factory(
    link: TraceLink | None = None,
    *,
    batch: dict[str, Any] | None = None,
    now_ns: int = NOW_NS,
    policy: ContentPolicy | None = None,
) -> SpanFactory:
    return SpanFactory(
        link or resolve_link(BATCH_ID, trace_id=TRACE, parent_span_id=STORED_SPAN),
        batch_id=BATCH_ID,
        policy=policy or ContentPolicy(),
        times=BatchTimes.from_batch(batch),
        resource=RESOURCE,
        now_ns=now_ns,
    )


def attrs_of(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def assert_exportable(*spans: ReadableSpan) -> None:
    """The spans survive OTLP encoding (no ``None`` attribute, valid ids) as the exporter will do it."""
    encoded = encode_spans(list(spans))
    assert sum(len(s.spans) for rs in encoded.resource_spans for s in rs.scope_spans) == len(spans)


# --- completion spans -------------------------------------------------------------------------


def test_ok_completion_span() -> None:
    """A successful result is a ``chat <model>`` CLIENT span with GenAI, Respan and batch identity attributes."""
    f = factory()
    span = f.completion(request("req-1"), result(output_line("req-1")))
    attrs = attrs_of(span)
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is not StatusCode.ERROR
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert attrs["gen_ai.usage.input_tokens"] == 21
    assert attrs["gen_ai.usage.output_tokens"] == 3
    assert attrs["llm.request.type"] == "chat"
    assert attrs["respan.entity.log_type"] == "chat"
    assert attrs["batchtrace.batch_id"] == BATCH_ID
    assert attrs["batchtrace.custom_id"] == "req-1"
    assert attrs["batchtrace.batch_request_id"] == "batch_req_6740abc"
    assert attrs["openai.request.id"] == "7b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e"
    assert attrs["http.response.status_code"] == 200
    assert "error.type" not in attrs
    assert "batchtrace.orphan_result" not in attrs
    assert "batchtrace.no_result" not in attrs
    assert_exportable(span)


def test_http_400_span_is_an_error_with_type_and_message() -> None:
    """A request OpenAI rejected is an ERROR span with ``error.type`` and OpenAI's message."""
    span = factory().completion(request("req-3"), result(http_error_line("req-3")))
    attrs = attrs_of(span)
    assert span.name == "chat gpt-4o-mini"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "Invalid 'max_tokens': integer below minimum value."
    assert attrs["error.type"] == "invalid_request_error"
    assert attrs["http.response.status_code"] == 400
    assert attrs["openai.request.id"] == "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    assert_exportable(span)


def test_expired_span_is_an_error() -> None:
    """A ``batch_expired`` request is an ERROR span with ``error.type = batch_expired`` and a description."""
    span = factory().completion(request("req-2"), result(expired_line("req-2")))
    attrs = attrs_of(span)
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description
    assert attrs["error.type"] == "batch_expired"
    assert attrs["batchtrace.batch_request_id"] == "batch_req_6740def"
    assert "http.response.status_code" not in attrs
    assert_exportable(span)


def test_request_without_result_is_an_error_span_flagged_no_result() -> None:
    """A request that got no result at all still gets a span: ERROR, flagged ``batchtrace.no_result``."""
    span = factory().completion(request("req-9"), None)
    attrs = attrs_of(span)
    assert span.name == "chat gpt-4o-mini"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description
    assert attrs["error.type"]
    assert attrs["batchtrace.no_result"] is True
    assert attrs["batchtrace.custom_id"] == "req-9"
    assert_exportable(span)


def test_result_without_request_is_an_orphan_span_named_after_the_response_model() -> None:
    """A result with no matching request is still a span, flagged ``batchtrace.orphan_result``."""
    span = factory().completion(None, result(output_line("ghost")))
    attrs = attrs_of(span)
    assert span.name == "chat gpt-4o-mini-2024-07-18"
    assert attrs["batchtrace.orphan_result"] is True
    assert attrs["batchtrace.custom_id"] == "ghost"
    assert attrs["gen_ai.usage.input_tokens"] == 21
    assert span.status.status_code is not StatusCode.ERROR
    assert_exportable(span)


def test_orphan_error_without_any_model_still_has_a_name() -> None:
    """An orphan expired result (no request, no body) gets the bare operation as its name."""
    span = factory().completion(None, result(expired_line("ghost")))
    assert span.name == "chat"
    assert attrs_of(span)["batchtrace.orphan_result"] is True
    assert span.status.status_code is StatusCode.ERROR


def test_embeddings_span_name() -> None:
    """Spans are named ``{operation} {model}`` for other endpoints too."""
    parsed, _ = parse_request(
        {"custom_id": "e", "url": "/v1/embeddings", "body": {"model": "text-embedding-3-small", "input": "hi"}}
    )
    body = {"model": "text-embedding-3-small", "data": [{"embedding": [0.1, 0.2, 0.3]}], "usage": {"prompt_tokens": 1}}
    span = factory().completion(parsed, result(output_line("e", body)))
    assert span.name == "embeddings text-embedding-3-small"
    assert attrs_of(span)["gen_ai.operation.name"] == "embeddings"


def test_completion_parent_and_deterministic_span_id() -> None:
    """Completions nest under the link's completion parent, in its trace, with ids stable across runs."""
    link = resolve_link(BATCH_ID, trace_id=TRACE, parent_span_id=STORED_SPAN)
    one = factory(link).completion(request("req-1"), result(output_line("req-1")))
    two = factory(link).completion(request("req-1"), result(output_line("req-1")))
    assert one.context is not None
    assert one.parent is not None
    assert one.context.trace_id == TRACE
    assert one.parent.trace_id == TRACE
    assert one.parent.span_id == link.completion_parent
    assert one.context.span_id == link.completion_span_id("req-1")
    assert two.context is not None
    assert one.context.span_id == two.context.span_id
    assert one.context.trace_flags.sampled


def test_duplicate_occurrences_get_distinct_span_ids() -> None:
    """The second result for a duplicated custom_id is a separate span (not overwriting the first)."""
    f = factory()
    first = f.completion(request("dup"), result(output_line("dup")))
    second = f.completion(request("dup"), result(output_line("dup")), occurrence=1)
    assert first.context is not None
    assert second.context is not None
    assert first.context.span_id != second.context.span_id


def test_active_mode_completions_nest_under_the_callers_span() -> None:
    """In ACTIVE mode the completions' parent is the caller's span itself."""
    link = resolve_link(BATCH_ID, active=(TRACE, STORED_SPAN))
    span = factory(link).completion(request(), result(output_line()))
    assert span.parent is not None
    assert span.parent.span_id == STORED_SPAN
    assert span.context is not None
    assert span.context.trace_id == TRACE


def test_content_capture_off_reaches_the_span() -> None:
    """With capture off, no prompt or answer text is anywhere in the span; tokens stay."""
    f = factory(policy=ContentPolicy(capture=False))
    span = f.completion(request(content="SECRET-PROMPT"), result(output_line(body=chat_response_body("SECRET-ANSWER"))))
    text = repr(attrs_of(span)) + span.name + str(span.status.description)
    assert "SECRET" not in text
    assert attrs_of(span)["gen_ai.usage.output_tokens"] == 3


# --- completion times -----------------------------------------------------------------------------


def test_time_is_the_response_created() -> None:
    """A completion's start and end are the response's ``created`` (epoch seconds, as ns)."""
    span = factory().completion(request(), result(output_line()))
    assert span.start_time == span.end_time == CREATED * NS


def test_created_in_the_future_is_clamped_to_now() -> None:
    """A clock-skewed ``created`` never puts a span in the future."""
    body = chat_response_body(created=CREATED + 10 * 86_400)
    span = factory().completion(request(), result(output_line(body=body)))
    assert span.start_time == span.end_time == NOW_NS


@pytest.mark.parametrize(
    ("batch", "expected_s"),
    [
        ({"created_at": BATCH_CREATED_AT, "completed_at": BATCH_COMPLETED_AT}, BATCH_COMPLETED_AT),
        (
            {"created_at": BATCH_CREATED_AT, "completed_at": None, "expired_at": BATCH_COMPLETED_AT + 5},
            BATCH_COMPLETED_AT + 5,
        ),
        ({"created_at": BATCH_CREATED_AT, "completed_at": BATCH_COMPLETED_AT, "expired_at": None}, BATCH_COMPLETED_AT),
    ],
)
def test_missing_created_falls_back_to_the_batch_end(batch: dict[str, Any], expected_s: int) -> None:
    """Without ``created`` (expired, no result, embeddings) the batch's completion/expiry time is used."""
    f = factory(batch=batch)
    for span in (
        f.completion(request("a"), result(expired_line("a"))),
        f.completion(request("b"), None),
        f.completion(request("c"), result(output_line("c", chat_response_body(created=None)))),
    ):
        assert span.start_time == span.end_time == expected_s * NS


def test_missing_created_and_no_batch_times_fall_back_to_now() -> None:
    """Without ``created`` and without a batch object, the span is stamped with the time of processing."""
    span = factory().completion(request(), result(expired_line()))
    assert span.start_time == span.end_time == NOW_NS


@pytest.mark.parametrize("created", ["1732000000", True, -5, 0, None, [1]])
def test_unusable_created_values_fall_back(created: object) -> None:
    """A ``created`` that is not a positive number is ignored, not trusted (and never raises)."""
    span = factory().completion(request(), result(output_line(body=chat_response_body(created=created))))  # type: ignore[arg-type]
    assert span.start_time == span.end_time == NOW_NS


def test_batch_end_in_the_future_is_clamped_too() -> None:
    """A batch timestamp in the future does not put fallback spans in the future."""
    f = factory(batch={"created_at": BATCH_CREATED_AT, "completed_at": (NOW_NS // NS) + 3600})
    span = f.completion(request(), None)
    assert span.start_time is not None
    assert span.start_time <= NOW_NS


def test_responses_api_uses_created_at() -> None:
    """``/v1/responses`` bodies carry ``created_at``; it is the span's time."""
    parsed, _ = parse_request({"custom_id": "r", "url": "/v1/responses", "body": {"model": "gpt-4.1", "input": "hi"}})
    body = {"id": "resp_1", "created_at": CREATED + 7, "model": "gpt-4.1", "output": []}
    span = factory().completion(parsed, result(output_line("r", body)))
    assert span.start_time == CREATED * NS + 7 * NS


# --- the batch_results span ---------------------------------------------------------------------


COUNTS = {
    "requests": 3,
    "results": 2,
    "errors": 1,
    "expired": 1,
    "no_result": 1,
    "input_tokens": 21,
    "output_tokens": 3,
}


def test_batch_span_attributes_and_remote_parent() -> None:
    """batch_results is a task span under the stored span (a remote parent), carrying the batch's counts."""
    f = factory(batch={"created_at": BATCH_CREATED_AT, "completed_at": BATCH_COMPLETED_AT})
    completion = f.completion(request(), result(output_line()))
    span = f.batch_span(COUNTS)
    assert span is not None
    attrs = attrs_of(span)
    assert span.name == "batch_results"
    assert attrs["traceloop.span.kind"] == "task"
    assert attrs["traceloop.entity.name"] == "batch_results"
    assert attrs["respan.entity.log_type"] == "task"
    assert attrs["batchtrace.batch_id"] == BATCH_ID
    for key, value in COUNTS.items():
        assert value in (attrs.get(key), attrs.get(f"batchtrace.{key}")), key
    assert span.context is not None
    assert span.parent is not None
    assert span.context.trace_id == TRACE
    assert span.parent.span_id == STORED_SPAN
    assert span.parent.is_remote
    assert completion.parent is not None
    assert completion.parent.span_id == span.context.span_id
    assert_exportable(span, completion)


def test_batch_span_without_stored_span_is_a_root() -> None:
    """With only a trace id (or a new trace), batch_results has no parent."""
    for link in (resolve_link(BATCH_ID, trace_id=TRACE), resolve_link(BATCH_ID)):
        span = factory(link).batch_span(COUNTS)
        assert span is not None
        assert span.parent is None
        assert span.context is not None
        assert span.context.span_id == link.batch_span_id


def test_batch_span_is_none_in_active_mode() -> None:
    """Under a caller's live span, completions nest there and no batch_results span is made."""
    assert factory(resolve_link(BATCH_ID, active=(TRACE, STORED_SPAN))).batch_span(COUNTS) is None


def test_batch_span_covers_the_batch_lifecycle_when_known() -> None:
    """With the batch object, batch_results runs from its ``created_at`` to its ``completed_at``."""
    f = factory(
        batch={
            "created_at": BATCH_CREATED_AT,
            "in_progress_at": BATCH_CREATED_AT + 5,
            "completed_at": BATCH_COMPLETED_AT,
        }
    )
    f.completion(request(), result(output_line()))
    span = f.batch_span(COUNTS)
    assert span is not None
    assert span.start_time == BATCH_CREATED_AT * NS
    assert span.end_time == BATCH_COMPLETED_AT * NS


def test_batch_span_without_batch_object_spans_earliest_to_latest_completion() -> None:
    """Without the batch object, batch_results runs from the earliest to the latest completion."""
    f = factory()
    for offset, custom_id in ((50, "b"), (0, "a"), (120, "c")):
        f.completion(request(custom_id), result(output_line(custom_id, chat_response_body(created=CREATED + offset))))
    span = f.batch_span(COUNTS)
    assert span is not None
    assert span.start_time == CREATED * NS
    assert span.end_time == (CREATED + 120) * NS


def test_batch_span_contains_every_completion() -> None:
    """Completions outside the batch's recorded lifecycle still lie within batch_results."""
    f = factory(batch={"created_at": CREATED + 10, "completed_at": CREATED + 20})
    f.completion(request("a"), result(output_line("a", chat_response_body(created=CREATED))))
    f.completion(request("b"), result(output_line("b", chat_response_body(created=CREATED + 30))))
    span = f.batch_span(COUNTS)
    assert span is not None
    assert span.start_time == CREATED * NS
    assert span.end_time == (CREATED + 30) * NS


def test_batch_span_never_ends_before_it_starts_or_in_the_future() -> None:
    """Odd batch timestamps (end before start, in the future) still give a sane span."""
    cases: list[dict[str, Any] | None] = [
        None,
        {"created_at": BATCH_COMPLETED_AT, "completed_at": BATCH_CREATED_AT},
        {"created_at": BATCH_CREATED_AT, "completed_at": NOW_NS // NS + 3600},
        {"created_at": NOW_NS // NS + 3600},
        {"created_at": None, "completed_at": None},
    ]
    for batch in cases:
        span = factory(batch=batch).batch_span(COUNTS)
        assert span is not None
        assert span.start_time is not None
        assert span.end_time is not None
        assert span.start_time <= span.end_time <= NOW_NS, batch


def test_batch_times_from_openai_batch_object() -> None:
    """The batch object's ``created_at`` starts the lifecycle; ``completed_at`` (else ``expired_at``...) ends it."""
    assert BatchTimes.from_batch(None) == BatchTimes()
    assert BatchTimes.from_batch({}) == BatchTimes()
    times = BatchTimes.from_batch({"created_at": 100, "completed_at": 200, "expired_at": 300})
    assert times == BatchTimes(100 * NS, 200 * NS)
    assert BatchTimes.from_batch({"created_at": 100, "completed_at": None, "expired_at": 300}).ended_ns == 300 * NS
