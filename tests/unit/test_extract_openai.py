"""The OpenAI adapter: every Batch API endpoint, from the documented fixtures and the odd lines.

Each fixture pair (``tests/fixtures/formats/openai``) is run through ``extract`` the way the span
workers do (one line parsed with json, the request found by ``custom_id``), and the record is
checked for what a user then sees on the span: models, messages in the GenAI shapes, tool calls
with parsed arguments, reasoning, finish reasons, usage with its documented meaning, failures.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import pytest
from batchtrace.content import ContentPolicy
from batchtrace.extract.base import ExtractContext, keep
from batchtrace.extract.openai import ADAPTER
from batchtrace.record import Record, Usage
from batchtrace.trace_link import resolve_link
from batchtrace.write.spans import SpanFactory
from opentelemetry.sdk.resources import Resource

from tests.support.fixtures import FORMATS, OPENAI_ENDPOINTS, lines

FIXTURES = FORMATS / "openai"
CTX = ExtractContext(cut=keep)
MARKER = "ZEBRAQUOKKA"


def fixture_records(endpoint: str, ctx: ExtractContext = CTX) -> dict[str, Record]:
    """Every pair of one endpoint's fixture files, by custom_id (results, then the error file)."""
    requests: dict[str | None, dict[str, Any]] = {
        ADAPTER.request_id(line): line for line in lines(FIXTURES / f"{endpoint}.requests.jsonl")
    }
    records: dict[str, Record] = {}
    for name in (f"{endpoint}.results.jsonl", f"{endpoint}.errors.jsonl"):
        if not (FIXTURES / name).exists():
            continue
        for line_no, line in enumerate(lines(FIXTURES / name), start=1):
            custom_id = ADAPTER.result_id(line, line_no)
            assert custom_id is not None, (name, line_no)
            records[custom_id] = ADAPTER.extract(custom_id, requests.pop(custom_id), line, ctx)
    assert not requests, f"requests without a result line: {sorted(map(str, requests))}"
    return records


def texts(messages: list[dict[str, Any]], kind: str = "text") -> list[str]:
    return [part["content"] for message in messages for part in message["parts"] if part.get("type") == kind]


def tool_calls(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [part for message in messages for part in message["parts"] if part.get("type") == "tool_call"]


# --------------------------------------------------------------------------- synthetic lines


def request_line(custom_id: str = "req-1", url: str | None = "/v1/chat/completions", **body: Any) -> dict[str, Any]:
    line: dict[str, Any] = {"custom_id": custom_id, "method": "POST", "body": body}
    if url is not None:
        line["url"] = url
    return line


def chat_request(custom_id: str = "req-1", content: str = "Say hello", **body: Any) -> dict[str, Any]:
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": content}]
    return request_line(custom_id, **{"model": "gpt-4o-mini", "messages": messages, "max_tokens": 64, **body})


def chat_body(content: Any = "Hello!", finish: Any = "stop", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-AbC123",
        "object": "chat.completion",
        "created": 1_732_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content, "refusal": None}, "finish_reason": finish}
        ],
        "usage": {"prompt_tokens": 21, "completion_tokens": 3, "total_tokens": 24},
    }
    body.update(extra)
    return body


def result_line(custom_id: str = "req-1", body: Any = None, status: Any = 200) -> dict[str, Any]:
    return {
        "id": "batch_req_6740abc",
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": "7b0c1d2e", "body": chat_body() if body is None else body},
        "error": None,
    }


def pair(request: dict[str, Any] | None, result: dict[str, Any] | None, ctx: ExtractContext = CTX) -> Record:
    source = request or result
    assert source is not None
    return ADAPTER.extract(str(source["custom_id"]), request, result, ctx)


# --------------------------------------------------------------------------- line shapes


def test_request_and_result_ids_are_the_custom_id() -> None:
    """Input and output lines are paired by ``custom_id``; detection needs the endpoint or the response."""
    assert ADAPTER.request_id(chat_request("req-42")) == "req-42"
    assert ADAPTER.result_id(result_line("req-42"), 1) == "req-42"
    assert ADAPTER.is_request(chat_request())
    assert not ADAPTER.is_request({"custom_id": "a", "body": {}})
    assert ADAPTER.is_result(result_line())


@pytest.mark.parametrize(
    "line",
    [
        {"method": "POST", "url": "/v1/chat/completions", "body": {}},
        {"custom_id": None, "body": {}},
        {"custom_id": 17, "body": {}},
        {"custom_id": ["a"], "body": {}},
        {"custom_id": "", "body": {}},
        {"custom_id": "a"},
        {"custom_id": "a", "body": None},
        {"custom_id": "a", "body": "not an object"},
        {"custom_id": "a", "body": [1, 2]},
    ],
)
def test_wrong_shaped_input_lines_have_no_id(line: dict[str, Any]) -> None:
    """A wrong-shaped input line is not a request (it is counted as malformed), and never raises."""
    assert ADAPTER.request_id(line) is None


@pytest.mark.parametrize(
    "line",
    [
        {"id": "batch_req_1", "response": None, "error": None},
        {"custom_id": None, "response": None},
        {"custom_id": 7, "response": {"status_code": 200, "body": {}}},
        {"custom_id": "", "response": None},
        {"custom_id": "a", "response": [200, {}]},
        {"custom_id": "a", "response": "ok"},
        {"custom_id": "a", "response": 200},
        {"custom_id": "a"},
        {"custom_id": "a", "result": {"type": "succeeded", "message": {}}},
    ],
)
def test_wrong_shaped_result_lines_have_no_id(line: dict[str, Any]) -> None:
    """Result lines with a non-string id, a non-object response, or another provider's shape are not results."""
    assert ADAPTER.result_id(line, 3) is None


def test_request_without_url_is_a_chat_completion() -> None:
    """A line missing ``url`` (or with ``null``) is still usable, as a chat completion."""
    for line in (request_line("a", None, model="m"), {"custom_id": "a", "url": None, "body": {"model": "m"}}):
        record = pair(line, result_line("a"))
        assert record.operation == "chat"
        assert record.endpoint == "/v1/chat/completions"


