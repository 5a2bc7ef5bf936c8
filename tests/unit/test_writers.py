"""The attribute writers and the spans built from them: what a backend shows for each record.

Records come from the OpenAI fixtures through the adapter (or are edited copies of them), so
every assertion is about an attribute, a name, a status or a time on a span a user would see:
the GenAI conventions' names (``write/genai.py``), the Respan/Traceloop names
(``write/compat.py``, switchable), where the span came from (``write/identity.py``), and the
span itself (``write/spans.py``). The OTLP encoder is held equal to the stock one here too.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import json
from dataclasses import replace
from functools import cache
from typing import Any

import pytest
from batchtrace.content import DEFAULT_MAX_CONTENT_LENGTH, ContentPolicy
from batchtrace.extract.base import ExtractContext, keep
from batchtrace.extract.openai import ADAPTER
from batchtrace.lifecycle import BatchLifecycle, lifecycle_of
from batchtrace.record import Failure, Record, Usage
from batchtrace.send.encode import encode_request
from batchtrace.tally import Tally
from batchtrace.trace_link import TraceLink, resolve_link
from batchtrace.write.compat import write_compat
from batchtrace.write.genai import write_genai
from batchtrace.write.identity import write_identity
from batchtrace.write.spans import SpanFactory, WriterSet
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes, openai_attributes
from opentelemetry.trace import SpanKind, StatusCode

from tests.support.fixtures import FORMATS, OPENAI_ENDPOINTS, lines

FIXTURES = FORMATS / "openai"
NS = 1_000_000_000
CREATED = 1_787_004_716  # support-fr-0001's ``created``
NOW_NS = (CREATED + 86_400) * NS  # processing happens a day after the responses were made
BATCH_CREATED_AT = CREATED - 3_600
BATCH_COMPLETED_AT = CREATED + 600
TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
STORED_SPAN = 0x00F067AA0BA902B7
BATCH_ID = "batch_6740abcdef"
RESOURCE = Resource({"service.name": "batchtrace-unit-tests", "deployment.environment": "test"})
MARKER = "ZEBRAQUOKKA"
DEFAULT_WRITERS = WriterSet()


def extract_all(requests: list[dict[str, Any]], results: list[dict[str, Any]]) -> dict[str, Record]:
    """Each result with its request (by custom_id), as the span workers pair them."""
    by_id = {line["custom_id"]: line for line in requests}
    return {
        line["custom_id"]: ADAPTER.extract(line["custom_id"], by_id.get(line["custom_id"]), line, ExtractContext(keep))
        for line in results
    }


@cache
def _fixture(endpoint: str) -> dict[str, Record]:
    results = lines(FIXTURES / f"{endpoint}.results.jsonl")
    if (FIXTURES / f"{endpoint}.errors.jsonl").exists():
        results += lines(FIXTURES / f"{endpoint}.errors.jsonl")
    return extract_all(lines(FIXTURES / f"{endpoint}.requests.jsonl"), results)


def fixture_records(endpoint: str) -> list[Record]:
    """Copies of an endpoint's records (a test may edit its copy)."""
    return [replace(record) for record in _fixture(endpoint).values()]


def chat(custom_id: str = "support-fr-0001", **changes: Any) -> Record:
    return replace(_fixture("chat")[custom_id], **changes)


def factory(
    link: TraceLink | None = None,
    *,
    batch: dict[str, Any] | None = None,
    now_ns: int = NOW_NS,
    capture: bool = True,
    writers: WriterSet = DEFAULT_WRITERS,
    batch_id: str | None = BATCH_ID,
) -> SpanFactory:
    return SpanFactory(
        link or resolve_link(BATCH_ID, trace_id=TRACE, parent_span_id=STORED_SPAN),
        batch_id=batch_id,
        capture=capture,
        writers=writers,
        lifecycle=lifecycle_of(batch) or BatchLifecycle(),
        resource=RESOURCE,
        now_ns=now_ns,
    )


def attrs_of(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def json_attr(attrs: dict[str, Any], key: str) -> Any:
    value = attrs[key]
    assert isinstance(value, str)
    return json.loads(value)


def all_records() -> list[Record]:
    return [record for endpoint in OPENAI_ENDPOINTS for record in fixture_records(endpoint)]


# --------------------------------------------------------------------------- GenAI writer


def _semconv_names() -> tuple[frozenset[str], frozenset[str]]:
    """``(every GenAI/OpenAI attribute name, the deprecated ones)`` as the installed conventions say.

    Read from the docstrings of ``opentelemetry-semantic-conventions``: a name is deprecated when
    it is ``Replaced by`` another or ``Removed`` (not when it merely moved to the GenAI repo).
    """
    names: set[str] = set()
    deprecated: set[str] = set()
    for module in (gen_ai_attributes, openai_attributes):
        body = ast.parse(inspect.getsource(module)).body
        for node, doc in itertools.pairwise(body):
            if not (isinstance(node, ast.AnnAssign) and isinstance(node.value, ast.Constant)):
                continue
            names.add(str(node.value.value))
            text = doc.value.value if isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant) else ""
            first = str(text).strip().split("\n", 1)[0]
            if first.startswith("Deprecated:") and "Moved to" not in first:
                deprecated.add(str(node.value.value))
    return frozenset(names), frozenset(deprecated)


