"""GenAI semantic-convention (and Traceloop/Respan) attributes from OpenAI request and response bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from batchtrace.genai_attributes import (
    DEFAULT_MAX_CONTENT_LENGTH,
    Attributes,
    ContentPolicy,
    operation_name,
    request_attributes,
    response_attributes,
)

from tests.unit.samples import chat_response_body

CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"
EMBEDDINGS = "/v1/embeddings"
COMPLETIONS = "/v1/completions"
CAPTURE = ContentPolicy()
NO_CAPTURE = ContentPolicy(capture=False)
MARKER = "ZEBRAQUOKKA"


def messages_of(attrs: Attributes, key: str) -> Any:
    value = attrs[key]
    assert isinstance(value, str)
    return json.loads(value)


def chat_body(**extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is 2+2?"},
        ],
        **extra,
    }


def tool_call_response() -> dict[str, Any]:
    return chat_response_body(
        choices=[
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "refusal": None,
                    "tool_calls": [
                        {
                            "id": "call_abc",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "c"}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ]
    )


# --- operation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "operation"),
    [
        (CHAT, "chat"),
        (RESPONSES, "chat"),
        (EMBEDDINGS, "embeddings"),
        (COMPLETIONS, "text_completion"),
        ("/v1/chat/completions/", "chat"),
    ],
)
def test_operation_name_per_endpoint(url: str, operation: str) -> None:
    """The span's operation (and so its name) follows the GenAI conventions for each batch endpoint."""
    assert operation_name(url) == operation


# --- chat requests ------------------------------------------------------------------------------


def test_chat_request_model_and_parameters() -> None:
    """The model and sampling parameters of the request become ``gen_ai.request.*`` attributes."""
    attrs = request_attributes(
        CHAT,
        chat_body(
            max_tokens=256,
            temperature=0.2,
            top_p=0.9,
            frequency_penalty=0.5,
            presence_penalty=-0.5,
            seed=7,
            stop=["\n\n", "END"],
            service_tier="flex",
        ),
        CAPTURE,
    )
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.request.max_tokens"] == 256
    assert attrs["gen_ai.request.temperature"] == 0.2
    assert attrs["gen_ai.request.top_p"] == 0.9
    assert attrs["gen_ai.request.frequency_penalty"] == 0.5
    assert attrs["gen_ai.request.presence_penalty"] == -0.5
    assert attrs["gen_ai.request.seed"] == 7
    assert attrs["gen_ai.request.stop_sequences"] == ["\n\n", "END"]
    assert attrs["openai.request.service_tier"] == "flex"


def test_max_completion_tokens_is_the_max_tokens() -> None:
    """Newer models take ``max_completion_tokens``; it is reported as ``gen_ai.request.max_tokens``."""
    attrs = request_attributes(CHAT, chat_body(max_completion_tokens=1000), CAPTURE)
    assert attrs["gen_ai.request.max_tokens"] == 1000


def test_single_stop_string_is_a_list_of_one() -> None:
    """``stop: "END"`` is reported as a one-element list of stop sequences."""
    assert request_attributes(CHAT, chat_body(stop="END"), CAPTURE)["gen_ai.request.stop_sequences"] == ["END"]


def test_chat_input_messages_in_genai_shape_with_system_instructions_apart() -> None:
    """Input messages follow the semconv JSON shape; system prompts go to ``gen_ai.system_instructions``."""
    attrs = request_attributes(CHAT, chat_body(), CAPTURE)
    assert messages_of(attrs, "gen_ai.input.messages") == [
        {"role": "user", "parts": [{"type": "text", "content": "What is 2+2?"}]}
    ]
    assert messages_of(attrs, "gen_ai.system_instructions") == [{"type": "text", "content": "You are terse."}]


def test_developer_messages_are_system_instructions() -> None:
    """The ``developer`` role (o-series models) counts as system instructions."""
    body = {
        "model": "o3-mini",
        "messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    }
    attrs = request_attributes(CHAT, body, CAPTURE)
    assert messages_of(attrs, "gen_ai.system_instructions") == [{"type": "text", "content": "Be brief."}]
    assert [m["role"] for m in messages_of(attrs, "gen_ai.input.messages")] == ["user"]


def test_content_part_lists_become_parts() -> None:
    """Content given as a list of typed parts keeps each text part; image URLs are referenced, not inlined."""
    body = {
        "model": "gpt-4o",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe this:"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 5000}},
                ],
            }
        ],
    }
    attrs = request_attributes(CHAT, body, CAPTURE)
    (message,) = messages_of(attrs, "gen_ai.input.messages")
    parts = message["parts"]
    assert parts[0] == {"type": "text", "content": "Describe this:"}
    assert parts[1]["uri"] == "https://example.com/cat.png"
    assert "AAAAAAAA" not in attrs["gen_ai.input.messages"]