@pytest.mark.parametrize(
    ("url", "operation"),
    [
        ("/v1/chat/completions", "chat"),
        ("/v1/chat/completions/", "chat"),
        ("/chat/completions", "chat"),
        ("/v1/chat/completions?api-version=2025-04-01", "chat"),
        ("/v1/responses", "chat"),
        ("/v1/completions", "text_completion"),
        ("/v1/embeddings", "embeddings"),
        ("/v1/moderations", "moderation"),
        ("/v1/images/generations", "generate_content"),
        ("/v1/images/edits", "generate_content"),
        ("/v1/videos", "generate_content"),
        ("/v1/audio/speech", "speech"),
    ],
)
def test_operation_per_endpoint(url: str, operation: str) -> None:
    """The span's operation (and so its name) follows the GenAI conventions' values for each endpoint."""
    assert pair(request_line("a", url, model="m"), None).operation == operation


# --------------------------------------------------------------------------- every fixture


@pytest.mark.parametrize("endpoint", OPENAI_ENDPOINTS)
def test_every_fixture_line_becomes_a_record_with_its_ids(endpoint: str) -> None:
    """Each line of each endpoint pairs with its request and keeps the batch's ids, status and model."""
    urls = {line["custom_id"]: line["url"] for line in lines(FIXTURES / f"{endpoint}.requests.jsonl")}
    bodies = {line["custom_id"]: line["body"] for line in lines(FIXTURES / f"{endpoint}.requests.jsonl")}
    for custom_id, record in fixture_records(endpoint).items():
        assert record.custom_id == custom_id
        assert record.provider == "openai"
        assert record.endpoint == urls[custom_id]
        assert record.request_model == bodies[custom_id]["model"]
        assert record.line_id is not None
        assert record.line_id.startswith("batch_req_")
        assert not record.orphan
        assert not record.no_result
        if record.failure is None or not record.failure.expired:
            assert isinstance(record.http_status, int)
            assert record.request_id


@pytest.mark.parametrize("endpoint", OPENAI_ENDPOINTS)
def test_fixture_usage_has_the_documented_meaning(endpoint: str) -> None:
    """Tokens are OpenAI's own (the reference meaning): input includes cached, output includes reasoning."""
    results = {line["custom_id"]: line for line in lines(FIXTURES / f"{endpoint}.results.jsonl")}
    for custom_id, record in fixture_records(endpoint).items():
        if custom_id not in results:
            continue
        usage = results[custom_id]["response"]["body"].get("usage") or {}
        assert record.usage.input_tokens == usage.get("prompt_tokens", usage.get("input_tokens"))
        assert record.usage.output_tokens == usage.get("completion_tokens", usage.get("output_tokens"))
        assert record.usage.total_tokens == usage.get("total_tokens")
        details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
        assert record.usage.cache_read_tokens == details.get("cached_tokens")
        assert record.usage.cache_creation_tokens is None


# --------------------------------------------------------------------------- chat completions


def test_chat_fixture_french_answer_with_system_prompt_and_parameters() -> None:
    """A plain chat: system prompt apart, user and assistant text, parameters, ids and OpenAI's extras."""
    record = fixture_records("chat")["support-fr-0001"]
    assert record.operation == "chat"
    assert record.request_model == "gpt-4.1-mini"
    assert record.response_model == "gpt-4.1-mini-2025-04-14"
    assert record.response_id == "chatcmpl-gAK1fOjSUROo1tIBEqjWtj5SJHqJi"
    assert record.system_instructions == [
        {
            "type": "text",
            "content": "Tu es l'assistant du service client de Boulangerie Élise. "
            "Réponds en français, en deux phrases au plus.",
        }
    ]
    assert record.input_messages == [
        {
            "role": "user",
            "parts": [
                {
                    "type": "text",
                    "content": "Bonjour, ma commande de galettes des rois n'est pas arrivée à Besançon. Que faire ?",
                }
            ],
        }
    ]
    assert texts(record.output_messages)[0].startswith("Je suis désolé pour ce retard !")
    assert record.output_messages[0]["role"] == "assistant"
    assert record.finish_reasons == ["stop"]
    assert record.params == {"max_tokens": 120, "temperature": 0.3}
    assert record.usage == Usage(61, 31, cache_read_tokens=0, reasoning_tokens=0, total_tokens=92)
    assert record.created_s == 1787004716.0
    assert record.http_status == 200
    assert record.line_id == "batch_req_6e30fb58090f7baf6762e7d82d5d4399"
    assert record.request_id == "dc2bc9623cd5c4c09197913098401efe"
    assert record.extra == {
        "openai.api.type": "chat_completions",
        "openai.response.system_fingerprint": "fp_cbb6572fc6",
        "openai.response.service_tier": "default",
    }
    assert record.failure is None


def test_chat_fixture_escaped_japanese_reads_as_text() -> None:
    """Lines written with ``\\uXXXX`` escapes give the same text as raw UTF-8 ones."""
    record = fixture_records("chat")["ja-summary-0002"]
    assert texts([{"parts": record.system_instructions}]) == ["会議の議事録を三行で要約してください。"]
    assert texts(record.output_messages)[0].startswith("1. 堺市の新配送センターの稼働は九月一日に延期。")


def test_chat_fixture_tool_call_with_parsed_arguments() -> None:
    """A reply that calls a tool shows its id, name and arguments as JSON, and finishes with ``tool_call``."""
    record = fixture_records("chat")["ru-order-0003"]
    assert record.input_messages[0]["parts"][0]["content"].startswith("Где мой заказ RU-55120?")
    assert record.output_messages[0]["parts"] == [
        {
            "type": "tool_call",
            "id": "call_7hTq2NwYbV4cKe9LmS0pXa1R",
            "name": "get_order_status",
            "arguments": {"order_id": "RU-55120", "locale": "ru"},
        }
    ]
    assert record.finish_reasons == ["tool_call"]
    assert record.tool_definitions is not None
    assert [tool["function"]["name"] for tool in record.tool_definitions] == ["get_order_status"]