SEMCONV_NAMES, DEPRECATED_NAMES = _semconv_names()


def test_the_deprecated_list_is_read_from_the_conventions() -> None:
    """The oracle below knows ``gen_ai.system`` and the pre-1.0 token names are deprecated."""
    assert {"gen_ai.system", "gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens"} <= DEPRECATED_NAMES
    assert "gen_ai.provider.name" in SEMCONV_NAMES - DEPRECATED_NAMES


@pytest.mark.parametrize("capture", [True, False], ids=["capture", "no-capture"])
def test_genai_writer_writes_current_semconv_names_only(capture: bool) -> None:
    """Every key the GenAI writer writes is a current convention name (never ``gen_ai.system``)."""
    own_counts = {"batchtrace.request.message_count", "batchtrace.response.choice_count"}
    for record in all_records():
        attrs: dict[str, Any] = {}
        write_genai(record, attrs, capture)
        unknown = set(attrs) - SEMCONV_NAMES - {"error.type"} - own_counts
        assert unknown == set(), record.custom_id
        assert set(attrs) & DEPRECATED_NAMES == set(), record.custom_id


def test_spans_without_compat_carry_no_deprecated_key() -> None:
    """With the compatibility set off, no span has a deprecated key; with it on, only the token aliases."""
    off = factory(writers=WriterSet(compat=False))
    on = factory()
    for record in all_records():
        assert set(attrs_of(off.completion(record))) & DEPRECATED_NAMES == set()
        on_keys = set(attrs_of(on.completion(record))) & DEPRECATED_NAMES
        assert on_keys <= {"gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens"}
        for key in attrs_of(off.completion(record)):
            if key.startswith(("gen_ai.", "openai.")):
                assert key in SEMCONV_NAMES, key
    assert "gen_ai.system" not in attrs_of(on.completion(chat()))


def test_chat_span_genai_attributes() -> None:
    """A chat completion's span: operation, provider, models, id, parameters, reasons, tokens, content."""
    attrs = attrs_of(factory().completion(chat()))
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4.1-mini"
    assert attrs["gen_ai.response.model"] == "gpt-4.1-mini-2025-04-14"
    assert attrs["gen_ai.response.id"] == "chatcmpl-gAK1fOjSUROo1tIBEqjWtj5SJHqJi"
    assert attrs["gen_ai.request.max_tokens"] == 120
    assert attrs["gen_ai.request.temperature"] == 0.3
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["gen_ai.usage.input_tokens"] == 61
    assert attrs["gen_ai.usage.output_tokens"] == 31
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 0
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 0
    assert "gen_ai.usage.cache_creation.input_tokens" not in attrs
    assert attrs["openai.api.type"] == "chat_completions"
    assert attrs["openai.response.system_fingerprint"] == "fp_cbb6572fc6"
    assert attrs["openai.response.service_tier"] == "default"
    assert json_attr(attrs, "gen_ai.system_instructions")[0]["content"].startswith("Tu es l'assistant")
    assert json_attr(attrs, "gen_ai.input.messages")[0]["role"] == "user"
    (output,) = json_attr(attrs, "gen_ai.output.messages")
    assert output["role"] == "assistant"
    assert output["finish_reason"] == "stop"
    assert output["parts"][0]["content"].startswith("Je suis désolé")
    assert "error.type" not in attrs


def test_tool_call_span_shows_the_call_and_the_semconv_finish_reason() -> None:
    """A tool-calling reply: ``tool_call`` finish reason (not OpenAI's ``tool_calls``), arguments as JSON."""
    attrs = attrs_of(factory().completion(chat("ru-order-0003")))
    assert attrs["gen_ai.response.finish_reasons"] == ["tool_call"]
    (output,) = json_attr(attrs, "gen_ai.output.messages")
    assert output["parts"][0]["arguments"] == {"order_id": "RU-55120", "locale": "ru"}
    (tool,) = json_attr(attrs, "gen_ai.tool.definitions")
    assert tool["function"]["name"] == "get_order_status"
    assert attrs["batchtrace.request.tool_count"] == 1


def test_every_neutral_parameter_has_its_request_attribute() -> None:
    """The record's neutral parameter names become the conventions' ``gen_ai.request.*`` keys."""
    params: dict[str, Any] = {
        "max_tokens": 10,
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 40,
        "frequency_penalty": 0.1,
        "presence_penalty": -0.1,
        "seed": 7,
        "choice_count": 2,
        "stop_sequences": ["END"],
        "encoding_formats": ["float"],
        "not_a_known_parameter": 1,
    }
    attrs: dict[str, Any] = {}
    write_genai(Record("a", "openai", "chat", params=params, output_type="json"), attrs, True)
    assert {key: value for key, value in attrs.items() if key.startswith("gen_ai.request.")} == {
        "gen_ai.request.max_tokens": 10,
        "gen_ai.request.temperature": 0.5,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.top_k": 40,
        "gen_ai.request.frequency_penalty": 0.1,
        "gen_ai.request.presence_penalty": -0.1,
        "gen_ai.request.seed": 7,
        "gen_ai.request.choice.count": 2,
        "gen_ai.request.stop_sequences": ["END"],
        "gen_ai.request.encoding_formats": ["float"],
    }
    assert attrs["gen_ai.output.type"] == "json"


