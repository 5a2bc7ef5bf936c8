"""The Gemini API batch adapter, run over the fixture files the way a user's batch would come back.

``requests.jsonl``/``results.jsonl`` are the documented shapes (see tests/fixtures/formats/README.md);
``edge.requests.jsonl``/``edge.results.jsonl`` add the cases the guide describes but the first
pair lacks: the Python SDK's snake_case request (with inline image bytes, every generation
parameter and two candidates), a prompt blocked by ``promptFeedback``, an error status with its
``status`` name, code execution parts, a result with no request and a request with no result.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from batchtrace.extract import adapter_named, detect
from batchtrace.extract.base import ExtractContext, keep
from batchtrace.extract.gemini import ADAPTER
from batchtrace.record import Record

from tests.support.fixtures import FORMATS, lines

FIXTURES = FORMATS / "gemini"
CTX = ExtractContext(cut=keep)


def records(prefix: str = "", ctx: ExtractContext = CTX) -> dict[str, Record]:
    """Every request/result pair of a fixture set through the adapter, as the pipeline pairs them."""
    requests = {ADAPTER.request_id(line): line for line in lines(FIXTURES / f"{prefix}requests.jsonl")}
    out: dict[str, Record] = {}
    for line_no, result in enumerate(lines(FIXTURES / f"{prefix}results.jsonl"), start=1):
        key = ADAPTER.result_id(result, line_no)
        assert key is not None, result
        out[key] = ADAPTER.extract(key, requests.pop(key, None), result, ctx)
    for key, request in requests.items():
        assert key is not None
        out[key] = ADAPTER.extract(key, request, None, ctx)
    return out


@pytest.fixture(scope="module")
def main() -> dict[str, Record]:
    return records()


@pytest.fixture(scope="module")
def edge() -> dict[str, Record]:
    return records("edge.")


def texts(messages: list[dict[str, Any]], kind: str = "text") -> list[str]:
    return [p["content"] for m in messages for p in m["parts"] if p["type"] == kind]


# --------------------------------------------------------------------------- identity and detection


def test_every_record_is_generate_content_for_the_gemini_provider(main: dict[str, Record]) -> None:
    assert len(main) == 8
    for record in main.values():
        assert record.provider == "gcp.gemini"
        assert record.operation == "generate_content"
        assert not record.orphan and not record.no_result


def test_lines_name_no_model_so_the_request_model_is_only_ever_the_callers(main: dict[str, Record]) -> None:
    """The response's modelVersion names the span; the request model is ``--model`` or nothing."""
    record = main["recipe-fr-1"]
    assert record.request_model is None
    assert record.response_model == "gemini-2.5-flash"
    assert record.model == "gemini-2.5-flash"
    assert record.response_id == "UD1CE61i4Klbg7Ny0DlXg1"
    request = lines(FIXTURES / "requests.jsonl")[0]
    result = lines(FIXTURES / "results.jsonl")[0]
    given = ADAPTER.extract("recipe-fr-1", request, result, ExtractContext(cut=keep, model="gemini-2.5-flash-lite"))
    assert given.request_model == "gemini-2.5-flash-lite"
    assert given.response_model == "gemini-2.5-flash"


def test_a_model_named_in_the_request_is_used_without_its_resource_prefix() -> None:
    request = {"key": "k", "request": {"model": "models/gemini-2.5-pro", "contents": []}}
    assert ADAPTER.extract("k", request, None, CTX).request_model == "gemini-2.5-pro"


def test_detection_picks_gemini_for_its_lines_and_the_names_select_it() -> None:
    assert all(detect(line, request=True) is ADAPTER for line in lines(FIXTURES / "requests.jsonl"))
    assert all(detect(line, request=False) is ADAPTER for line in lines(FIXTURES / "results.jsonl"))
    assert adapter_named("gemini") is ADAPTER
    assert adapter_named("google") is ADAPTER
    assert adapter_named("gcp.gemini") is ADAPTER