def test_tool_results_and_earlier_tool_calls_in_the_conversation() -> None:
    """Tool result messages are ``tool_call_response`` parts; an assistant's tool call is a ``tool_call`` part."""
    body = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    }
    attrs = request_attributes(CHAT, body, CAPTURE)
    messages = messages_of(attrs, "gen_ai.input.messages")
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["parts"] == [
        {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
    ]
    assert messages[2]["parts"] == [{"type": "tool_call_response", "id": "call_1", "response": "18C and sunny"}]


def test_traceloop_entity_input_has_the_raw_messages() -> None:
    """Respan reads ``traceloop.entity.input``: the request's messages as JSON."""
    attrs = request_attributes(CHAT, chat_body(), CAPTURE)
    assert messages_of(attrs, "traceloop.entity.input") == chat_body()["messages"]


# --- chat responses ---------------------------------------------------------------------------


def test_chat_response_ids_model_and_finish_reasons() -> None:
    """The response id, model, finish reasons, fingerprint and service tier are recorded."""
    attrs = response_attributes(CHAT, chat_response_body(), CAPTURE)
    assert attrs["gen_ai.response.id"] == "chatcmpl-AbC123"
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["openai.response.system_fingerprint"] == "fp_0ba0d124f1"
    assert attrs["openai.response.service_tier"] == "default"


def test_chat_usage_with_aliases_cache_and_reasoning_tokens() -> None:
    """Token usage is reported under the semconv names and the prompt/completion aliases Respan reads."""
    body = chat_response_body(
        usage={
            "prompt_tokens": 1200,
            "completion_tokens": 300,
            "total_tokens": 1500,
            "prompt_tokens_details": {"cached_tokens": 1024},
            "completion_tokens_details": {"reasoning_tokens": 256},
        }
    )
    attrs = response_attributes(CHAT, body, CAPTURE)
    assert attrs["gen_ai.usage.input_tokens"] == 1200
    assert attrs["gen_ai.usage.output_tokens"] == 300
    assert attrs["gen_ai.usage.prompt_tokens"] == 1200
    assert attrs["gen_ai.usage.completion_tokens"] == 300
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 1024
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 256


def test_chat_output_messages_in_genai_shape() -> None:
    """The answer is in ``gen_ai.output.messages`` (semconv shape) and ``traceloop.entity.output``."""
    attrs = response_attributes(CHAT, chat_response_body(content="4"), CAPTURE)
    assert messages_of(attrs, "gen_ai.output.messages") == [
        {"role": "assistant", "parts": [{"type": "text", "content": "4"}], "finish_reason": "stop"}
    ]
    assert messages_of(attrs, "traceloop.entity.output")["content"] == "4"


def test_tool_calls_in_the_response_are_visible_with_parsed_arguments() -> None:
    """A response that calls a tool shows the call, its name and its arguments as JSON (not a string)."""
    attrs = response_attributes(CHAT, tool_call_response(), CAPTURE)
    assert attrs["gen_ai.response.finish_reasons"] == ["tool_calls"]
    (message,) = messages_of(attrs, "gen_ai.output.messages")
    assert message["parts"] == [
        {"type": "tool_call", "id": "call_abc", "name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}
    ]
    assert "get_weather" in str(attrs["traceloop.entity.output"])


def test_tool_call_with_unparseable_arguments_keeps_the_raw_string() -> None:
    """Models sometimes emit broken JSON arguments: they are shown as the raw string, not dropped."""
    body = tool_call_response()
    body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = '{"city": "Par'
    (message,) = messages_of(response_attributes(CHAT, body, CAPTURE), "gen_ai.output.messages")
    assert message["parts"][0]["arguments"] == '{"city": "Par'


def test_several_choices_give_several_finish_reasons() -> None:
    """With ``n`` > 1 every choice's finish reason and message is reported."""
    body = chat_response_body(
        choices=[
            {"index": 0, "message": {"role": "assistant", "content": "a"}, "finish_reason": "stop"},
            {"index": 1, "message": {"role": "assistant", "content": "b"}, "finish_reason": "length"},
        ]
    )
    attrs = response_attributes(CHAT, body, CAPTURE)
    assert attrs["gen_ai.response.finish_reasons"] == ["stop", "length"]
    assert len(messages_of(attrs, "gen_ai.output.messages")) == 2


def test_refusal_is_visible_in_the_output() -> None:
    """A refusal is part of what came back."""
    body = chat_response_body(
        choices=[
            {"message": {"role": "assistant", "content": None, "refusal": "I can't help."}, "finish_reason": "stop"}
        ]
    )
    assert "I can't help." in str(response_attributes(CHAT, body, CAPTURE)["gen_ai.output.messages"])


# --- other endpoints --------------------------------------------------------------------------


def test_responses_api_request_with_string_input_and_instructions() -> None:
    """``/v1/responses`` with a string ``input`` and ``instructions``: a user message and system instructions."""
    body = {"model": "gpt-4.1", "input": "Tell me a joke", "instructions": "Be funny.", "max_output_tokens": 100}
    attrs = request_attributes(RESPONSES, body, CAPTURE)
    assert attrs["gen_ai.request.model"] == "gpt-4.1"
    assert attrs["gen_ai.request.max_tokens"] == 100
    assert messages_of(attrs, "gen_ai.input.messages") == [
        {"role": "user", "parts": [{"type": "text", "content": "Tell me a joke"}]}
    ]
    assert messages_of(attrs, "gen_ai.system_instructions") == [{"type": "text", "content": "Be funny."}]


def test_responses_api_request_with_input_items() -> None:
    """``/v1/responses`` with input items: messages with typed content and function call outputs."""
    body = {
        "model": "gpt-4.1",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
            {"type": "message", "role": "assistant", "content": "Checking."},
            {"type": "function_call_output", "call_id": "call_9", "output": "sunny"},
        ],
    }
    messages = messages_of(request_attributes(RESPONSES, body, CAPTURE), "gen_ai.input.messages")
    assert messages == [
        {"role": "user", "parts": [{"type": "text", "content": "Weather?"}]},
        {"role": "assistant", "parts": [{"type": "text", "content": "Checking."}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_9", "response": "sunny"}]},
    ]


def test_responses_api_response_with_message_and_function_call() -> None:
    """``/v1/responses`` output: message text and function calls, usage from ``input_tokens``/``output_tokens``."""
    body = {
        "id": "resp_123",
        "object": "response",
        "created_at": 1_732_000_000,
        "status": "completed",
        "model": "gpt-4.1-2025-04-14",
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "Let me check.", "annotations": []}],
            },
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_7",
                "name": "get_weather",
                "arguments": '{"city": "Oslo"}',
            },
        ],
        "incomplete_details": None,
        "usage": {
            "input_tokens": 50,
            "input_tokens_details": {"cached_tokens": 10},
            "output_tokens": 20,
            "output_tokens_details": {"reasoning_tokens": 5},
            "total_tokens": 70,
        },
    }
    attrs = response_attributes(RESPONSES, body, CAPTURE)
    assert attrs["gen_ai.response.id"] == "resp_123"
    assert attrs["gen_ai.response.model"] == "gpt-4.1-2025-04-14"
    assert attrs["gen_ai.usage.input_tokens"] == 50
    assert attrs["gen_ai.usage.output_tokens"] == 20
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 10
    assert attrs["gen_ai.usage.reasoning.output_tokens"] == 5
    (message,) = messages_of(attrs, "gen_ai.output.messages")
    assert message["role"] == "assistant"
    assert message["parts"] == [
        {"type": "text", "content": "Let me check."},
        {"type": "tool_call", "id": "call_7", "name": "get_weather", "arguments": {"city": "Oslo"}},
    ]
    assert attrs["gen_ai.response.finish_reasons"]