def test_usage_parts_are_written_when_reported() -> None:
    """Cache read, cache creation and reasoning tokens each have their convention name; unreported ones none."""
    usage = Usage(1200, 300, cache_read_tokens=1024, cache_creation_tokens=64, reasoning_tokens=256, total_tokens=1500)
    attrs: dict[str, Any] = {}
    write_genai(Record("a", "openai", "chat", usage=usage), attrs, True)
    assert attrs["gen_ai.usage.input_tokens"] == 1200
    assert attrs["gen_ai.usage.output_tokens"] == 300
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 1024
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == 64
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 256
    bare: dict[str, Any] = {}
    write_genai(Record("a", "openai", "chat"), bare, True)
    assert not [key for key in bare if key.startswith("gen_ai.usage.")]


def test_responses_span_has_reasoning_part_and_api_type() -> None:
    """A Responses API span shows its reasoning summary as a reasoning part, and ``openai.api.type``."""
    record = next(r for r in fixture_records("responses") if r.custom_id == "resp-reason-01")
    attrs = attrs_of(factory().completion(record))
    assert attrs["openai.api.type"] == "responses"
    parts = json_attr(attrs, "gen_ai.output.messages")[0]["parts"]
    assert [part["type"] for part in parts] == ["reasoning", "text"]
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 362


def test_embeddings_span_has_no_messages_and_no_vector() -> None:
    """An embeddings span reports vector size and tokens, never output messages or the vector."""
    record = next(r for r in fixture_records("embeddings") if r.custom_id == "emb-faq-002")
    attrs = attrs_of(factory().completion(record))
    assert attrs["gen_ai.embeddings.dimension.count"] == 8
    assert attrs["gen_ai.usage.input_tokens"] == 22
    assert attrs["gen_ai.request.encoding_formats"] == ["float"]
    assert "gen_ai.output.messages" not in attrs
    assert "gen_ai.input.messages" not in attrs
    assert "gen_ai.response.finish_reasons" not in attrs
    assert not any("0.4541551" in str(value) for value in attrs.values())


def test_moderation_span_has_the_verdict() -> None:
    record = next(r for r in fixture_records("moderations") if r.custom_id == "mod-review-02")
    attrs = attrs_of(factory().completion(record))
    assert attrs["batchtrace.moderation.flagged"] is True
    assert attrs["batchtrace.moderation.categories"] == ["harassment", "harassment/threatening", "violence"]


# --------------------------------------------------------------------------- capture off


def marked_lines() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """A request/result pair per endpoint with the marker in every text a user could have written."""
    call = {"id": "c", "function": {"name": "f", "arguments": json.dumps({"q": MARKER})}}
    chat_body = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": f"system {MARKER}"},
            {"role": "user", "content": [{"type": "text", "text": f"user {MARKER}"}]},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c", "content": f"tool {MARKER}"},
        ],
        "tools": [{"type": "function", "function": {"name": "f", "description": f"desc {MARKER}"}}],
    }
    reply = {"role": "assistant", "content": f"answer {MARKER}", "refusal": f"no {MARKER}"}
    chat_out = {"model": "m", "choices": [{"message": reply, "finish_reason": "stop"}], "usage": {"prompt_tokens": 5}}
    responses_out = {
        "model": "m",
        "output": [
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": f"think {MARKER}"}]},
            {"type": "message", "content": [{"type": "output_text", "text": f"out {MARKER}"}]},
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": json.dumps({"q": MARKER})},
            {"type": "web_search_call", "id": "ws", "action": {"query": MARKER}},
        ],
        "usage": {"input_tokens": 5, "output_tokens": 6},
    }
    pairs = [
        ("/v1/chat/completions", chat_body, chat_out),
        ("/v1/responses", {"model": "m", "input": f"in {MARKER}", "instructions": f"i {MARKER}"}, responses_out),
        (
            "/v1/completions",
            {"model": "m", "prompt": [f"p {MARKER}"]},
            {"model": "m", "choices": [{"text": f"t {MARKER}"}], "usage": {"prompt_tokens": 5}},
        ),
        ("/v1/embeddings", {"model": "m", "input": [f"e {MARKER}"]}, {"data": [{"embedding": [0.1]}], "usage": {}}),
        ("/v1/moderations", {"model": "m", "input": f"mod {MARKER}"}, {"results": [{"flagged": False}]}),
        (
            "/v1/images/generations",
            {"model": "m", "prompt": f"img {MARKER}"},
            {"data": [{"url": "https://x/1.png", "revised_prompt": f"r {MARKER}"}], "usage": {"input_tokens": 5}},
        ),
        ("/v1/videos", {"model": "m", "prompt": f"vid {MARKER}"}, {"id": "video_1", "status": "completed"}),
    ]
    return [
        (
            {"custom_id": "a", "url": url, "body": body},
            {"custom_id": "a", "response": {"status_code": 200, "body": out}, "error": None},
        )
        for url, body, out in pairs
    ]