def test_chat_fixture_long_thread_with_tool_call_and_tool_result() -> None:
    """A 10-message thread: roles in order, the earlier tool call and its result as their own parts."""
    record = fixture_records("chat")["thread-refund-0004"]
    roles = [m["role"] for m in record.input_messages]
    assert roles == ["user", "assistant", "user", "assistant", "tool", "assistant", "user", "assistant", "user"]
    assert record.input_messages[3]["parts"] == [
        {
            "type": "tool_call",
            "id": "call_Qm3uXb7PzR1kLd0aVfE9sT2n",
            "name": "get_order_status",
            "arguments": {"order_id": "NW-88213", "locale": "en"},
        }
    ]
    (response,) = record.input_messages[4]["parts"]
    assert response["type"] == "tool_call_response"
    assert response["id"] == "call_Qm3uXb7PzR1kLd0aVfE9sT2n"
    assert json.loads(response["response"])["total_eur"] == 89.9
    (call,) = tool_calls(record.output_messages)
    assert call["name"] == "issue_refund"
    assert call["arguments"]["amount_eur"] == 89.9
    assert record.tool_definitions is not None
    assert len(record.tool_definitions) == 2
    assert record.params["seed"] == 42
    assert record.usage.input_tokens == 1342
    assert record.usage.cache_read_tokens == 1152
    assert record.raw_input == lines(FIXTURES / "chat.requests.jsonl")[3]["body"]["messages"]


def test_chat_fixture_emoji_and_json_schema_output() -> None:
    """Emoji survive both ways, and a ``json_schema`` response format is ``gen_ai.output.type`` json."""
    record = fixture_records("chat")["emoji-tags-0005"]
    assert "🌶️ salsa" in texts(record.input_messages)[0]
    assert json.loads(texts(record.output_messages)[0])["tags"][0] == "🌶️ salsa"
    assert record.output_type == "json"


def test_chat_fixture_truncated_answer_and_stop_sequences() -> None:
    """``finish_reason: length`` stays ``length``; ``stop`` becomes the stop sequences."""
    record = fixture_records("chat")["story-cut-0006"]
    assert record.finish_reasons == ["length"]
    assert record.params["stop_sequences"] == ["FIN"]
    assert record.params["max_tokens"] == 40


def test_chat_fixture_refusal_is_the_answer() -> None:
    """A refusal (``content: null``, ``refusal`` set) is what came back, as text."""
    record = fixture_records("chat")["refuse-0007"]
    assert texts(record.output_messages) == [
        "I can't help with getting into someone else's home without their permission."
    ]
    assert record.finish_reasons == ["stop"]


@pytest.mark.parametrize(
    ("custom_id", "error_type", "status", "message_start"),
    [
        ("too-long-0008", "context_length_exceeded", 400, "This model's maximum context length is 1047576 tokens."),
        ("rate-0009", "rate_limit_exceeded", 429, "Rate limit reached for gpt-4.1-mini"),
        ("server-0010", "server_error", 500, "The server had an error while processing your request."),
    ],
)
def test_chat_error_file_http_failures(custom_id: str, error_type: str, status: int, message_start: str) -> None:
    """HTTP errors fail with OpenAI's ``code`` (else ``type``) and message, and report no usage or output."""
    record = fixture_records("chat")[custom_id]
    assert record.failure is not None
    assert record.failure.type == error_type
    assert record.failure.message.startswith(message_start)
    assert not record.failure.expired
    assert record.http_status == status
    assert record.request_model == "gpt-4.1-mini"
    assert not record.usage.reported
    assert record.output_messages == []
    assert record.finish_reasons == []


@pytest.mark.parametrize("custom_id", ["late-0011", "late-0012"])
def test_chat_error_file_expired_requests(custom_id: str) -> None:
    """``batch_expired`` lines (``response: null``) are failures marked expired, with OpenAI's message."""
    record = fixture_records("chat")[custom_id]
    assert record.failure is not None
    assert record.failure.type == "batch_expired"
    assert record.failure.expired
    assert "completion window" in record.failure.message
    assert record.http_status is None
    assert record.line_id is not None


# --------------------------------------------------------------------------- chat: the odd cases


