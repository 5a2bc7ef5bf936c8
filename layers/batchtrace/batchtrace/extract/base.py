"""What every format adapter is, and the small JSON helpers they share.

An adapter knows one provider's batch line shapes and nothing else: how to find a line's
per-request id, whether a line is of its shape (for detection), and how to turn a
request/result pair into a :class:`~batchtrace.record.Record`. It never sees files, spans or
attributes. The helpers here build the OpenTelemetry GenAI message parts, so every adapter
produces the same JSON for the same meaning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from batchtrace.record import Failure, Part, Record, Usage

JsonObject = dict[str, Any]
#: Truncates one text value to the configured limit (:attr:`ExtractContext.cut`).
Cut = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class ExtractContext:
    """What an adapter needs beyond the two lines.

    ``cut`` truncates one text value to the configured limit (identity when no value can be
    long enough); ``model`` is the model named outside the lines (``--model``, ``trace.json``,
    a Bedrock job), used only where a line names none.
    """

    cut: Cut
    model: str | None = None


def keep(text: str) -> str:
    return text


class FormatAdapter:
    """One provider's batch format. Subclasses set the class attributes and override the methods.

    ``self_contained`` formats carry the request inside each result line (Bedrock, Vertex AI):
    they need no input file. ``family`` groups formats with the same line shapes (the OpenAI
    hosts): detection that sees only the shared shape picks the family's ``name`` adapter, and
    an explicit choice picks a member. ``detect_order`` sorts detection, specific shapes first.
    """

    name: ClassVar[str]
    provider: ClassVar[str]
    family: ClassVar[str] = ""
    self_contained: ClassVar[bool] = False
    detectable: ClassVar[bool] = True
    detect_order: ClassVar[int] = 50
    #: The options the CLI's ``--provider`` accepts for this adapter, beyond its ``name``.
    aliases: ClassVar[tuple[str, ...]] = ()

    def request_id(self, line: JsonObject) -> str | None:
        """The per-request id of an input line, or ``None`` when the line is not of this shape."""
        raise NotImplementedError

    def result_id(self, line: JsonObject, line_no: int) -> str | None:
        """The per-request id of a result line, or ``None`` when the line is not of this shape."""
        raise NotImplementedError

    def is_result(self, line: JsonObject) -> bool:
        """Whether a result line is unambiguously of this format (for detection)."""
        return self.result_id(line, 0) is not None

    def is_request(self, line: JsonObject) -> bool:
        """Whether an input line is unambiguously of this format (for detection)."""
        return self.request_id(line) is not None

    def extract(
        self, custom_id: str, request: JsonObject | None, result: JsonObject | None, ctx: ExtractContext
    ) -> Record:
        """The record of one pair; either side may be missing (no result, or an orphan result)."""
        raise NotImplementedError


# --------------------------------------------------------------------------- JSON access


def as_dict(value: Any) -> JsonObject:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_number(value: Any) -> int | float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def first_int(mapping: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = as_int(mapping.get(key))
        if value is not None:
            return value
    return None


def loads_maybe(value: Any) -> Any:
    """A JSON string's value (tool arguments, Mistral's string error bodies), else the value itself."""
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def cut_tree(value: Any, cut: Cut) -> Any:
    """A copy of a JSON value with every string leaf passed through ``cut`` (itself if no cut)."""
    if cut is keep:
        return value
    if isinstance(value, str):
        return cut(value)
    if isinstance(value, list):
        return [cut_tree(item, cut) for item in value]
    if isinstance(value, dict):
        return {key: cut_tree(item, cut) for key, item in value.items()}
    return value


def params_from(body: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """Numeric request parameters renamed to the record's neutral names (``max_tokens``, ...)."""
    params: dict[str, Any] = {}
    for key, name in names.items():
        value = body.get(key)  # most are absent: only a present one pays for the type checks
        if value is not None and name not in params and as_number(value) is not None:
            params[name] = value
    return params