@pytest.mark.parametrize(("request_line", "result_line"), marked_lines(), ids=lambda line: line.get("url", ""))
def test_capture_off_drops_every_text_and_keeps_counts_and_tokens(
    request_line: dict[str, Any], result_line: dict[str, Any]
) -> None:
    """With capture off no message text is on the span (any writer); model, counts and tokens remain."""
    record = ADAPTER.extract("a", request_line, result_line, ExtractContext(keep))
    on = attrs_of(factory().completion(record))
    assert any(MARKER in str(value) for value in on.values()), "the marker must be there when capture is on"
    span = factory(capture=False).completion(record)
    off = attrs_of(span)
    assert [key for key, value in off.items() if MARKER in str(value)] == []
    assert MARKER not in span.name
    for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.request.model"):
        assert off.get(key) == on.get(key)
    assert off["batchtrace.request.message_count"] == len(record.input_messages)
    assert off["batchtrace.response.choice_count"] == len(record.output_messages)
    for key in ("gen_ai.input.messages", "gen_ai.output.messages", "traceloop.entity.input"):
        assert key not in off


# --------------------------------------------------------------------------- compatibility writer


def test_compat_attributes_make_a_respan_chat_log() -> None:
    """Respan/Traceloop read the request type, log type, pre-1.0 token names and the raw input/output."""
    attrs = attrs_of(factory().completion(chat()))
    assert attrs["llm.request.type"] == "chat"
    assert attrs["respan.entity.log_type"] == "chat"
    assert attrs["traceloop.span.kind"] == "task"
    assert attrs["traceloop.entity.path"] == "batch_results"
    assert attrs["gen_ai.usage.prompt_tokens"] == 61
    assert attrs["gen_ai.usage.completion_tokens"] == 31
    assert attrs["llm.usage.total_tokens"] == 92
    assert json_attr(attrs, "traceloop.entity.input") == lines(FIXTURES / "chat.requests.jsonl")[0]["body"]["messages"]
    output = json_attr(attrs, "traceloop.entity.output")
    assert output["role"] == "assistant"
    assert output["content"].startswith("Je suis désolé")


@pytest.mark.parametrize(
    ("endpoint", "request_type"),
    [
        ("chat", "chat"),
        ("responses", "chat"),
        ("completions", "completion"),
        ("embeddings", "embedding"),
        ("moderations", "moderation"),
        ("images_generations", "generate_content"),
        ("videos", "generate_content"),
    ],
)
def test_compat_request_and_log_type_per_endpoint(endpoint: str, request_type: str) -> None:
    """Respan's names for the operations it knows (completion, embedding); others keep the operation's."""
    for record in fixture_records(endpoint):
        attrs: dict[str, Any] = {}
        write_compat(record, attrs, True)
        assert attrs["llm.request.type"] == request_type
        assert attrs["respan.entity.log_type"] == request_type


def test_compat_tool_call_output_is_the_providers_message() -> None:
    """The raw output Respan shows is OpenAI's own message, with the tool call in it."""
    attrs = attrs_of(factory().completion(chat("ru-order-0003")))
    assert json_attr(attrs, "traceloop.entity.output")["tool_calls"][0]["function"]["name"] == "get_order_status"


def test_compat_without_capture_keeps_tokens_and_drops_raw_content() -> None:
    attrs: dict[str, Any] = {}
    write_compat(chat(), attrs, False)
    assert attrs["gen_ai.usage.prompt_tokens"] == 61
    assert "traceloop.entity.input" not in attrs
    assert "traceloop.entity.output" not in attrs


COMPAT_KEYS = {
    "llm.request.type",
    "respan.entity.log_type",
    "traceloop.span.kind",
    "traceloop.entity.path",
    "traceloop.entity.input",
    "traceloop.entity.output",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.usage.total_tokens",
}


def test_compat_off_leaves_out_the_whole_set() -> None:
    """``WriterSet(compat=False)``: none of the compatibility names; the GenAI ones all stay."""
    on = attrs_of(factory().completion(chat()))
    off = attrs_of(factory(writers=WriterSet(compat=False)).completion(chat()))
    assert set(on) >= COMPAT_KEYS
    assert set(off) & COMPAT_KEYS == set()
    assert set(off) == set(on) - COMPAT_KEYS