def test_developer_messages_are_system_instructions() -> None:
    """The ``developer`` role (o-series models) counts as system instructions."""
    line = request_line(
        model="o3-mini", messages=[{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    )
    record = pair(line, None)
    assert record.system_instructions == [{"type": "text", "content": "Be brief."}]
    assert [m["role"] for m in record.input_messages] == ["user"]


def test_multimodal_parts_reference_media_and_never_inline_it() -> None:
    """Text parts are kept; image URLs and file ids are referenced; inline base64 is left out."""
    content = [
        {"type": "text", "text": "Describe this:"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 5000}},
        {"type": "input_audio", "input_audio": {"data": "B" * 5000, "format": "wav"}},
        {"type": "file", "file": {"file_id": "file-abc", "file_data": "C" * 5000}},
        {"type": "a_part_type_from_the_future", "payload": 1},
    ]
    record = pair(request_line(model="gpt-4o", messages=[{"role": "user", "content": content}]), None)
    (message,) = record.input_messages
    assert message["parts"] == [
        {"type": "text", "content": "Describe this:"},
        {"type": "uri", "modality": "image", "uri": "https://example.com/cat.png"},
        {"type": "blob", "modality": "image", "content": "[inline data omitted]"},
        {"type": "blob", "modality": "audio", "content": "[inline data omitted]"},
        {"type": "file", "modality": "file", "file_id": "file-abc"},
    ]
    assert "AAAAAAAA" not in json.dumps(record.input_messages)


def test_tool_call_with_unparseable_arguments_keeps_the_raw_string() -> None:
    """Models sometimes emit broken JSON arguments: they are shown as the raw string, not dropped."""
    call = {"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Par'}}
    body = chat_body(None, "tool_calls")
    body["choices"][0]["message"]["tool_calls"] = [call]
    record = pair(chat_request(), result_line(body=body))
    assert tool_calls(record.output_messages) == [
        {"type": "tool_call", "id": "call_abc", "name": "get_weather", "arguments": '{"city": "Par'}
    ]
    assert record.finish_reasons == ["tool_call"]


def test_several_choices_give_several_messages_and_finish_reasons() -> None:
    """With ``n`` > 1 every choice's message and finish reason is reported."""
    choices = [
        {"index": 0, "message": {"role": "assistant", "content": "a"}, "finish_reason": "stop"},
        {"index": 1, "message": {"role": "assistant", "content": "b"}, "finish_reason": "length"},
        {"index": 2, "message": {"role": "assistant", "content": "c"}, "finish_reason": "content_filter"},
    ]
    record = pair(chat_request(n=3), result_line(body=chat_body(choices=choices)))
    assert texts(record.output_messages) == ["a", "b", "c"]
    assert record.finish_reasons == ["stop", "length", "content_filter"]
    assert record.params["choice_count"] == 3


def test_chat_parameters_become_neutral_names() -> None:
    """Sampling parameters, ``max_completion_tokens``, a single ``stop`` string and the service tier."""
    line = chat_request(
        max_tokens=None,
        max_completion_tokens=1000,
        temperature=0.2,
        top_p=0.9,
        frequency_penalty=0.5,
        presence_penalty=-0.5,
        seed=7,
        stop="END",
        service_tier="flex",
        response_format={"type": "text"},
    )
    record = pair(line, None)
    assert record.params == {
        "max_tokens": 1000,
        "temperature": 0.2,
        "top_p": 0.9,
        "frequency_penalty": 0.5,
        "presence_penalty": -0.5,
        "seed": 7,
        "stop_sequences": ["END"],
    }
    assert record.extra["openai.request.service_tier"] == "flex"
    assert record.output_type == "text"


def test_booleans_are_not_numbers() -> None:
    """``temperature: true`` is not a temperature of 1, and ``prompt_tokens: true`` is not a token count."""
    line = chat_request(temperature=True, max_tokens=False)
    record = pair(line, result_line(body=chat_body(usage={"prompt_tokens": True, "completion_tokens": 2})))
    assert "temperature" not in record.params
    assert "max_tokens" not in record.params
    assert record.usage.input_tokens is None
    assert record.usage.output_tokens == 2


def test_reasoning_content_of_compatible_hosts_is_a_reasoning_part() -> None:
    """A chat message's ``reasoning_content`` (DeepSeek-style hosts) comes first, as reasoning."""
    body = chat_body("42")
    body["choices"][0]["message"]["reasoning_content"] = "6 times 7"
    record = pair(chat_request(), result_line(body=body))
    assert record.output_messages[0]["parts"] == [
        {"type": "reasoning", "content": "6 times 7"},
        {"type": "text", "content": "42"},
    ]


def test_model_named_outside_the_lines_is_used_only_when_the_line_has_none() -> None:
    """``--model`` fills a missing model; a line's own model always wins."""
    ctx = ExtractContext(cut=keep, model="from-the-job")
    without = request_line(messages=[{"role": "user", "content": "hi"}])
    assert pair(without, None, ctx).request_model == "from-the-job"
    assert pair(chat_request(), None, ctx).request_model == "gpt-4o-mini"
    assert pair(without, None).request_model is None


# --------------------------------------------------------------------------- failures and odd pairs


def test_http_500_without_error_body_fails_with_the_status() -> None:
    """A status >= 400 fails even when the body carries no ``error`` object."""
    record = pair(chat_request(), {"custom_id": "req-1", "response": {"status_code": 500, "body": None}, "error": None})
    assert record.failure is not None
    assert record.failure.type == "500"
    assert record.failure.message == "HTTP 500"
    assert record.http_status == 500


def test_error_body_with_null_everything_still_explains_itself() -> None:
    """``error: {message: null, type: null, code: null}`` still gives a type and a message."""
    body = {"error": {"message": None, "type": None, "param": None, "code": None}}
    record = pair(chat_request(), result_line(body=body, status=400))
    assert record.failure is not None
    assert record.failure.type == "400"
    assert record.failure.message == "HTTP 400"


def test_expired_error_with_null_message_still_explains_itself() -> None:
    """A line-level error with ``message: null`` still gives a non-empty message, and is an expiry."""
    line = {
        "id": "batch_req_x",
        "custom_id": "req-1",
        "response": None,
        "error": {"code": "batch_expired", "message": None},
    }
    record = pair(chat_request(), line)
    assert record.failure is not None
    assert (record.failure.type, record.failure.message, record.failure.expired) == (
        "batch_expired",
        "batch_expired",
        True,
    )


def test_result_with_neither_response_nor_error_is_failed() -> None:
    """``response: null`` and ``error: null``: no answer came back, which is a failure (not an expiry)."""
    record = pair(chat_request(), {"id": "batch_req_x", "custom_id": "req-1", "response": None, "error": None})
    assert record.failure is not None
    assert record.failure.type
    assert record.failure.message
    assert not record.failure.expired
    assert not record.no_result


def test_error_that_is_not_an_object_is_the_failure_message() -> None:
    """A line-level ``error`` given as a plain string is kept as the failure's message."""
    record = pair(chat_request(), {"custom_id": "req-1", "response": None, "error": "something broke"})
    assert record.failure is not None
    assert "something broke" in record.failure.message


def test_nulls_and_wrong_types_in_optional_line_fields_are_dropped() -> None:
    """``null`` or odd types in ``id``, ``request_id``, ``status_code`` are ignored, not fatal."""
    line = result_line()
    line["id"] = 123
    line["response"]["status_code"] = "200"
    line["response"]["request_id"] = 5
    record = pair(chat_request(), line)
    assert (record.line_id, record.request_id, record.http_status) == (None, None, None)
    assert record.failure is None
    assert texts(record.output_messages) == ["Hello!"]
    line["response"]["status_code"] = True
    assert pair(chat_request(), line).http_status is None
    nulls = {
        "id": None,
        "custom_id": "a",
        "response": {"status_code": None, "request_id": None, "body": None},
        "error": None,
    }
    record = pair(None, nulls)
    assert (record.line_id, record.request_id, record.http_status) == (None, None, None)


def test_request_without_result_is_a_no_result_failure() -> None:
    """A request the batch returned nothing for keeps its model and input, and is flagged no_result."""
    record = pair(chat_request("req-9", "lost question"), None)
    assert record.no_result
    assert record.failure is not None
    assert record.failure.type == "no_result"
    assert record.request_model == "gpt-4o-mini"
    assert texts(record.input_messages) == ["lost question"]
    assert record.output_messages == []
    assert not record.orphan


def test_result_without_request_is_an_orphan_named_by_the_response() -> None:
    """A result whose request is not in the input still gives a record, flagged, with the response's model."""
    record = pair(None, result_line("ghost"))
    assert record.orphan
    assert record.custom_id == "ghost"
    assert record.request_model is None
    assert record.model == "gpt-4o-mini-2024-07-18"
    assert record.operation == "chat"
    assert record.usage.input_tokens == 21
    assert texts(record.output_messages) == ["Hello!"]
    assert record.failure is None


def test_orphan_expiry_has_no_model_at_all() -> None:
    """An expired orphan has neither a request nor a body: no model is invented."""
    line = {
        "id": "batch_req_x",
        "custom_id": "ghost",
        "response": None,
        "error": {"code": "batch_expired", "message": "late"},
    }
    record = pair(None, line)
    assert record.orphan
    assert record.model is None
    assert record.failure is not None
    assert record.failure.expired


# --------------------------------------------------------------------------- responses


def test_responses_fixture_reasoning_summary_and_answer() -> None:
    """Responses: instructions are system instructions; reasoning summaries become a reasoning part."""
    record = fixture_records("responses")["resp-reason-01"]
    assert record.operation == "chat"
    assert record.extra["openai.api.type"] == "responses"
    assert record.system_instructions == [{"type": "text", "content": "Réponds en français."}]
    assert record.input_messages == [
        {"role": "user", "parts": [{"type": "text", "content": "Combien de lundis y a-t-il en février 2027 ?"}]}
    ]
    (message,) = record.output_messages
    assert [part["type"] for part in message["parts"]] == ["reasoning", "text"]
    assert texts(record.output_messages, "reasoning")[0].startswith("**Counting Mondays**")
    assert texts(record.output_messages) == ["Il y a 4 lundis en février 2027 : les 1er, 8, 15 et 22."]
    assert record.finish_reasons == ["stop"]
    assert record.params["max_tokens"] == 2000
    assert record.usage == Usage(31, 402, cache_read_tokens=0, reasoning_tokens=362, total_tokens=433)
    assert record.response_id == "resp_1b187b13d4d7c2f09715c24a797189797a476c64535b94434a"
    assert record.response_model == "gpt-5-mini-2025-08-07"
    assert record.created_s == 1787004012.0
    assert record.raw_output == {
        "role": "assistant",
        "content": "Il y a 4 lundis en février 2027 : les 1er, 8, 15 et 22.",
    }


def test_responses_fixture_function_call_with_parsed_arguments() -> None:
    """A function call item is a tool call (call_id, name, parsed arguments); an empty summary adds nothing."""
    record = fixture_records("responses")["resp-tool-02"]
    assert texts(record.input_messages) == ["Нужен ли мне зонт в Санкт-Петербурге сегодня?"]
    assert record.output_messages[0]["parts"] == [
        {
            "type": "tool_call",
            "id": "call_nByt36oewi8V2hrxvRpgd2zU",
            "name": "get_weather",
            "arguments": {"city": "Санкт-Петербург", "unit": "celsius"},
        }
    ]
    assert record.finish_reasons == ["tool_call"]
    assert record.tool_definitions is not None
    assert record.tool_definitions[0]["name"] == "get_weather"


def test_responses_fixture_built_in_web_search_call() -> None:
    """A built-in tool's call (``web_search_call``) shows as a tool call with what it searched, then the answer."""
    record = fixture_records("responses")["resp-web-03"]
    (call,) = tool_calls(record.output_messages)
    assert call["name"] == "web_search"
    assert call["id"] == "ws_9297df74fb45866a4c5ac69f502bd98cca20f9e3c5542c540b"
    assert call["arguments"]["action"]["query"].startswith("Japan Meteorological Agency 2026")
    assert texts(record.output_messages)[0].startswith("The JMA said the rainy season")
    assert record.finish_reasons == ["stop"], "OpenAI ran the search itself and the model answered"
    assert record.usage.cache_read_tokens == 6784
    assert record.usage.reasoning_tokens == 128


def test_responses_fixture_refusal_is_the_answer() -> None:
    """A ``refusal`` content item is what came back, as text."""
    record = fixture_records("responses")["resp-refusal-04"]
    assert texts(record.output_messages) == [
        "I can't help create phishing messages or anything meant to obtain someone's banking PIN."
    ]
    assert record.finish_reasons == ["stop"]


def test_responses_fixture_incomplete_response_finishes_with_length() -> None:
    """``status: incomplete`` for ``max_output_tokens`` is the conventions' ``length``; reasoning is kept."""
    record = fixture_records("responses")["resp-cut-05"]
    assert record.finish_reasons == ["length"]
    assert [part["type"] for part in record.output_messages[0]["parts"]] == ["reasoning"]
    assert record.usage.output_tokens == record.usage.reasoning_tokens == 256
    assert record.failure is None


def test_responses_input_items() -> None:
    """Input items: typed content, a plain assistant message, an earlier function call and its output."""
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
        {"type": "message", "role": "assistant", "content": "Checking."},
        {"type": "function_call", "call_id": "call_9", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
        {"type": "function_call_output", "call_id": "call_9", "output": "sunny"},
        {"type": "item_reference", "id": "msg_1"},
    ]
    record = pair(request_line("r", "/v1/responses", model="gpt-4.1", input=items), None)
    assert record.input_messages == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather?"}]},
        {"role": "assistant", "parts": [{"type": "text", "content": "Checking."}]},
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "call_9", "name": "get_weather", "arguments": {"city": "Oslo"}}],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_9", "response": "sunny"}]},
    ]