def test_embeddings_have_dimension_count_and_no_output_messages() -> None:
    """An embeddings result reports the vector size and tokens, never the vector or output messages."""
    request = request_attributes(EMBEDDINGS, {"model": "text-embedding-3-small", "input": "hello world"}, CAPTURE)
    assert request["gen_ai.request.model"] == "text-embedding-3-small"
    body = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.0123] * 1536}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }
    attrs = response_attributes(EMBEDDINGS, body, CAPTURE)
    assert attrs["gen_ai.embeddings.dimension.count"] == 1536
    assert attrs["gen_ai.usage.input_tokens"] == 2
    assert "gen_ai.output.messages" not in attrs
    assert not any("0.0123" in str(value) for value in attrs.values())


def test_legacy_completions_prompt_and_text() -> None:
    """``/v1/completions``: the prompt is the input message and the choice's ``text`` the output."""
    request = request_attributes(COMPLETIONS, {"model": "gpt-3.5-turbo-instruct", "prompt": "Once upon"}, CAPTURE)
    assert messages_of(request, "gen_ai.input.messages") == [
        {"role": "user", "parts": [{"type": "text", "content": "Once upon"}]}
    ]
    body = {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1_732_000_000,
        "model": "gpt-3.5-turbo-instruct",
        "choices": [{"text": " a time", "index": 0, "logprobs": None, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5},
    }
    attrs = response_attributes(COMPLETIONS, body, CAPTURE)
    assert attrs["gen_ai.response.finish_reasons"] == ["length"]
    assert " a time" in str(attrs["gen_ai.output.messages"])
    assert attrs["gen_ai.usage.output_tokens"] == 3


# --- content capture and truncation -------------------------------------------------------------


def string_values(attrs: Attributes) -> list[str]:
    values: list[str] = []
    for value in attrs.values():
        if isinstance(value, str):
            values.append(value)
        elif isinstance(value, list):
            values.extend(str(item) for item in value)
    return values


CONTENT_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        CHAT,
        {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": f"system {MARKER}"},
                {"role": "user", "content": [{"type": "text", "text": f"user {MARKER}"}]},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": f'{{"q": "{MARKER}"}}'}}],
                },
                {"role": "tool", "tool_call_id": "c", "content": f"tool {MARKER}"},
            ],
            "tools": [{"type": "function", "function": {"name": "f", "description": f"desc {MARKER}"}}],
        },
        chat_response_body(content=f"answer {MARKER}"),
    ),
    (
        RESPONSES,
        {"model": "gpt-4.1", "input": f"in {MARKER}", "instructions": f"inst {MARKER}"},
        {
            "id": "resp_1",
            "model": "gpt-4.1",
            "output": [
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": f"out {MARKER}"}]},
                {"type": "function_call", "call_id": "c", "name": "f", "arguments": f'{{"q": "{MARKER}"}}'},
            ],
            "usage": {"input_tokens": 5, "output_tokens": 6},
        },
    ),
    (
        COMPLETIONS,
        {"model": "gpt-3.5-turbo-instruct", "prompt": [f"p {MARKER}"]},
        {
            "model": "m",
            "choices": [{"text": f"t {MARKER}", "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 6},
        },
    ),
    (
        EMBEDDINGS,
        {"model": "text-embedding-3-small", "input": [f"e {MARKER}"]},
        {"model": "m", "data": [{"embedding": [0.1, 0.2]}], "usage": {"prompt_tokens": 5, "total_tokens": 5}},
    ),
]


@pytest.mark.parametrize(("url", "request_body", "response_body"), CONTENT_CASES)
def test_content_capture_off_removes_all_text_but_keeps_tokens(
    url: str, request_body: dict[str, Any], response_body: dict[str, Any]
) -> None:
    """With capture off no message text appears in any attribute; model, counts and tokens remain."""
    captured = {**request_attributes(url, request_body, CAPTURE), **response_attributes(url, response_body, CAPTURE)}
    assert any(MARKER in value for value in string_values(captured)), "the marker must be captured when on"
    attrs = {**request_attributes(url, request_body, NO_CAPTURE), **response_attributes(url, response_body, NO_CAPTURE)}
    leaked = [key for key, value in attrs.items() if MARKER in str(value)]
    assert leaked == []
    for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.request.model"):
        if key in captured:
            assert attrs[key] == captured[key]
    assert isinstance(attrs["gen_ai.usage.input_tokens"], int)


def test_truncation_keeps_valid_json_with_a_marker() -> None:
    """A 100 KB message with a 1000-char limit is cut, marked "[truncated", and the JSON still parses."""
    policy = ContentPolicy(max_length=1000)
    huge = "x" * 100_000
    attrs = request_attributes(CHAT, {"model": "m", "messages": [{"role": "user", "content": huge}]}, policy)
    (message,) = messages_of(attrs, "gen_ai.input.messages")
    content = message["parts"][0]["content"]
    assert content.startswith("x" * 1000)
    assert "[truncated" in content
    assert len(content) < 1100
    raw = messages_of(attrs, "traceloop.entity.input")
    assert "[truncated" in raw[0]["content"]
    assert len(raw[0]["content"]) < 1100
    out = response_attributes(CHAT, chat_response_body(content=huge), policy)
    assert all(len(value) < 2000 for value in string_values(out))
    assert "[truncated" in messages_of(out, "gen_ai.output.messages")[0]["parts"][0]["content"]


def test_short_content_is_not_truncated() -> None:
    """Content within the limit is kept exactly."""
    policy = ContentPolicy(max_length=10)
    attrs = request_attributes(CHAT, {"model": "m", "messages": [{"role": "user", "content": "0123456789"}]}, policy)
    assert messages_of(attrs, "gen_ai.input.messages")[0]["parts"][0]["content"] == "0123456789"


def test_truncation_does_not_break_multibyte_text() -> None:
    """Cutting non-ASCII text (emoji, CJK) still yields valid JSON and valid text."""
    policy = ContentPolicy(max_length=5)
    attrs = request_attributes(CHAT, {"model": "m", "messages": [{"role": "user", "content": "😀" * 50}]}, policy)
    content = messages_of(attrs, "gen_ai.input.messages")[0]["parts"][0]["content"]
    assert content.startswith("😀" * 5)
    assert "[truncated" in content


# --- nulls everywhere ---------------------------------------------------------------------------

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
    "input": None,
    "instructions": None,
    "prompt": None,
}