@pytest.mark.parametrize(("value", "compat"), [("false", False), (" OFF ", False), ("0", False), ("no", False)])
def test_compat_switch_from_the_environment(value: str, compat: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """``BATCHTRACE_COMPAT_ATTRIBUTES=false`` (and the usual spellings) switches the set off, via the factory too."""
    assert WriterSet.from_env({"BATCHTRACE_COMPAT_ATTRIBUTES": value}).compat is compat
    monkeypatch.setenv("BATCHTRACE_COMPAT_ATTRIBUTES", value)
    attrs = attrs_of(factory(writers=WriterSet.from_env()).completion(chat()))
    assert set(attrs) & COMPAT_KEYS == set()
    assert attrs["gen_ai.usage.input_tokens"] == 61


@pytest.mark.parametrize("env", [{}, {"BATCHTRACE_COMPAT_ATTRIBUTES": ""}, {"BATCHTRACE_COMPAT_ATTRIBUTES": "true"}])
def test_compat_is_on_by_default(env: dict[str, str]) -> None:
    assert WriterSet.from_env(env).compat


# --------------------------------------------------------------------------- identity writer


def test_identity_attributes_say_where_the_span_came_from() -> None:
    """Batch id, custom_id, endpoint, the ``batch_req_…`` id, OpenAI's request id, HTTP status, time."""
    attrs = attrs_of(factory().completion(chat("ru-order-0003")))
    assert attrs["batchtrace.batch_id"] == BATCH_ID
    assert attrs["batchtrace.custom_id"] == "ru-order-0003"
    assert attrs["batchtrace.endpoint"] == "/v1/chat/completions"
    assert attrs["batchtrace.batch_request_id"] == "batch_req_f076075d0a7e91373fe76c10b228aec0"
    assert attrs["batchtrace.request_id"] == "27bf603d487c39e86ffefa545aad34c7"
    assert attrs["http.response.status_code"] == 200
    assert attrs["batchtrace.response.created"] == 1787005393
    for flag in ("batchtrace.no_result", "batchtrace.orphan_result", "batchtrace.duplicate_custom_id"):
        assert flag not in attrs


def test_identity_flags_odd_pairs() -> None:
    """No result, orphan and repeated-id records are flagged ``True``."""
    for changes, flag in (
        ({"no_result": True}, "batchtrace.no_result"),
        ({"orphan": True}, "batchtrace.orphan_result"),
        ({"occurrence": 2}, "batchtrace.duplicate_custom_id"),
    ):
        attrs: dict[str, Any] = {}
        write_identity(chat(**changes), attrs, BATCH_ID)
        assert attrs[flag] is True


def test_identity_leaves_out_what_is_unknown() -> None:
    """No batch id, no line id, no status: those keys are absent (never ``None`` or empty)."""
    attrs: dict[str, Any] = {}
    write_identity(Record("only-id", "openai", "chat"), attrs, None)
    assert attrs == {"batchtrace.custom_id": "only-id"}
    write_identity(Record("only-id", "openai", "chat"), attrs, "")
    assert "batchtrace.batch_id" not in attrs


def test_identity_copies_the_adapters_own_attributes() -> None:
    attrs: dict[str, Any] = {}
    write_identity(Record("a", "openai", "chat", extra={"openai.request.service_tier": "flex"}), attrs, None)
    assert attrs["openai.request.service_tier"] == "flex"


# --------------------------------------------------------------------------- completion spans


def test_ok_completion_span() -> None:
    """A successful result is a ``{operation} {model}`` CLIENT span, status unset."""
    span = factory().completion(chat())
    assert span.name == "chat gpt-4.1-mini"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert span.resource is RESOURCE
    assert span.instrumentation_scope is not None
    assert span.instrumentation_scope.name == "batchtrace"


@pytest.mark.parametrize(
    ("endpoint", "name"),
    [
        ("responses", "chat gpt-5-mini"),
        ("completions", "text_completion gpt-3.5-turbo-instruct"),
        ("embeddings", "embeddings text-embedding-3-small"),
        ("moderations", "moderation omni-moderation-latest"),
        ("images_generations", "generate_content gpt-image-1"),
        ("images_edits", "generate_content gpt-image-1"),
        ("videos", "generate_content sora-2"),
    ],
)
def test_span_name_per_endpoint(endpoint: str, name: str) -> None:
    for record in fixture_records(endpoint):
        assert factory().completion(record).name == name


def test_http_error_span_is_an_error_with_type_and_message() -> None:
    """A request OpenAI rejected is an ERROR span with ``error.type`` and OpenAI's message."""
    span = factory().completion(chat("too-long-0008"))
    attrs = attrs_of(span)
    assert span.name == "chat gpt-4.1-mini"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description is not None
    assert span.status.description.startswith("This model's maximum context length is 1047576 tokens.")
    assert attrs["error.type"] == "context_length_exceeded"
    assert attrs["http.response.status_code"] == 400
    assert attrs["batchtrace.request_id"] == "9b7228f08c55bcc3d6b12eca24630223"
    assert "gen_ai.usage.input_tokens" not in attrs


def test_expired_span_is_an_error() -> None:
    """A ``batch_expired`` request is an ERROR span with ``error.type = batch_expired`` and OpenAI's message."""
    span = factory().completion(chat("late-0011"))
    attrs = attrs_of(span)
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "This request could not be executed before the completion window expired."
    assert attrs["error.type"] == "batch_expired"
    assert attrs["batchtrace.batch_request_id"] == "batch_req_2e884f478b53f3cfff59265280d6c581"
    assert "http.response.status_code" not in attrs


def no_result_record(custom_id: str = "support-fr-0001") -> Record:
    request = next(line for line in lines(FIXTURES / "chat.requests.jsonl") if line["custom_id"] == custom_id)
    return ADAPTER.extract(custom_id, request, None, ExtractContext(keep))


def test_request_without_result_is_an_error_span_flagged_no_result() -> None:
    """A request that got no result still gets a span: ERROR, flagged ``batchtrace.no_result``."""
    span = factory().completion(no_result_record())
    attrs = attrs_of(span)
    assert span.name == "chat gpt-4.1-mini"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "the batch returned no result for this request"
    assert attrs["error.type"] == "no_result"
    assert attrs["batchtrace.no_result"] is True
    assert attrs["batchtrace.custom_id"] == "support-fr-0001"


def test_orphan_span_is_named_after_the_response_model() -> None:
    """A result with no request is still a span, flagged, with the response's model as request model."""
    result = next(line for line in lines(FIXTURES / "chat.results.jsonl") if line["custom_id"] == "support-fr-0001")
    span = factory().completion(ADAPTER.extract("support-fr-0001", None, result, ExtractContext(keep)))
    attrs = attrs_of(span)
    assert span.name == "chat gpt-4.1-mini-2025-04-14"
    assert attrs["gen_ai.request.model"] == "gpt-4.1-mini-2025-04-14"
    assert attrs["batchtrace.orphan_result"] is True
    assert attrs["gen_ai.usage.input_tokens"] == 61
    assert span.status.status_code is StatusCode.UNSET


def test_orphan_error_without_any_model_is_named_by_its_operation() -> None:
    """An orphan expired result (no request, no body) gets the bare operation as its name."""
    result = next(line for line in lines(FIXTURES / "chat.errors.jsonl") if line["custom_id"] == "late-0011")
    span = factory().completion(ADAPTER.extract("late-0011", None, result, ExtractContext(keep)))
    assert span.name == "chat"
    assert "gen_ai.request.model" not in attrs_of(span)
    assert span.status.status_code is StatusCode.ERROR


def test_a_failure_message_becomes_the_status_description() -> None:
    span = factory().completion(chat(failure=Failure("boom", "it broke")))
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "it broke"
    assert attrs_of(span)["error.type"] == "boom"


def test_completion_parent_and_deterministic_span_id() -> None:
    """Completions nest under the link's completion parent, in its trace, with ids stable across runs."""
    link = resolve_link(BATCH_ID, trace_id=TRACE, parent_span_id=STORED_SPAN)
    one = factory(link).completion(chat())
    two = factory(link).completion(chat())
    assert one.context is not None
    assert two.context is not None
    assert one.parent is not None
    assert one.context.trace_id == TRACE
    assert one.parent.trace_id == TRACE
    assert one.parent.span_id == link.completion_parent
    assert one.context.span_id == link.completion_span_id("support-fr-0001")
    assert one.context.span_id == two.context.span_id
    assert one.context.trace_flags.sampled
    other = factory(link).completion(chat("ja-summary-0002"))
    assert other.context is not None
    assert other.context.span_id != one.context.span_id


def test_duplicate_occurrences_get_distinct_span_ids() -> None:
    """The second result for a duplicated custom_id is a separate span (not overwriting the first)."""
    first = factory().completion(chat())
    second = factory().completion(chat(occurrence=1))
    assert first.context is not None
    assert second.context is not None
    assert first.context.span_id != second.context.span_id
    assert attrs_of(second)["batchtrace.duplicate_custom_id"] is True


def test_active_mode_completions_nest_under_the_callers_span() -> None:
    """In ACTIVE mode the completions' parent is the caller's span itself."""
    span = factory(resolve_link(BATCH_ID, active=(TRACE, STORED_SPAN))).completion(chat())
    assert span.parent is not None
    assert span.parent.span_id == STORED_SPAN
    assert span.context is not None
    assert span.context.trace_id == TRACE


def test_content_capture_off_reaches_the_span() -> None:
    """With capture off, no prompt or answer text is anywhere in the span; tokens stay."""
    span = factory(capture=False).completion(chat())
    text = repr(attrs_of(span)) + span.name + str(span.status.description)
    assert "Besançon" not in text
    assert "Je suis désolé" not in text
    assert "Boulangerie" not in text
    assert attrs_of(span)["gen_ai.usage.output_tokens"] == 31


# --------------------------------------------------------------------------- completion times


def test_time_is_the_response_created() -> None:
    """A completion's start and end are the response's ``created`` (epoch seconds, as ns)."""
    span = factory().completion(chat())
    assert span.start_time == span.end_time == CREATED * NS


def test_responses_api_uses_created_at() -> None:
    """Responses bodies carry ``created_at``; it is the span's time."""
    record = next(r for r in fixture_records("responses") if r.custom_id == "resp-reason-01")
    span = factory().completion(record)
    assert span.start_time == span.end_time == 1_787_004_012 * NS


def test_created_in_the_future_is_clamped_to_now() -> None:
    """A clock-skewed ``created`` never puts a span in the future."""
    span = factory().completion(chat(created_s=CREATED + 10 * 86_400))
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
        ({"created_at": BATCH_CREATED_AT}, BATCH_CREATED_AT),
    ],
)
def test_missing_created_falls_back_to_the_batch_end(batch: dict[str, Any], expected_s: int) -> None:
    """Without ``created`` (expired, no result, embeddings) the batch's completion/expiry time is used."""
    f = factory(batch=batch)
    embedding = next(r for r in fixture_records("embeddings") if r.custom_id == "emb-faq-001")
    for record in (chat("late-0011"), no_result_record(), chat(created_s=None), embedding):
        span = f.completion(record)
        assert span.start_time == span.end_time == expected_s * NS, record.custom_id