@pytest.mark.parametrize(
    ("item", "finish"),
    [
        ({"type": "custom_tool_call", "call_id": "c", "name": "grep", "input": "TODO"}, "tool_call"),
        ({"type": "computer_call", "id": "cu_1", "action": {"type": "click", "x": 1, "y": 2}}, "tool_call"),
        ({"type": "file_search_call", "id": "fs_1", "queries": ["refund policy"]}, "stop"),
        ({"type": "code_interpreter_call", "id": "ci_1", "code": "print(1)"}, "stop"),
    ],
)
def test_responses_finish_with_tool_call_only_when_the_caller_must_act(item: dict[str, Any], finish: str) -> None:
    """Calls the caller runs (custom tools, computer use) end the response; OpenAI's own built-in tools do not."""
    body = {"id": "resp_1", "model": "gpt-5", "status": "completed", "output": [item]}
    record = pair(request_line("r", "/v1/responses", model="gpt-5", input="hi"), result_line("r", body))
    assert record.finish_reasons == [finish]
    assert len(tool_calls(record.output_messages)) == 1


def test_failed_response_finishes_with_error() -> None:
    """A response body with ``status: failed`` (no error object) ends with the ``error`` finish reason."""
    body = {"id": "resp_1", "model": "gpt-4.1", "status": "failed", "output": [{"type": "message", "content": []}]}
    record = pair(request_line("r", "/v1/responses", model="gpt-4.1", input="hi"), result_line("r", body))
    assert record.finish_reasons == ["error"]