@pytest.mark.parametrize(
    "line",
    [
        {"key": "a"},
        {"key": "a", "response": None},
        {"key": "a", "response": "text"},
        {"key": "a", "response": [1]},
        {"key": None, "response": {}},
        {"key": "", "response": {}},
        {"key": True, "response": {}},
        {"custom_id": "a", "response": {"status_code": 200, "body": {}}},
        {"status": "", "processed_time": "2026-08-17T22:14:05.311+00:00", "request": {}, "response": {}},
    ],
)
def test_a_result_line_of_the_wrong_shape_has_no_id(line: dict[str, Any]) -> None:
    assert ADAPTER.result_id(line, 3) is None


@pytest.mark.parametrize(
    "line", [{"key": "a"}, {"key": "a", "request": None}, {"request": {}}, {"key": 1.5, "request": {}}]
)
def test_a_request_line_of_the_wrong_shape_has_no_id(line: dict[str, Any]) -> None:
    assert ADAPTER.request_id(line) is None


# --------------------------------------------------------------------------- messages


def test_multilingual_and_escaped_text_round_trips(main: dict[str, Record]) -> None:
    assert texts(main["recipe-fr-1"].input_messages) == ["Donne la recette de la tarte Tatin en 5 étapes."]
    assert texts(main["recipe-fr-1"].output_messages)[0].startswith("1. Préchauffez le four à 200 °C.")
    # The Japanese request and the emoji answer are written with \u escapes in the files.
    assert main["book-ja-2"].system_instructions == [
        {"type": "text", "content": "あなたはレストラン予約アシスタントです。"}
    ]
    assert texts(main["book-ja-2"].input_messages) == ["今夜7時に「すし匠」で4名予約してください。"]
    assert texts(main["emoji-5"].output_messages) == ["🏕️🔥🌲🌌😴"]


def test_a_function_call_is_a_tool_call_part_with_parsed_arguments(main: dict[str, Record]) -> None:
    record = main["book-ja-2"]
    [reply] = record.output_messages
    assert reply["role"] == "assistant"
    assert reply["parts"] == [
        {
            "type": "tool_call",
            "id": None,
            "name": "book_table",
            "arguments": {"restaurant": "すし匠", "time": "2026-08-17T19:00:00", "guests": 4},
        }
    ]
    assert record.finish_reasons == ["tool_call"]  # STOP on a function call: the call is the outcome
    assert record.tool_definitions is not None
    [tool] = record.tool_definitions
    assert tool["type"] == "function" and tool["name"] == "book_table"
    assert tool["parameters"]["required"] == ["restaurant", "time", "guests"]


def test_a_thread_maps_roles_tool_calls_and_tool_responses(main: dict[str, Record]) -> None:
    messages = main["thread-de-4"].input_messages
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "tool", "assistant", "user"]
    assert messages[3]["parts"][0]["arguments"] == {
        "restaurant": "Figlmüller",
        "time": "2026-08-21T19:30:00",
        "guests": 6,
    }
    assert messages[4]["parts"] == [
        {
            "type": "tool_call_response",
            "id": None,
            "name": "book_table",
            "response": {"status": "waitlisted", "position": 2},
        }
    ]
    assert main["thread-de-4"].params == {"max_tokens": 64}


def test_thoughts_are_reasoning_parts_before_the_answer(main: dict[str, Record]) -> None:
    record = main["math-ru-3"]
    [reply] = record.output_messages
    assert [p["type"] for p in reply["parts"]] == ["reasoning", "text"]
    assert reply["parts"][0]["content"].startswith("**Multiplying step by step**")
    assert reply["parts"][1]["content"] == "17 \u00d7 23 = 391: 17 \u00d7 20 = 340, плюс 17 \u00d7 3 = 51."
    assert record.extra["batchtrace.gemini.request.thinking_budget"] == 1024


def test_images_are_media_parts_never_inline_bytes(edge: dict[str, Record]) -> None:
    record = edge["sdk-snake-9"]
    [message] = record.input_messages
    assert message["parts"][1] == {
        "type": "blob",
        "modality": "image",
        "mime_type": "image/png",
        "content": "[inline data omitted]",
    }
    assert "iVBORw0KGgo" not in json.dumps(record.raw_input)
    assert "iVBORw0KGgo" not in json.dumps(record.input_messages)
    pdf = edge["lost-13"].input_messages[0]["parts"][0]
    assert pdf == {
        "type": "uri",
        "modality": "file",
        "mime_type": "application/pdf",
        "uri": "https://generativelanguage.googleapis.com/v1beta/files/abc123",
    }


