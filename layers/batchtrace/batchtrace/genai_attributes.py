"""OpenAI request/response bodies as OpenTelemetry GenAI attributes (plus Traceloop/Respan's).

Pure functions of the two bodies: no I/O, no OTel objects, so they are cheap to test and to
run 50,000 times. Message content is captured in the GenAI semantic-convention JSON forms
(``gen_ai.input.messages``, ``gen_ai.output.messages``, ``gen_ai.system_instructions``) and
once more, raw, in the Traceloop attributes Respan reads; each string leaf is truncated to
the configured limit so the JSON stays valid.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

AttributeValue = str | bool | int | float | list[str] | list[int] | list[float]
Attributes = dict[str, AttributeValue]

_OPERATIONS = {
    "/v1/chat/completions": "chat",
    "/v1/responses": "chat",
    "/v1/completions": "text_completion",
    "/v1/embeddings": "embeddings",
}

#: Request parameters that map one to one onto ``gen_ai.request.*`` attributes.
_REQUEST_PARAMS: dict[str, str] = {
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "max_output_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
    "n": "gen_ai.request.choice.count",
}


DEFAULT_MAX_CONTENT_LENGTH = 16_384
_CAPTURE_OFF = frozenset({"false", "0", "no", "off", "no_content", "event_only"})


@dataclass(slots=True, frozen=True)
class ContentPolicy:
    """Whether message text is captured, and how long a single text value may be."""

    capture: bool = True
    max_length: int = DEFAULT_MAX_CONTENT_LENGTH
    #: False when the caller knows no value can be longer than ``max_length`` (a short line).
    truncate: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ContentPolicy:
        """``BATCHTRACE_CAPTURE_CONTENT`` (or OTel's GenAI capture switch) and ``BATCHTRACE_MAX_CONTENT_LENGTH``."""
        env = os.environ if env is None else env
        switch = (env.get("BATCHTRACE_CAPTURE_CONTENT") or "").strip().lower()
        if not switch:
            # OTel GenAI's switch: true/false, or a mode where NO_CONTENT and EVENT_ONLY keep
            # content off spans (batchtrace emits no events).
            switch = (env.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT") or "true").strip().lower()
        raw_limit = env.get("BATCHTRACE_MAX_CONTENT_LENGTH", "").strip()
        limit = int(raw_limit) if raw_limit.isdigit() and int(raw_limit) > 0 else DEFAULT_MAX_CONTENT_LENGTH
        return cls(capture=switch not in _CAPTURE_OFF, max_length=limit)

    def for_line(self, line_length: int) -> ContentPolicy:
        """This policy for values decoded from a raw line of ``line_length`` bytes.

        A JSON string never decodes to more characters than its line has bytes, so a line no
        longer than ``max_length`` needs no truncation, and skipping the walk is measurable.
        """
        if line_length <= self.max_length and self.truncate:
            return ContentPolicy(self.capture, self.max_length, truncate=False)
        return self

    def cutter(self) -> Callable[[str], str]:
        return self.cut if self.truncate else _keep

    def cut(self, text: str) -> str:
        if len(text) <= self.max_length:
            return text
        return f"{text[: self.max_length]}…[truncated {len(text) - self.max_length} chars]"


def operation_name(url: str) -> str:
    """The ``gen_ai.operation.name`` for a batch endpoint (``chat`` for chat completions)."""
    path = url.split("?", 1)[0].rstrip("/")
    return _OPERATIONS.get(path) or path.rsplit("/", 1)[-1] or "chat"


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _keep(text: str) -> str:
    return text


def _cut_tree(value: Any, cut: Callable[[str], str]) -> Any:
    """A copy of a JSON value with every string leaf passed through ``cut`` (itself if no cut)."""
    if cut is _keep:
        return value
    if isinstance(value, str):
        return cut(value)
    if isinstance(value, list):
        return [_cut_tree(item, cut) for item in value]
    if isinstance(value, dict):
        return {key: _cut_tree(item, cut) for key, item in value.items()}
    return value


def _parse_arguments(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return orjson.loads(arguments)
        except orjson.JSONDecodeError:
            return arguments
    return arguments


def _content_parts(content: Any, cut: Callable[[str], str]) -> list[dict[str, Any]]:
    """Chat content (a string or a list of typed parts) as GenAI message parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": cut(content)}]
    parts: list[dict[str, Any]] = []
    if not isinstance(content, list):
        return [{"type": "text", "content": cut(str(content))}]
    for item in content:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind in ("text", "input_text", "output_text"):
            parts.append({"type": "text", "content": cut(str(item.get("text") or ""))})
        elif kind in ("image_url", "input_image"):
            image = item.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            url = str(url or "")
            if url.startswith("data:"):
                parts.append({"type": "blob", "modality": "image", "content": "[inline data omitted]"})
            else:
                parts.append({"type": "uri", "modality": "image", "uri": cut(url)})
        elif kind in ("input_audio", "input_file", "file"):
            parts.append({"type": "blob", "modality": "audio" if kind == "input_audio" else "file"})
        elif kind == "refusal":
            parts.append({"type": "text", "content": cut(str(item.get("refusal") or ""))})
    return parts


def _tool_call_parts(tool_calls: Any, cut: Callable[[str], str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if not isinstance(tool_calls, list):
        return parts
    for call in tool_calls:
        if not isinstance(call, dict):
            continue
        function = _as_dict(call.get("function"))
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": function.get("name") or call.get("name"),
                "arguments": _cut_tree(_parse_arguments(function.get("arguments")), cut),
            }
        )
    return parts


def chat_input_messages(messages: Any, cut: Callable[[str], str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(input messages, system instructions)`` of a chat request in GenAI form."""
    inputs: list[dict[str, Any]] = []
    system: list[dict[str, Any]] = []
    if not isinstance(messages, list):
        return inputs, system
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = str(message.get("role") or "user")
        parts = _content_parts(message.get("content"), cut)
        if role in ("system", "developer"):
            system.extend(parts)
            continue
        if role == "tool":
            parts = [
                {
                    "type": "tool_call_response",
                    "id": message.get("tool_call_id"),
                    "response": _cut_tree(message.get("content"), cut),
                }
            ]
        parts.extend(_tool_call_parts(message.get("tool_calls"), cut))
        inputs.append({"role": role, "parts": parts})
    return inputs, system


def chat_output_messages(choices: Any, cut: Callable[[str], str]) -> list[dict[str, Any]]:
    outputs: list[dict[str, Any]] = []
    if not isinstance(choices, list):
        return outputs
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        message = _as_dict(choice.get("message"))
        parts = _content_parts(message.get("content"), cut)
        if message.get("refusal"):
            parts.append({"type": "text", "content": cut(str(message["refusal"]))})
        parts.extend(_tool_call_parts(message.get("tool_calls"), cut))
        if "text" in choice and isinstance(choice.get("text"), str):
            parts.append({"type": "text", "content": cut(choice["text"])})
        outputs.append(
            {
                "role": str(message.get("role") or "assistant"),
                "parts": parts,
                "finish_reason": str(choice.get("finish_reason") or ""),
            }
        )
    return outputs


def _responses_input(body: Mapping[str, Any], cut: Callable[[str], str]) -> list[dict[str, Any]]:
    items = body.get("input")
    if isinstance(items, str):
        return [{"role": "user", "parts": [{"type": "text", "content": cut(items)}]}]
    inputs: list[dict[str, Any]] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call_output":
            inputs.append(
                {
                    "role": "tool",
                    "parts": [
                        {
                            "type": "tool_call_response",
                            "id": item.get("call_id"),
                            "response": _cut_tree(item.get("output"), cut),
                        }
                    ],
                }
            )
        elif "role" in item:
            inputs.append({"role": str(item["role"]), "parts": _content_parts(item.get("content"), cut)})
    return inputs


def _responses_output(body: Mapping[str, Any], cut: Callable[[str], str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for item in body.get("output") or []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            parts.extend(_content_parts(item.get("content"), cut))
        elif item.get("type") == "function_call":
            parts.append(
                {
                    "type": "tool_call",
                    "id": item.get("call_id"),
                    "name": item.get("name"),
                    "arguments": _cut_tree(_parse_arguments(item.get("arguments")), cut),
                }
            )
    if not parts and not body.get("output"):
        return []
    incomplete = body.get("incomplete_details")
    reason = "stop"
    if isinstance(incomplete, dict) and incomplete.get("reason"):
        reason = str(incomplete["reason"])
    elif any(part["type"] == "tool_call" for part in parts):
        reason = "tool_call"
    return [{"role": "assistant", "parts": parts, "finish_reason": reason}]


def request_attributes(url: str, body: Mapping[str, Any], policy: ContentPolicy) -> Attributes:
    """Attributes that describe what was asked: model, parameters and (if captured) input."""
    attrs: Attributes = {}
    model = body.get("model")
    if isinstance(model, str):
        attrs["gen_ai.request.model"] = model
    for key, name in _REQUEST_PARAMS.items():
        value = body.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attrs[name] = value
    stop = body.get("stop")
    if isinstance(stop, str):
        attrs["gen_ai.request.stop_sequences"] = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        attrs["gen_ai.request.stop_sequences"] = list(stop)
    tier = body.get("service_tier")
    if isinstance(tier, str):
        attrs["openai.request.service_tier"] = tier
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and isinstance(response_format.get("type"), str):
        attrs["gen_ai.output.type"] = "json" if "json" in response_format["type"] else "text"
    tools = body.get("tools")
    if isinstance(tools, list):
        attrs["batchtrace.request.tool_count"] = len(tools)
    if not policy.capture:
        messages = body.get("messages") if isinstance(body.get("messages"), list) else body.get("input")
        if isinstance(messages, list):
            attrs["batchtrace.request.message_count"] = len(messages)
        return attrs

    cut = policy.cutter()
    if url.startswith("/v1/responses"):
        inputs = _responses_input(body, cut)
        instructions = body.get("instructions")
        system = [{"type": "text", "content": cut(instructions)}] if isinstance(instructions, str) else []
        raw_input: Any = body.get("input")
    elif url.startswith("/v1/completions"):
        prompt = body.get("prompt")
        prompts = prompt if isinstance(prompt, list) else [prompt] if prompt is not None else []
        inputs = [{"role": "user", "parts": _content_parts(str(p), cut)} for p in prompts]
        system = []
        raw_input = prompt
    elif url.startswith("/v1/embeddings"):
        raw = body.get("input")
        texts = raw if isinstance(raw, list) else [raw] if raw is not None else []
        inputs = [{"role": "user", "parts": _content_parts(t, cut)} for t in texts if isinstance(t, str)]
        system = []
        raw_input = raw
    else:
        inputs, system = chat_input_messages(body.get("messages"), cut)
        raw_input = body.get("messages")
    if inputs:
        attrs["gen_ai.input.messages"] = _json(inputs)
    if system:
        attrs["gen_ai.system_instructions"] = _json(system)
    if isinstance(tools, list):
        attrs["gen_ai.tool.definitions"] = _json(_cut_tree(tools, cut))
    if raw_input is not None:
        attrs["traceloop.entity.input"] = _json(_cut_tree(raw_input, cut))
    return attrs


def _usage_attributes(usage: Mapping[str, Any]) -> Attributes:
    attrs: Attributes = {}

    def number(*keys: str) -> int | None:
        for key in keys:
            value = usage.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return None

    def detail(section: str, key: str) -> int | None:
        details = usage.get(section)
        if isinstance(details, dict):
            value = details.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        return None

    input_tokens = number("prompt_tokens", "input_tokens")
    output_tokens = number("completion_tokens", "output_tokens")
    if input_tokens is not None:
        attrs["gen_ai.usage.input_tokens"] = input_tokens
        attrs["gen_ai.usage.prompt_tokens"] = input_tokens
    if output_tokens is not None:
        attrs["gen_ai.usage.output_tokens"] = output_tokens
        attrs["gen_ai.usage.completion_tokens"] = output_tokens
    cached = detail("prompt_tokens_details", "cached_tokens")
    if cached is None:
        cached = detail("input_tokens_details", "cached_tokens")
    if cached is not None:
        attrs["gen_ai.usage.cache_read.input_tokens"] = cached
    reasoning = detail("completion_tokens_details", "reasoning_tokens")
    if reasoning is None:
        reasoning = detail("output_tokens_details", "reasoning_tokens")
    if reasoning is not None:
        attrs["gen_ai.usage.reasoning.output_tokens"] = reasoning
    total = number("total_tokens")
    if total is not None:
        attrs["llm.usage.total_tokens"] = total
    return attrs


def response_attributes(url: str, body: Mapping[str, Any], policy: ContentPolicy) -> Attributes:
    """Attributes that describe what came back: ids, model, finish reasons, usage, output."""
    attrs: Attributes = {}
    for key, name in (
        ("id", "gen_ai.response.id"),
        ("model", "gen_ai.response.model"),
        ("system_fingerprint", "openai.response.system_fingerprint"),
        ("service_tier", "openai.response.service_tier"),
    ):
        value = body.get(key)
        if isinstance(value, str):
            attrs[name] = value
    usage = body.get("usage")
    if isinstance(usage, dict):
        attrs.update(_usage_attributes(usage))
    if url.startswith("/v1/responses"):
        outputs = _responses_output(body, policy.cutter())
        raw_output: Any = body.get("output")
    elif url.startswith("/v1/embeddings"):
        data = body.get("data")
        if isinstance(data, list) and data and isinstance(data[0], dict):
            vector = data[0].get("embedding")
            if isinstance(vector, list):
                attrs["gen_ai.embeddings.dimension.count"] = len(vector)
        return attrs
    else:
        choices = body.get("choices")
        outputs = chat_output_messages(choices, policy.cutter())
        first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        raw_output = first.get("message", first.get("text")) if first else None
    finish = [m["finish_reason"] for m in outputs if m.get("finish_reason")]
    if finish:
        attrs["gen_ai.response.finish_reasons"] = finish
    if not policy.capture:
        attrs["batchtrace.response.choice_count"] = len(outputs)
        return attrs
    if outputs:
        attrs["gen_ai.output.messages"] = _json(outputs)
    if raw_output is not None:
        attrs["traceloop.entity.output"] = _json(_cut_tree(raw_output, policy.cutter()))
    return attrs