# --------------------------------------------------------------------------- completions


def test_completions_fixture_two_choices() -> None:
    """Legacy completions: the prompt is a user message, each choice's ``text`` an assistant message."""
    record = fixture_records("completions")["cmpl-slogan-02"]
    assert record.operation == "text_completion"
    assert texts(record.input_messages) == ["Slogan publicitaire pour une crêperie bretonne :"]
    assert texts(record.output_messages) == [
        " « La galette qui fait chanter la mer ! »",
        " Du blé noir, du beurre salé et beaucoup d'am",
    ]
    assert record.finish_reasons == ["stop", "length"]
    assert record.params == {"max_tokens": 12, "temperature": 0.9, "choice_count": 2}
    assert record.raw_input == "Slogan publicitaire pour une crêperie bretonne :"
    assert record.raw_output == " « La galette qui fait chanter la mer ! »"
    assert "openai.api.type" not in record.extra


def test_completions_fixture_stop_and_escaped_text() -> None:
    """A ``stop`` list is the stop sequences; an escaped Cyrillic answer reads as text; logprobs stay out."""
    records = fixture_records("completions")
    assert records["cmpl-sql-01"].params["stop_sequences"] == [";"]
    assert records["cmpl-sql-01"].params["temperature"] == 0
    echo = records["cmpl-echo-03"]
    assert texts(echo.output_messages) == ["! Как дела?"]
    assert "token_logprobs" not in json.dumps(echo.output_messages)


def test_completions_prompt_list_is_one_message_each() -> None:
    record = pair(request_line("c", "/v1/completions", model="m", prompt=["one", "two"]), None)
    assert texts(record.input_messages) == ["one", "two"]


# --------------------------------------------------------------------------- embeddings


def test_embeddings_fixture_have_counts_not_chat_messages() -> None:
    """Embeddings report vector size, input count and tokens; no chat messages are invented, no vector is kept."""
    records = fixture_records("embeddings")
    one, two = records["emb-faq-001"], records["emb-faq-002"]
    for record in (one, two):
        assert record.operation == "embeddings"
        assert record.input_messages == []
        assert record.output_messages == []
        assert record.finish_reasons == []
        assert record.extra["gen_ai.embeddings.dimension.count"] == 8
        assert record.usage.output_tokens is None
    assert one.extra["batchtrace.embeddings.input_count"] == 1
    assert one.extra["batchtrace.embeddings.output_count"] == 1
    assert one.raw_input == "Comment changer l'adresse de livraison ?"
    assert one.usage.input_tokens == 10
    assert two.extra["batchtrace.embeddings.input_count"] == 2
    assert two.params["encoding_formats"] == ["float"]
    assert two.raw_input == ["配送先住所を変更するには\uff1f", "Как изменить адрес доставки?"]
    assert "0.4541551" not in json.dumps(asdict(two), ensure_ascii=False)


def test_embeddings_error_file() -> None:
    """An embeddings request rejected with HTTP 400 fails with ``invalid_request_error`` (``code`` is null)."""
    record = fixture_records("embeddings")["emb-faq-003"]
    assert record.failure is not None
    assert record.failure.type == "invalid_request_error"
    assert record.failure.message.startswith("'$.input' is invalid.")
    assert record.http_status == 400


# --------------------------------------------------------------------------- moderations


def test_moderations_fixture_verdicts() -> None:
    """Moderations show whether the input was flagged and which categories fired; there is no usage."""
    records = fixture_records("moderations")
    flagged = records["mod-review-02"]
    assert flagged.operation == "moderation"
    assert flagged.request_model == "omni-moderation-latest"
    assert flagged.extra["batchtrace.moderation.flagged"] is True
    assert flagged.extra["batchtrace.moderation.categories"] == ["harassment", "harassment/threatening", "violence"]
    assert flagged.extra["batchtrace.moderation.max_score"] == 0.9689
    assert texts(flagged.output_messages) == ["flagged: harassment, harassment/threatening, violence"]
    assert not flagged.usage.reported
    for custom_id in ("mod-review-01", "mod-review-03"):
        clean = records[custom_id]
        assert clean.extra["batchtrace.moderation.flagged"] is False
        assert clean.extra["batchtrace.moderation.categories"] == []
        assert texts(clean.output_messages) == ["not flagged"]
    assert records["mod-review-01"].raw_input == "Super service, la livreuse était adorable ! 😊"
    assert isinstance(records["mod-review-03"].raw_input, list)