def test_missing_created_and_no_batch_times_fall_back_to_now() -> None:
    """Without ``created`` and without a batch object, the span is stamped with the time of processing."""
    span = factory().completion(chat("late-0011"))
    assert span.start_time == span.end_time == NOW_NS


@pytest.mark.parametrize("created", ["1732000000", True, -5, 0, None, [1]])
def test_unusable_created_values_fall_back(created: object) -> None:
    """A ``created`` that is not a positive number is ignored, not trusted (and never raises)."""
    requests = lines(FIXTURES / "chat.requests.jsonl")
    result = next(line for line in lines(FIXTURES / "chat.results.jsonl") if line["custom_id"] == "support-fr-0001")
    result["response"]["body"]["created"] = created
    record = extract_all(requests, [result])["support-fr-0001"]
    span = factory().completion(record)
    assert span.start_time == span.end_time == NOW_NS


def test_batch_end_in_the_future_is_clamped_too() -> None:
    """A batch timestamp in the future does not put fallback spans in the future."""
    f = factory(batch={"created_at": BATCH_CREATED_AT, "completed_at": NOW_NS // NS + 3600})
    span = f.completion(no_result_record())
    assert span.start_time == NOW_NS


# --------------------------------------------------------------------------- the batch_results span


COUNTS = {
    "requests": 3,
    "results": 2,
    "errors": 1,
    "expired": 1,
    "no_result": 1,
    "input_tokens": 21,
    "output_tokens": 3,
}


def window_of(f: SpanFactory, records: list[Record]) -> tuple[int, int]:
    """The batch span's window after these completions, counted as the span workers count them."""
    tally = Tally()
    for record in records:
        tally.count_record(record, f.completion(record).start_time or 0)
    return f.batch_window(tally.earliest_ns, tally.latest_ns)


def test_batch_span_attributes_and_remote_parent() -> None:
    """batch_results is a task span under the stored span (a remote parent), carrying the batch's counts."""
    f = factory(batch={"created_at": BATCH_CREATED_AT, "completed_at": BATCH_COMPLETED_AT})
    completion = f.completion(chat())
    span = f.batch_span(COUNTS, window_of(f, [chat()]))
    assert span is not None
    attrs = attrs_of(span)
    assert span.name == "batch_results"
    assert span.kind is SpanKind.INTERNAL
    assert span.status.status_code is StatusCode.UNSET
    assert attrs["traceloop.span.kind"] == "task"
    assert attrs["traceloop.entity.name"] == "batch_results"
    assert attrs["respan.entity.log_type"] == "task"
    assert attrs["openinference.span.kind"] == "CHAIN"
    assert attrs["batchtrace.trace_link"] == "explicit"
    assert attrs["batchtrace.batch_id"] == BATCH_ID
    for key, value in COUNTS.items():
        assert attrs[f"batchtrace.{key}"] == value, key
    assert span.context is not None
    assert span.parent is not None
    assert span.context.trace_id == TRACE
    assert span.parent.span_id == STORED_SPAN
    assert span.parent.is_remote
    assert completion.parent is not None
    assert completion.parent.span_id == span.context.span_id


def test_batch_span_carries_an_error() -> None:
    span = factory().batch_span(COUNTS, (NOW_NS, NOW_NS), error="3 of 10 spans not delivered")
    assert span is not None
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "3 of 10 spans not delivered"


def test_batch_span_without_stored_span_is_a_root() -> None:
    """With only a trace id (or a new trace), batch_results has no parent."""
    for link in (resolve_link(BATCH_ID, trace_id=TRACE), resolve_link(BATCH_ID)):
        span = factory(link).batch_span(COUNTS, (NOW_NS, NOW_NS))
        assert span is not None
        assert span.parent is None
        assert span.context is not None
        assert span.context.span_id == link.batch_span_id


def test_batch_span_is_none_in_active_mode() -> None:
    """Under a caller's live span, completions nest there and no batch_results span is made."""
    f = factory(resolve_link(BATCH_ID, active=(TRACE, STORED_SPAN)))
    assert f.batch_span(COUNTS, (NOW_NS, NOW_NS)) is None


def test_batch_span_covers_the_batch_lifecycle_when_known() -> None:
    """With the batch object, batch_results runs from its ``created_at`` to its ``completed_at``."""
    batch = {"created_at": BATCH_CREATED_AT, "in_progress_at": BATCH_CREATED_AT + 5, "completed_at": BATCH_COMPLETED_AT}
    f = factory(batch=batch)
    span = f.batch_span(COUNTS, window_of(f, [chat()]))
    assert span is not None
    assert span.start_time == BATCH_CREATED_AT * NS
    assert span.end_time == BATCH_COMPLETED_AT * NS


def test_batch_span_without_batch_object_spans_earliest_to_latest_completion() -> None:
    """Without the batch object, batch_results runs from the earliest to the latest completion."""
    f = factory()
    records = [
        replace(chat(), custom_id=name, created_s=CREATED + offset)
        for offset, name in ((50, "b"), (0, "a"), (120, "c"))
    ]
    assert window_of(f, records) == (CREATED * NS, (CREATED + 120) * NS)


def test_batch_span_contains_every_completion() -> None:
    """Completions outside the batch's recorded lifecycle still lie within batch_results."""
    f = factory(batch={"created_at": CREATED + 10, "completed_at": CREATED + 20})
    records = [
        replace(chat(), custom_id="a", created_s=CREATED),
        replace(chat(), custom_id="b", created_s=CREATED + 30),
    ]
    assert window_of(f, records) == (CREATED * NS, (CREATED + 30) * NS)


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
        f = factory(batch=batch)
        for records in ([], [chat()]):
            span = f.batch_span(COUNTS, window_of(f, records))
            assert span is not None
            assert span.start_time is not None
            assert span.end_time is not None
            assert span.start_time <= span.end_time <= NOW_NS, batch


def test_batch_times_from_the_batch_object() -> None:
    """The batch's ``created_at`` starts the lifecycle; its final state's timestamp ends it.

    (Every provider's shape is covered in ``test_lifecycle.py``.)
    """
    lifecycle = lifecycle_of({"created_at": 100, "completed_at": None, "expired_at": 300})
    assert lifecycle is not None
    assert (lifecycle.created_ns, lifecycle.ended_ns) == (100 * NS, 300 * NS)
    odd = lifecycle_of({"created_at": "2026-08-17T10:00:00Z", "completed_at": True})
    assert odd is not None
    assert odd.ended_ns is None


# --------------------------------------------------------------------------- the OTLP encoder oracle


def every_span(capture: bool, writers: WriterSet) -> list[ReadableSpan]:
    """Spans of every fixture endpoint, every odd pair, and the batch span, from one factory."""
    f = factory(capture=capture, writers=writers, batch={"created_at": BATCH_CREATED_AT})
    records = all_records()
    orphan_line = next(line for line in lines(FIXTURES / "chat.results.jsonl") if line["custom_id"] == "ru-order-0003")
    records += [
        no_result_record("story-cut-0006"),
        ADAPTER.extract("ghost", None, {**orphan_line, "custom_id": "ghost"}, ExtractContext(keep)),
        chat(occurrence=1),
    ]
    spans = [f.completion(record) for record in records]
    batch = f.batch_span({**COUNTS, "trace_link_warning": "a warning"}, window_of(f, records))
    assert batch is not None
    return [*spans, batch]


def has_empty_list(span: ReadableSpan) -> bool:
    return any(isinstance(value, list | tuple) and not value for value in (span.attributes or {}).values())


def assert_encoded_alike(spans: list[ReadableSpan]) -> None:
    ours = ExportTraceServiceRequest.FromString(encode_request(spans))
    stock = encode_spans(spans)
    assert sum(len(s.spans) for rs in ours.resource_spans for s in rs.scope_spans) == len(spans)
    assert ours == stock


@pytest.mark.parametrize(
    ("capture", "writers"),
    [(True, WriterSet()), (False, WriterSet()), (True, WriterSet(compat=False))],
    ids=["capture", "no-capture", "no-compat"],
)
def test_encoder_equals_the_stock_encoder(capture: bool, writers: WriterSet) -> None:
    """batchtrace's fast OTLP encoder gives the same request as the SDK's, for every span it builds."""
    assert_encoded_alike(every_span(capture, writers))


def test_encoder_sends_an_empty_list_as_an_empty_array() -> None:
    """A moderation that flagged nothing has ``batchtrace.moderation.categories = []``; a backend must see ``[]``."""
    spans = [span for span in every_span(True, WriterSet()) if has_empty_list(span)]
    assert [span.name for span in spans] == ["moderation omni-moderation-latest"] * 2
    assert_encoded_alike(spans)


# --------------------------------------------------------------------------- content policy


def test_content_policy_defaults_to_capture_with_default_limit() -> None:
    """Without settings, content is captured and long text is cut at the default limit."""
    assert ContentPolicy.from_env({}) == ContentPolicy(capture=True, max_length=DEFAULT_MAX_CONTENT_LENGTH)


@pytest.mark.parametrize("value", ["false", "False", "0", "no", "off", " FALSE "])
def test_batchtrace_capture_content_switch_off(value: str) -> None:
    """``BATCHTRACE_CAPTURE_CONTENT=false`` (and the usual spellings) switches capture off."""
    assert not ContentPolicy.from_env({"BATCHTRACE_CAPTURE_CONTENT": value}).capture


def test_otel_genai_capture_switch_off() -> None:
    """OpenTelemetry's own GenAI switch, set to false, switches capture off too."""
    assert not ContentPolicy.from_env({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false"}).capture


def test_batchtrace_switch_wins_over_otel_switch() -> None:
    """``BATCHTRACE_CAPTURE_CONTENT`` is the more specific setting and wins."""
    env = {"BATCHTRACE_CAPTURE_CONTENT": "true", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "false"}
    assert ContentPolicy.from_env(env).capture
    env = {"BATCHTRACE_CAPTURE_CONTENT": "false", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}
    assert not ContentPolicy.from_env(env).capture


@pytest.mark.parametrize("mode", ["NO_CONTENT", "EVENT_ONLY"])
def test_otel_genai_modes_without_span_content_switch_capture_off(mode: str) -> None:
    """The OTel GenAI utilities' modes that keep content off spans switch capture off."""
    assert not ContentPolicy.from_env({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": mode}).capture


def test_max_content_length_from_env() -> None:
    """``BATCHTRACE_MAX_CONTENT_LENGTH`` sets the truncation limit; junk falls back to the default."""
    assert ContentPolicy.from_env({"BATCHTRACE_MAX_CONTENT_LENGTH": "500"}).max_length == 500
    assert ContentPolicy.from_env({"BATCHTRACE_MAX_CONTENT_LENGTH": " 2000 "}).max_length == 2000
    for junk in ("", "abc", "0", "-5", "1e3"):
        assert ContentPolicy.from_env({"BATCHTRACE_MAX_CONTENT_LENGTH": junk}).max_length == DEFAULT_MAX_CONTENT_LENGTH


def test_short_lines_skip_truncation_long_lines_do_not() -> None:
    """A line no longer than the limit cannot hold a longer text, so it is not walked; a longer one is cut."""
    policy = ContentPolicy(max_length=10)
    assert policy.for_line(10).cutter() is keep
    assert policy.for_line(11).cutter()("x" * 11) == "x" * 10 + "…[truncated 1 chars]"