def stop_sequences(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return list(value)
    return None


# --------------------------------------------------------------------------- GenAI parts


def text_part(text: Any, cut: Cut) -> Part:
    return {"type": "text", "content": cut(text if isinstance(text, str) else str(text))}


def reasoning_part(text: Any, cut: Cut) -> Part:
    return {"type": "reasoning", "content": cut(text if isinstance(text, str) else str(text))}


def tool_call_part(call_id: Any, name: Any, arguments: Any, cut: Cut) -> Part:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": cut_tree(loads_maybe(arguments), cut)}


def tool_response_part(call_id: Any, response: Any, cut: Cut) -> Part:
    return {"type": "tool_call_response", "id": call_id, "response": cut_tree(response, cut)}


def media_part(modality: str, *, uri: Any = None, mime_type: Any = None, file_id: Any = None) -> Part:
    """An image, audio, video or file part: a URI or file id when there is one, never inline bytes."""
    part: Part = {"modality": modality}
    if isinstance(mime_type, str):
        part["mime_type"] = mime_type
    if isinstance(uri, str) and uri and not uri.startswith("data:"):
        part.update(type="uri", uri=uri)
    elif isinstance(file_id, str) and file_id:
        part.update(type="file", file_id=file_id)
    else:
        part.update(type="blob", content="[inline data omitted]")
    return part


def message(role: str, parts: list[Part], finish_reason: str | None = None) -> JsonObject:
    out: JsonObject = {"role": role, "parts": parts}
    if finish_reason is not None:
        out["finish_reason"] = finish_reason
    return out


#: Provider stop reasons mapped to the semantic conventions' finish reasons.
FINISH_REASONS: dict[str, str] = {
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "complete": "stop",
    "finish": "stop",
    "finished": "stop",
    "eos": "stop",
    "pause_turn": "stop",
    "stop_criteria_met": "stop",
    "length": "length",
    "max_tokens": "length",
    "model_length": "length",
    "model_context_window_exceeded": "length",
    "max_output_tokens": "length",
    "token_limit": "length",
    "tool_calls": "tool_call",
    "function_call": "tool_call",
    "tool_use": "tool_call",
    "tool_call": "tool_call",
    "content_filter": "content_filter",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
    "safety": "content_filter",
    "recitation": "content_filter",
    "blocklist": "content_filter",
    "prohibited_content": "content_filter",
    "spii": "content_filter",
    "image_safety": "content_filter",
    "refusal": "content_filter",
    "error": "error",
    "malformed_function_call": "error",
    "language": "content_filter",
    "image_prohibited_content": "content_filter",
    "image_recitation": "content_filter",
    "unexpected_tool_call": "error",
    "too_many_tool_calls": "error",
    "missing_thought_signature": "error",
    "malformed_response": "error",
}


def finish_reason(raw: Any) -> str:
    """The semantic conventions' finish reason for a provider's stop reason (``stop`` when unknown)."""
    if not isinstance(raw, str) or not raw:
        return "stop"
    return FINISH_REASONS.get(raw.lower(), raw.lower())


def finished(record: Record) -> Record:
    """Fill ``finish_reasons`` from the output messages (the writers read the record only)."""
    if not record.finish_reasons:
        record.finish_reasons = [m["finish_reason"] for m in record.output_messages if m.get("finish_reason")]
    return record


def openai_usage(usage: Any) -> Usage:
    """OpenAI's usage shapes (chat, responses, embeddings, images), the reference meaning."""
    data = as_dict(usage)
    if not data:
        return Usage()
    prompt_details = as_dict(data.get("prompt_tokens_details")) or as_dict(data.get("input_tokens_details"))
    output_details = as_dict(data.get("completion_tokens_details")) or as_dict(data.get("output_tokens_details"))
    return Usage(
        input_tokens=first_int(data, "prompt_tokens", "input_tokens"),
        output_tokens=first_int(data, "completion_tokens", "output_tokens"),
        cache_read_tokens=as_int(prompt_details.get("cached_tokens")),
        reasoning_tokens=as_int(output_details.get("reasoning_tokens")),
        total_tokens=as_int(data.get("total_tokens")),
    )


def failure_from_error(error: Any, fallback: str = "error") -> Failure:
    """A failure from an ``{code|type, message}`` error object (or a bare string)."""
    if isinstance(error, dict):
        code = error.get("code") or error.get("type") or error.get("status") or fallback
        message_text = error.get("message") or code
        return Failure(str(code), str(message_text))
    text = str(error) if error not in (None, "") else fallback
    return Failure(fallback, text)


NO_RESULT = Failure("no_result", "the batch returned no result for this request")