# --------------------------------------------------------------------------- images and videos


def test_images_generations_fixture() -> None:
    """Image generation: model, prompt, the image settings, image tokens; the base64 image stays out."""
    records = fixture_records("images_generations")
    hero, icons = records["img-hero-01"], records["img-icon-02"]
    assert hero.operation == "generate_content"
    assert hero.request_model == "gpt-image-1"
    assert hero.output_type == "image"
    assert texts(hero.input_messages) == ["Watercolour of a Breton crêperie at dusk, warm window light, seagulls"]
    assert hero.usage == Usage(21, 1568, total_tokens=1589)
    assert hero.created_s == 1787003834.0
    assert {
        key: hero.extra[f"batchtrace.image.{key}"] for key in ("size", "quality", "background", "output_format")
    } == {
        "size": "1536x1024",
        "quality": "medium",
        "background": "opaque",
        "output_format": "png",
    }
    assert hero.output_messages[0]["parts"] == [
        {"type": "blob", "modality": "image", "content": "[inline data omitted]"}
    ]
    assert len(icons.output_messages[0]["parts"]) == 2
    assert icons.params["choice_count"] == 2
    assert icons.extra["batchtrace.image.background"] == "transparent"
    assert texts(icons.input_messages) == ["Flat icon: 富士山と桜, minimal, two colours"]
    for record in records.values():
        assert "iVBORw0KGgo" not in json.dumps(asdict(record))


def test_images_edits_fixture() -> None:
    """Image edits: the edit prompt, the settings the response confirms, and input image tokens."""
    records = fixture_records("images_edits")
    label, merge = records["edit-label-01"], records["edit-merge-02"]
    assert texts(label.input_messages) == [
        "Replace the label text with 'Cidre Brut — Cornouaille' and keep the bottle shape"
    ]
    assert label.extra["batchtrace.image.size"] == "1024x1536"
    assert merge.extra["batchtrace.image.quality"] == "high"
    assert merge.usage.input_tokens == 809
    assert merge.usage.output_tokens == 4160
    assert merge.finish_reasons == ["stop"]


def test_image_urls_are_referenced_with_the_revised_prompt() -> None:
    """A ``url`` image (dall-e) is a URI part; a revised prompt is shown as text."""
    body = {"created": 1, "data": [{"url": "https://img.example/1.png", "revised_prompt": "A calmer cat"}]}
    record = pair(request_line("i", "/v1/images/generations", model="dall-e-3", prompt="cat"), result_line("i", body))
    assert record.output_messages[0]["parts"] == [
        {"type": "uri", "modality": "image", "uri": "https://img.example/1.png"},
        {"type": "text", "content": "A calmer cat"},
    ]


def test_videos_fixture() -> None:
    """Videos: model, prompt, length and size, the job's status, and the video id as the output."""
    records = fixture_records("videos")
    teaser = records["vid-teaser-01"]
    assert teaser.operation == "generate_content"
    assert teaser.request_model == "sora-2"
    assert teaser.output_type == "video"
    assert teaser.response_id == "video_55762e5a2066e5a6b671a7904446ff627d6bcc703a923bfa"
    assert teaser.extra["batchtrace.video.seconds"] == "8"
    assert teaser.extra["batchtrace.video.size"] == "1280x720"
    assert teaser.extra["batchtrace.video.status"] == "completed"
    assert teaser.output_messages[0]["parts"] == [
        {"type": "file", "modality": "video", "file_id": "video_55762e5a2066e5a6b671a7904446ff627d6bcc703a923bfa"}
    ]
    assert teaser.created_s == 1787007689.0
    assert teaser.failure is None
    assert records["vid-loop-02"].extra["batchtrace.video.seconds"] == "4"


def test_failed_video_is_a_failure() -> None:
    """A video job that failed (HTTP 200, ``status: failed``) is a failed request, with its error if given."""
    line = request_line("v", "/v1/videos", model="sora-2", prompt="p")
    body: dict[str, Any] = {
        "id": "video_1",
        "model": "sora-2",
        "status": "failed",
        "error": {"code": "moderation_blocked", "message": "no"},
    }
    record = pair(line, result_line("v", body))
    assert record.failure is not None
    assert (record.failure.type, record.failure.message) == ("moderation_blocked", "no")
    body["error"] = None
    record = pair(line, result_line("v", body))
    assert record.failure is not None
    assert record.failure.type == "video_failed"


# --------------------------------------------------------------------------- unknown endpoints


def test_unknown_endpoint_keeps_what_is_generic() -> None:
    """An endpoint the adapter does not know still gets a record: its model, ids, usage and status."""
    line = request_line("s", "/v1/audio/speech", model="tts-1", input="Hello", voice="alloy")
    body = {
        "id": "sp_1",
        "model": "tts-1-2025",
        "usage": {"input_tokens": 3, "output_tokens": 9},
        "created": 1_700_000_000,
    }
    record = pair(line, result_line("s", body))
    assert record.operation == "speech"
    assert record.request_model == "tts-1"
    assert record.response_model == "tts-1-2025"
    assert record.response_id == "sp_1"
    assert record.usage.input_tokens == 3
    assert record.input_messages == []
    assert record.output_messages == []
    assert record.failure is None


# --------------------------------------------------------------------------- truncation


def cut_ctx(limit: int) -> ExtractContext:
    return ExtractContext(cut=ContentPolicy(max_length=limit).cut)


