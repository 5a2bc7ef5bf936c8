"""Anthropic Message Batches through the adapter: what a user checks on each request's record.

The fixture pair (tests/fixtures/formats/anthropic) is read as the product reads it: each line
parsed with ``json``, paired by ``custom_id``, handed to ``extract``. The assertions are the
questions a user asks of a span: which model, what went in and came out (in any language),
which tools were called with what, how many tokens in the one meaning every provider shares
(input INCLUDES Anthropic's cache reads and writes), why it stopped, and why it failed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from batchtrace.extract import adapter_named, detect
from batchtrace.extract.anthropic import ADAPTER, REDACTED
from batchtrace.extract.base import NO_RESULT, ExtractContext, keep
from batchtrace.record import Record

from tests.support.fixtures import FORMATS, lines

FIXTURES = FORMATS / "anthropic"
CTX = ExtractContext(cut=keep)


REQUESTS = {line["custom_id"]: line for line in lines(FIXTURES / "requests.jsonl")}
RESULTS = {line["custom_id"]: line for line in lines(FIXTURES / "results.jsonl")}


def record_of(custom_id: str, ctx: ExtractContext = CTX) -> Record:
    result = RESULTS[custom_id]
    assert ADAPTER.result_id(result, 1) == custom_id
    assert ADAPTER.request_id(REQUESTS[custom_id]) == custom_id
    return ADAPTER.extract(custom_id, REQUESTS[custom_id], result, ctx)


def texts(messages: list[dict[str, Any]], kind: str = "text") -> list[str]:
    return [part["content"] for m in messages for part in m["parts"] if part["type"] == kind]


def parts_of(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [part for m in messages for part in m["parts"] if part["type"] == kind]


# --------------------------------------------------------------------------- the fixture pair


def test_every_request_has_its_result_and_every_record_is_chat_on_anthropic() -> None:
    assert set(REQUESTS) == set(RESULTS)
    for custom_id in REQUESTS:
        record = record_of(custom_id)
        assert record.provider == "anthropic"
        assert record.operation == "chat"
        assert record.custom_id == custom_id
        assert record.request_model == REQUESTS[custom_id]["params"]["model"]
        assert not record.orphan
        assert not record.no_result


def test_a_plain_summary_in_french_with_a_string_system_prompt() -> None:
    record = record_of("fr-resume-01")
    assert record.response_model == "claude-sonnet-4-6"
    assert record.response_id == "msg_01gh1jEGhDE94eJGsE6bRJxV"
    assert record.system_instructions == [{"type": "text", "content": "Tu résumes des avis clients en une phrase."}]
    assert texts(record.input_messages) == [
        "Chambre impeccable, personnel très aimable, mais le petit-déjeuner était froid et le Wi-Fi coupait sans cesse."
    ]
    assert [m["role"] for m in record.input_messages] == ["user"]
    assert texts(record.output_messages) == [
        "Séjour apprécié pour la propreté et l'accueil, mais terni par un petit-déjeuner froid et un Wi-Fi instable."
    ]
    assert record.output_messages[0]["role"] == "assistant"
    assert record.finish_reasons == ["stop"]
    assert record.params == {"max_tokens": 512}
    assert (record.usage.input_tokens, record.usage.output_tokens, record.usage.total_tokens) == (48, 36, 84)
    assert record.failure is None
    assert record.extra["anthropic.response.service_tier"] == "batch"
    assert record.raw_output == {
        "role": "assistant",
        "content": RESULTS["fr-resume-01"]["result"]["message"]["content"],
    }
    assert record.raw_input == REQUESTS["fr-resume-01"]["params"]["messages"]


def test_a_tool_call_from_a_unicode_escaped_japanese_line_has_parsed_arguments() -> None:
    record = record_of("ja-tool-02")
    assert texts(record.input_messages) == ["明日、札幌に出張です。傘は必要ですか？"]  # noqa: RUF001
    assert texts(record.output_messages) == ["札幌の明日の天気を確認しますね。"]
    [call] = parts_of(record.output_messages, "tool_call")
    assert call == {
        "type": "tool_call",
        "id": "toolu_01K7ivqo4mQ1NsITiiwN4Ml0",
        "name": "get_weather",
        "arguments": {"city": "札幌", "unit": "celsius"},
    }
    assert record.finish_reasons == ["tool_call"]
    assert record.tool_definitions is not None
    assert [tool["name"] for tool in record.tool_definitions] == ["get_weather"]
    assert record.extra["batchtrace.anthropic.stop_reason"] == "tool_use"


def test_thinking_is_a_reasoning_part_and_its_tokens_are_reported_inside_output() -> None:
    record = record_of("ru-think-03")
    [message] = record.output_messages
    assert [part["type"] for part in message["parts"]] == ["reasoning", "text"]
    assert texts(record.output_messages, "reasoning") == ["23:40 + 8 ч = 07:40 следующего дня, + 35 мин = 08:15."]
    assert texts(record.output_messages) == ["Поезд прибыл в Санкт-Петербург в 08:15 следующего дня."]
    assert "signature" not in json.dumps(record.output_messages)
    assert record.usage.output_tokens == 142
    assert record.usage.reasoning_tokens == 97
    assert record.extra["batchtrace.anthropic.thinking.budget_tokens"] == 2048


def test_a_long_thread_keeps_turns_tool_use_and_tool_result_and_counts_cache_reads_as_input() -> None:
    record = record_of("long-thread-04")
    assert [m["role"] for m in record.input_messages] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    [system] = record.system_instructions
    assert system["content"].startswith("You are the support copilot for Hôtel Bellevue (Genève).")
    [call] = parts_of(record.input_messages, "tool_call")
    assert call["name"] == "lookup_customer"
    assert call["arguments"] == {"email": "lea.dubois@example.fr"}
    [response] = parts_of(record.input_messages, "tool_call_response")
    assert response["id"] == call["id"] == "toolu_01Gk7uQpX3sVbN9yRtLm2WcE"
    assert json.loads(response["response"])["booking"] == "BV-20931"
    assert record.finish_reasons == ["length"]
    # Anthropic: input_tokens 212 EXCLUDES the 1536 read from the cache; the record's input includes them.
    assert record.usage.input_tokens == 212 + 1536
    assert record.usage.cache_read_tokens == 1536
    assert record.usage.cache_creation_tokens == 0
    assert record.usage.output_tokens == 160
    assert record.params["max_tokens"] == 160


def test_emoji_from_surrogate_escapes_and_a_stop_sequence() -> None:
    record = record_of("emoji-stop-05")
    assert texts(record.output_messages) == ["🏖️ 🌊 🍹\n"]
    assert record.params["stop_sequences"] == ["###"]
    assert record.finish_reasons == ["stop"]
    assert record.extra["batchtrace.anthropic.stop_sequence"] == "###"
    assert record.response_model == "claude-haiku-4-5-20251001"


def test_redacted_thinking_is_a_reasoning_part_without_its_encrypted_data() -> None:
    record = record_of("redacted-06")
    assert texts(record.output_messages, "reasoning") == [REDACTED]
    assert "EmwKAhgBEgy3va3pzix" not in json.dumps(record.output_messages)
    assert texts(record.output_messages)[0].startswith("Зберігання паролів у відкритому вигляді")  # noqa: RUF001


def test_a_server_web_search_is_a_tool_call_and_pause_turn_maps_to_stop() -> None:
    record = record_of("web-07")
    [call] = parts_of(record.output_messages, "tool_call")
    assert call["name"] == "web_search"
    assert call["arguments"] == {"query": "tarifas metro Madrid 2026 cambios abono"}
    assert record.finish_reasons == ["stop"]
    assert record.extra["batchtrace.anthropic.stop_reason"] == "pause_turn"
    assert record.extra["batchtrace.anthropic.server_tool_use.web_search_requests"] == 1
    assert "batchtrace.anthropic.server_tool_use.web_fetch_requests" not in record.extra


def test_a_refusal_is_a_content_filter_finish_with_its_category() -> None:
    record = record_of("refuse-08")
    assert record.failure is None
    assert record.finish_reasons == ["content_filter"]
    assert record.output_messages == [{"role": "assistant", "parts": [], "finish_reason": "content_filter"}]
    assert record.extra["batchtrace.anthropic.refusal_category"] == "cyber"
    assert record.usage.output_tokens == 0


@pytest.mark.parametrize(
    ("custom_id", "error_type", "message_start", "request_id"),
    [
        ("bad-09", "invalid_request_error", "max_tokens: 100000 > 64000", None),
        ("api-err-10", "api_error", "Internal server error", "req_011CcBBNugOXPl7uQcWaZCM3"),
    ],
)
def test_an_errored_result_fails_with_the_inner_error_type(
    custom_id: str, error_type: str, message_start: str, request_id: str | None
) -> None:
    record = record_of(custom_id)
    assert record.failure is not None
    assert record.failure.type == error_type
    assert record.failure.message.startswith(message_start)
    assert not record.failure.expired
    assert record.request_id == request_id
    assert record.output_messages == []
    assert not record.usage.reported
    assert texts(record.input_messages)  # the request is still shown


def test_canceled_and_expired_results_fail_and_only_the_expiry_is_expired() -> None:
    canceled, expired = record_of("cancel-11"), record_of("expire-12")
    assert canceled.failure is not None and canceled.failure.type == "canceled" and not canceled.failure.expired
    assert expired.failure is not None and expired.failure.type == "expired" and expired.failure.expired
    assert texts(canceled.input_messages) == ["Donne trois idées de dessert avec des framboises."]


def test_usage_over_the_file_adds_up_with_cache_included() -> None:
    records = [record_of(custom_id) for custom_id in RESULTS]
    expected_input = expected_output = 0
    for line in RESULTS.values():
        usage = (line["result"].get("message") or {}).get("usage") or {}
        expected_input += sum(usage.get(k, 0) for k in ("input_tokens", "cache_read_input_tokens"))
        expected_input += usage.get("cache_creation_input_tokens", 0)
        expected_output += usage.get("output_tokens", 0)
    assert sum(r.usage.input_tokens or 0 for r in records) == expected_input == 4796
    assert sum(r.usage.output_tokens or 0 for r in records) == expected_output == 837
    assert sum(1 for r in records if r.failed) == 4


# --------------------------------------------------------------------------- odd pairs


def test_a_request_without_result_is_a_no_result_failure() -> None:
    record = ADAPTER.extract("fr-resume-01", REQUESTS["fr-resume-01"], None, CTX)
    assert record.no_result
    assert record.failure is NO_RESULT
    assert record.request_model == "claude-sonnet-4-6"
    assert texts(record.input_messages)


def test_a_result_without_request_is_an_orphan_with_the_response_model() -> None:
    record = ADAPTER.extract("ja-tool-02", None, RESULTS["ja-tool-02"], CTX)
    assert record.orphan
    assert record.request_model is None
    assert record.model == "claude-sonnet-4-6"
    assert parts_of(record.output_messages, "tool_call")


def test_an_orphan_failure_takes_the_model_named_outside_the_lines() -> None:
    record = ADAPTER.extract("cancel-11", None, RESULTS["cancel-11"], ExtractContext(cut=keep, model="claude-x"))
    assert record.orphan
    assert record.model == "claude-x"


def test_every_text_value_is_cut() -> None:
    def cut(text: str) -> str:
        return text[:5]

    record = record_of("long-thread-04", ExtractContext(cut=cut))
    for part in (p for m in record.input_messages + record.output_messages for p in m["parts"]):
        if part["type"] == "text":
            assert len(part["content"]) <= 5
    [call] = parts_of(record.input_messages, "tool_call")
    assert call["arguments"] == {"email": "lea.d"}
    assert all(len(p["content"]) <= 5 for p in record.system_instructions)
    assert record.raw_input[0]["content"] == "Bonjo"


# --------------------------------------------------------------------------- content blocks


def test_images_documents_and_tool_results_with_blocks_never_carry_inline_data() -> None:
    params = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 10,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
                    {"type": "document", "source": {"type": "file", "file_id": "file_011"}},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Grüße"}},
                    {"type": "search_result", "source": "x", "title": "t", "content": []},
                    {"type": "text", "text": "Что на картинке?"},
                ],
            },
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "look", "input": {}}]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [
                            {"type": "text", "text": "a cat"},
                            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                        ],
                    },
                    {"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "text", "text": "ok"}]},
                ],
            },
        ],
    }
    record = ADAPTER.extract("img", {"custom_id": "img", "params": params}, None, CTX)
    first = record.input_messages[0]["parts"]
    assert first[0] == {
        "type": "blob",
        "modality": "image",
        "mime_type": "image/png",
        "content": "[inline data omitted]",
    }
    assert first[1] == {"type": "uri", "modality": "image", "uri": "https://example.com/a.jpg"}
    assert first[2] == {"type": "file", "modality": "file", "file_id": "file_011"}
    assert first[3] == {"type": "text", "content": "Grüße"}
    assert first[4] == {"type": "text", "content": "Что на картинке?"}
    assert len(first) == 5  # the search_result block is not known: skipped, not a crash
    tool_message = record.input_messages[2]
    assert tool_message["role"] == "tool"
    with_image, text_only = tool_message["parts"]
    assert with_image["response"][0] == {"type": "text", "content": "a cat"}
    assert with_image["response"][1]["type"] == "blob"
    assert text_only["response"] == "ok"
    assert "AAAA" not in json.dumps(record.input_messages)


def test_server_tool_results_keep_their_items_without_encrypted_content() -> None:
    reply = {
        "id": "msg_1",
        "model": "claude-sonnet-4-6",
        "role": "assistant",
        "content": [
            {"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {"query": "Metro Madrid"}},
            {
                "type": "web_search_tool_result",
                "tool_use_id": "srv_1",
                "content": [
                    {
                        "type": "web_search_result",
                        "url": "https://example.es/tarifas",
                        "title": "Tarifas 2026",
                        "encrypted_content": "EqgfCioIARgBIiQ3YTAwMjY1Mi1mZjM5LTQ1NGUtODgxNC1kNjNjNTk1ZWI3Y",
                        "page_age": None,
                    }
                ],
            },
            {"type": "text", "text": "El abono joven cuesta 10 €."},
        ],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": 5, "server_tool_use": {"web_search_requests": 1}},
    }
    record = ADAPTER.extract("w", None, {"custom_id": "w", "result": {"type": "succeeded", "message": reply}}, CTX)
    [message] = record.output_messages
    assert [part["type"] for part in message["parts"]] == ["tool_call", "tool_call_response", "text"]
    response = message["parts"][1]
    assert response["id"] == "srv_1"
    assert response["response"] == [
        {"type": "web_search_result", "url": "https://example.es/tarifas", "title": "Tarifas 2026", "page_age": None}
    ]


# --------------------------------------------------------------------------- shapes and odd values


@pytest.mark.parametrize(
    "line",
    [
        {"custom_id": "a", "response": {"status_code": 200, "body": {}}, "error": None},  # OpenAI's
        {"recordId": "A", "modelInput": {}, "modelOutput": {}},  # Bedrock's
        {"key": "a", "response": {}},  # Gemini's
        {"custom_id": 7, "result": {"type": "succeeded"}},
        {"custom_id": "", "result": {"type": "succeeded"}},
        {"custom_id": "a", "result": None},
        {"custom_id": "a", "result": "succeeded"},
        {"custom_id": "a", "result": {}},
        {"custom_id": "a", "result": {"type": None}},
        {"custom_id": "a", "params": {}},
    ],
)
def test_lines_of_another_shape_are_not_results(line: dict[str, Any]) -> None:
    assert ADAPTER.result_id(line, 3) is None


@pytest.mark.parametrize(
    "line",
    [
        {"custom_id": "a", "body": {}, "url": "/v1/chat/completions"},
        {"custom_id": "a", "params": None},
        {"custom_id": None, "params": {}},
        {"params": {}},
    ],
)
def test_lines_of_another_shape_are_not_requests(line: dict[str, Any]) -> None:
    assert ADAPTER.request_id(line) is None


@pytest.mark.parametrize(
    "outcome",
    [
        {"type": "succeeded", "message": None},
        {"type": "succeeded", "message": {"content": None, "usage": None, "stop_reason": 3, "model": 1}},
        {"type": "succeeded", "message": {"content": [None, 1, "x", {"type": None}], "usage": {"input_tokens": "9"}}},
        {"type": "succeeded", "message": {"content": "plain", "usage": {"cache_creation": None, "service_tier": 1}}},
        {"type": "errored", "error": None},
        {"type": "errored", "error": {"type": "error", "error": None, "request_id": 5}},
        {"type": "errored", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        {"type": "mystery"},
    ],
)
def test_odd_values_never_raise(outcome: dict[str, Any]) -> None:
    request = {"custom_id": "a", "params": {"model": None, "messages": [None, {"content": [{"type": "text"}]}]}}
    record = ADAPTER.extract("a", request, {"custom_id": "a", "result": outcome}, CTX)
    assert record.custom_id == "a"
    if outcome["type"] != "succeeded" or not isinstance(outcome.get("message"), dict):
        assert record.failure is not None


def test_an_unwrapped_error_object_still_gives_its_type() -> None:
    outcome = {"type": "errored", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    record = ADAPTER.extract("a", None, {"custom_id": "a", "result": outcome}, CTX)
    assert record.failure is not None
    assert (record.failure.type, record.failure.message) == ("overloaded_error", "Overloaded")


def test_detection_picks_anthropic_for_its_lines_and_the_name_finds_it() -> None:
    assert detect(next(iter(RESULTS.values())), request=False) is ADAPTER
    assert detect(next(iter(REQUESTS.values())), request=True) is ADAPTER
    assert adapter_named("anthropic") is ADAPTER
    openai_line = {"custom_id": "a", "response": {"status_code": 200, "body": {}}, "error": None}
    assert detect(openai_line, request=False) is not ADAPTER