NULL_RESPONSE: dict[str, Any] = {
    "id": None,
    "model": None,
    "created": None,
    "system_fingerprint": None,
    "service_tier": None,
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
    "output": [None, {"type": "message", "content": None}, {"type": "function_call", "arguments": None}],
    "incomplete_details": None,
    "data": [None],
}


def valid_attribute_value(value: object) -> bool:
    if isinstance(value, str | bool | int | float):
        return True
    return isinstance(value, list) and all(isinstance(item, str | bool | int | float) for item in value)


@pytest.mark.parametrize("url", [CHAT, RESPONSES, EMBEDDINGS, COMPLETIONS])
@pytest.mark.parametrize("policy", [CAPTURE, NO_CAPTURE], ids=["capture", "no-capture"])
def test_null_in_every_optional_field_never_raises(url: str, policy: ContentPolicy) -> None:
    """``null`` anywhere in a body is tolerated, and no attribute ends up ``None`` (which OTLP cannot send)."""
    for attrs in (request_attributes(url, NULL_REQUEST, policy), response_attributes(url, NULL_RESPONSE, policy)):
        for key, value in attrs.items():
            assert valid_attribute_value(value), (key, value)
        for key in ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"):
            if key in attrs:
                json.loads(str(attrs[key]))


@pytest.mark.parametrize("url", [CHAT, RESPONSES, EMBEDDINGS, COMPLETIONS])
def test_empty_bodies_give_no_junk(url: str) -> None:
    """An empty body gives no model, no messages and no tokens, rather than placeholder values."""
    attrs = {**request_attributes(url, {}, CAPTURE), **response_attributes(url, {}, CAPTURE)}
    assert "gen_ai.request.model" not in attrs
    assert "gen_ai.usage.input_tokens" not in attrs
    assert "gen_ai.input.messages" not in attrs