def test_snake_case_requests_are_read_like_camel_case(edge: dict[str, Record]) -> None:
    """The Python SDK writes generation_config, system_instruction and inline_data."""
    record = edge["sdk-snake-9"]
    assert record.system_instructions == [{"type": "text", "content": "Antworte knapp."}]
    assert record.params == {
        "max_tokens": 128,
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 40,
        "seed": 7,
        "choice_count": 2,
        "stop_sequences": ["END"],
    }
    assert record.output_type == "json"
    assert record.extra["batchtrace.gemini.request.thinking_budget"] == 0


def test_every_candidate_is_an_output_message(edge: dict[str, Record]) -> None:
    record = edge["sdk-snake-9"]
    assert texts(record.output_messages) == ['{"objekt": "ein einzelner Pixel"}', '{"objekt": "Pixel"}']
    assert record.finish_reasons == ["stop", "stop"]
    assert record.raw_output == {"parts": [{"text": '{"objekt": "ein einzelner Pixel"}'}], "role": "model"}


def test_code_execution_is_a_tool_call_and_its_result(edge: dict[str, Record]) -> None:
    record = edge["code-12"]
    parts = record.output_messages[0]["parts"]
    assert [p["type"] for p in parts] == ["tool_call", "tool_call_response", "text"]
    assert parts[0]["name"] == "code_execution"
    assert parts[0]["arguments"]["language"] == "PYTHON"
    assert parts[1]["response"] == {"outcome": "OUTCOME_OK", "output": "5117\n"}
    assert record.tool_definitions == [{"type": "codeExecution"}]
    assert record.extra["batchtrace.gemini.request.thinking_level"] == "low"
    assert record.extra["batchtrace.gemini.usage.tool_use_prompt_tokens"] == 30


# --------------------------------------------------------------------------- usage and finish reasons


def test_usage_has_the_shared_meaning(main: dict[str, Record]) -> None:
    """input = promptTokenCount (cached tokens included); output = candidates + thoughts."""
    thinking = main["math-ru-3"].usage
    assert (thinking.input_tokens, thinking.output_tokens, thinking.reasoning_tokens) == (19, 33 + 254, 254)
    assert thinking.total_tokens == 306 == 19 + 33 + 254  # totalTokenCount = input + output here
    cached = main["thread-de-4"].usage
    assert (cached.input_tokens, cached.cache_read_tokens, cached.output_tokens) == (1166, 1024, 64)
    plain = main["emoji-5"].usage
    assert (plain.input_tokens, plain.output_tokens, plain.reasoning_tokens, plain.cache_read_tokens) == (
        12,
        6,
        None,
        None,
    )