def test_truncation_applies_to_every_text_value() -> None:
    """A 100 KB message with a 1000-char limit is cut and marked, in messages and in the raw copies."""
    huge = "x" * 100_000
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": json.dumps({"q": huge})}}
    line = request_line(
        model="m",
        messages=[
            {"role": "system", "content": huge},
            {"role": "user", "content": huge},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c", "content": huge},
        ],
        tools=[{"type": "function", "function": {"name": "f", "description": huge}}],
    )
    record = pair(line, result_line(body=chat_body(huge)), cut_ctx(1000))
    content = record.input_messages[0]["parts"][0]["content"]
    assert content.startswith("x" * 1000)
    assert "[truncated 99000 chars]" in content
    assert len(content) < 1100
    dumped = json.dumps(asdict(record))
    assert "x" * 1001 not in dumped
    assert dumped.count("[truncated") >= 7


def test_short_content_is_not_truncated() -> None:
    """Content within the limit is kept exactly."""
    line = request_line(model="m", messages=[{"role": "user", "content": "0123456789"}])
    assert texts(pair(line, None, cut_ctx(10)).input_messages) == ["0123456789"]


def test_truncation_does_not_break_multibyte_text() -> None:
    """Cutting emoji or CJK text still gives valid text, marked."""
    line = request_line(model="m", messages=[{"role": "user", "content": "😀" * 50}])
    (content,) = texts(pair(line, None, cut_ctx(5)).input_messages)
    assert content.startswith("😀" * 5)
    assert "[truncated 45 chars]" in content


def string_leaves(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in string_leaves(item)]
    if isinstance(value, dict):
        return [text for item in value.values() for text in string_leaves(item)]
    return []


@pytest.mark.parametrize("endpoint", OPENAI_ENDPOINTS)
def test_truncation_reaches_every_endpoint(endpoint: str) -> None:
    """No text of any endpoint (messages, instructions, the raw request) is longer than the limit and its marker."""
    longest = 20 + len("…[truncated 99999 chars]")
    cut_somewhere = False
    for record in fixture_records(endpoint, cut_ctx(20)).values():
        parts = [part for m in (*record.input_messages, *record.output_messages) for part in m["parts"]]
        values = [part["content"] for part in (*parts, *record.system_instructions) if "content" in part]
        values += string_leaves(record.raw_input)
        assert all(len(text) <= longest for text in values), record.custom_id
        cut_somewhere |= any("[truncated" in text for text in values)
    assert cut_somewhere


# --------------------------------------------------------------------------- nulls everywhere

NULL_REQUEST: dict[str, Any] = {
    "model": None,
    "messages": [
        {"role": None, "content": None},
        {"role": "user", "content": [None, {"type": None}, {"type": "text", "text": None}]},
        {"role": "assistant", "content": None, "tool_calls": [None, {"id": None, "function": None}]},
        {"role": "tool", "tool_call_id": None, "content": None},
        None,
    ],
    "max_tokens": None,
    "max_completion_tokens": None,
    "temperature": None,
    "top_p": None,
    "stop": None,
    "seed": None,
    "n": None,
    "tools": None,
    "service_tier": None,
    "response_format": None,
    "text": None,
    "input": [None, {"type": "function_call_output"}, {"role": None, "content": None}],
    "instructions": None,
    "prompt": None,
    "encoding_format": None,
    "dimensions": None,
    "size": None,
    "seconds": None,
}

NULL_RESPONSE: dict[str, Any] = {
    "id": None,
    "model": None,
    "created": None,
    "created_at": None,
    "system_fingerprint": None,
    "service_tier": None,
    "status": None,
    "error": None,
    "choices": [
        None,
        {"message": None, "finish_reason": None},
        {"message": {"role": None, "content": None, "refusal": None, "tool_calls": None}, "finish_reason": None},
        {"message": {"content": [None, {"type": "output_text", "text": None}], "tool_calls": [{"function": {}}]}},
    ],
    "usage": {
        "prompt_tokens": None,
        "completion_tokens": None,
        "total_tokens": None,
        "prompt_tokens_details": None,
        "completion_tokens_details": {"reasoning_tokens": None},
    },
    "output": [
        None,
        {"type": "message", "content": None},
        {"type": "function_call", "arguments": None},
        {"type": None},
    ],
    "output_text": None,
    "incomplete_details": None,
    "data": [None, {"embedding": None, "url": None}],
    "results": [None, {"flagged": None, "categories": None, "category_scores": None}],
}

NULL_URLS = [
    "/v1/chat/completions",
    "/v1/responses",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/videos",
    "/v1/something/new",
]


def valid_attribute_value(value: object) -> bool:
    if isinstance(value, str | bool | int | float):
        return True
    return isinstance(value, list) and all(isinstance(item, str | bool | int | float) for item in value)


@pytest.mark.parametrize("url", NULL_URLS)
@pytest.mark.parametrize("capture", [True, False], ids=["capture", "no-capture"])
def test_null_in_every_optional_field_never_raises(url: str, capture: bool) -> None:
    """``null`` anywhere in either body is tolerated, and no span attribute ends up ``None``."""
    factory = SpanFactory(resolve_link("b"), batch_id="b", capture=capture, resource=Resource({}), now_ns=10**18)
    lines = [
        (request_line("a", url, **NULL_REQUEST), result_line("a", NULL_RESPONSE)),
        (request_line("a", url, **NULL_REQUEST), None),
        (
            None,
            {
                "id": None,
                "custom_id": "a",
                "response": {"status_code": None, "request_id": None, "body": None},
                "error": None,
            },
        ),
        ({"custom_id": "a", "url": url, "body": {}}, result_line("a", {})),
    ]
    for request, result in lines:
        record = pair(request, result)
        span = factory.completion(record)
        for key, value in (span.attributes or {}).items():
            assert valid_attribute_value(value), (key, value)
        for key in ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"):
            if key in (span.attributes or {}):
                json.loads(str((span.attributes or {})[key]))


@pytest.mark.parametrize("url", NULL_URLS)
def test_empty_bodies_give_no_junk(url: str) -> None:
    """An empty request and response give no model, no messages and no tokens, not placeholders."""
    record = pair({"custom_id": "a", "url": url, "body": {}}, result_line("a", {}))
    assert record.model is None
    assert not record.usage.reported
    assert record.input_messages == []
    assert record.system_instructions == []
    assert record.params == {}