def test_booleans_are_not_numbers() -> None:
    """``temperature: true`` is not a temperature of 1, and ``prompt_tokens: true`` is not a token count."""
    attrs = request_attributes(CHAT, chat_body(temperature=True, max_tokens=False), CAPTURE)
    assert "gen_ai.request.temperature" not in attrs
    assert "gen_ai.request.max_tokens" not in attrs
    usage = response_attributes(CHAT, chat_response_body(usage={"prompt_tokens": True}), CAPTURE)
    assert "gen_ai.usage.input_tokens" not in usage


# --- ContentPolicy.from_env ---------------------------------------------------------------------


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


def test_otel_genai_no_content_mode_switches_capture_off() -> None:
    """The latest OTel GenAI utilities spell "off" as ``NO_CONTENT``; message text must then stay out."""
    assert not ContentPolicy.from_env({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "NO_CONTENT"}).capture


def test_max_content_length_from_env() -> None:
    """``BATCHTRACE_MAX_CONTENT_LENGTH`` sets the truncation limit; junk falls back to the default."""
    assert ContentPolicy.from_env({"BATCHTRACE_MAX_CONTENT_LENGTH": "500"}).max_length == 500
    assert ContentPolicy.from_env({"BATCHTRACE_MAX_CONTENT_LENGTH": " 2000 "}).max_length == 2000
    for junk in ("", "abc", "0", "-5", "1e3"):
        assert ContentPolicy.from_env({"BATCHTRACE_MAX_CONTENT_LENGTH": junk}).max_length == DEFAULT_MAX_CONTENT_LENGTH