def test_a_count_left_out_of_the_usage_block_is_zero(main: dict[str, Record]) -> None:
    """Gemini omits zero counts: a safety-blocked candidate has no candidatesTokenCount."""
    usage = main["unsafe-6"].usage
    assert (usage.input_tokens, usage.output_tokens) == (15, 0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "error"),
        ("OTHER", "other"),
    ],
)
def test_finish_reasons_map_to_the_semantic_conventions(raw: str, expected: str) -> None:
    result = {"key": "k", "response": {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": raw}]}}
    assert ADAPTER.extract("k", None, result, CTX).finish_reasons == [expected]


def test_fixture_finish_reasons(main: dict[str, Record]) -> None:
    assert main["recipe-fr-1"].finish_reasons == ["stop"]
    assert main["thread-de-4"].finish_reasons == ["length"]
    unsafe = main["unsafe-6"]
    assert unsafe.finish_reasons == ["content_filter"]
    assert unsafe.failure is None
    assert unsafe.output_messages == [{"role": "assistant", "parts": [], "finish_reason": "content_filter"}]
    assert unsafe.extra["batchtrace.gemini.blocked_categories"] == ["HARM_CATEGORY_DANGEROUS_CONTENT"]


def test_a_blocked_prompt_is_a_content_filter_outcome_not_a_crash(edge: dict[str, Record]) -> None:
    record = edge["blocked-10"]
    assert record.failure is None
    assert record.output_messages == []
    assert record.finish_reasons == ["content_filter"]
    assert record.extra["batchtrace.gemini.prompt.block_reason"] == "PROHIBITED_CONTENT"
    assert (record.usage.input_tokens, record.usage.output_tokens) == (9, 0)


# --------------------------------------------------------------------------- failures, orphans, no result


def test_error_lines_are_failures_with_their_status(main: dict[str, Record], edge: dict[str, Record]) -> None:
    bad = main["bad-role-7"]
    assert bad.failure is not None
    assert (bad.failure.type, bad.failure.message, bad.http_status) == (
        "400",
        "Please use a valid role: user, model.",
        400,
    )
    assert not bad.failure.expired
    assert bad.output_messages == [] and not bad.usage.reported
    assert texts(bad.input_messages) == ["Hallo"]
    server = main["server-8"]
    assert server.failure is not None and (server.failure.type, server.http_status) == ("500", 500)
    quota = edge["quota-11"]
    assert quota.failure is not None
    assert (quota.failure.type, quota.http_status) == ("RESOURCE_EXHAUSTED", 429)
    assert texts(quota.input_messages) == ["Привіт! Як справи?"]


def test_a_grpc_numbered_status_is_named() -> None:
    record = ADAPTER.extract("k", None, {"key": "k", "error": {"code": 3, "message": "bad"}}, CTX)
    assert record.failure is not None
    assert (record.failure.type, record.failure.message, record.http_status) == ("INVALID_ARGUMENT", "bad", None)


def test_a_result_without_its_request_is_an_orphan_and_a_request_without_result_has_none(
    edge: dict[str, Record],
) -> None:
    ghost = edge["ghost-14"]
    assert ghost.orphan and not ghost.no_result and ghost.failure is None
    assert texts(ghost.output_messages) == ["Bonjour 👋"]
    lost = edge["lost-13"]
    assert lost.no_result and not lost.orphan
    assert lost.failure is not None and lost.failure.type == "no_result"
    assert texts(lost.input_messages) == ["Fasse das PDF zusammen."]


# --------------------------------------------------------------------------- content limits and odd values


def test_every_text_value_is_cut_to_the_limit() -> None:
    ctx = ExtractContext(cut=lambda text: text[:4])
    record = records(ctx=ctx)["thread-de-4"]
    assert texts(record.input_messages)[0] == "Ich "
    assert texts(record.output_messages) == ["Eine"]
    assert record.input_messages[3]["parts"][0]["arguments"]["restaurant"] == "Figl"
    assert record.raw_input[0]["parts"][0]["text"] == "Ich "
    assert record.raw_output["parts"][0]["text"] == "Eine"


@pytest.mark.parametrize(
    "response",
    [
        None,
        {},
        {"candidates": None, "usageMetadata": None},
        {"candidates": [None, 3, {"content": None, "finishReason": 7}]},
        {"candidates": [{"content": {"parts": [None, {"text": None}, {"thought": True}, {"videoMetadata": {}}]}}]},
        {"candidates": "x", "usageMetadata": {"promptTokenCount": "12"}, "promptFeedback": "blocked"},
        {"candidates": [{"content": {"parts": [{"functionCall": {"name": None, "args": '{"a": 1}'}}]}}]},
        {"modelVersion": 5, "responseId": ["x"], "createTime": "yesterday"},
    ],
)
def test_odd_values_never_raise(response: Any) -> None:
    result = {"key": "k", "response": response}
    request = {"key": "k", "request": {"contents": [None, {"parts": "x"}], "generationConfig": [], "tools": {}}}
    record = ADAPTER.extract("k", request, result, CTX)
    assert record.custom_id == "k"
    weird = ADAPTER.extract(
        "k", {"key": "k", "request": {"systemInstruction": 5, "contents": "x"}}, {"key": "k", "error": "x"}, CTX
    )
    assert weird.failure is not None
