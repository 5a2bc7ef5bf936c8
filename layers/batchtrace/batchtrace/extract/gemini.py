"""Gemini API batch mode, and the Gemini content it shares with Vertex AI batch prediction.

Follows https://ai.google.dev/gemini-api/docs/batch-mode and the API reference of
``GenerateContentRequest``/``GenerateContentResponse`` (python-genai ``types.py``).

Input line: ``{key, request: GenerateContentRequest}`` where the request is ``{contents: [{role,
parts}], systemInstruction, generationConfig, tools}``. Output line: ``{key, response:
GenerateContentResponse}`` (``{candidates: [{content, finishReason}], usageMetadata,
promptFeedback, modelVersion, responseId}``) or ``{key, error: google.rpc.Status}`` (``{code,
message, status?}``). The lines name no model: ``modelVersion`` is the response's, and the
request's comes from ``ctx.model`` (``--model``). Lines have no timestamps and no HTTP status.

The REST API writes camelCase; the Python SDK and Vertex AI's echoed requests write the proto's
snake_case (and ``null`` for unset oneof members), so every field is read with :func:`pick`.
The content functions here (parts, messages, usage, errors) are what :mod:`.vertex` reuses.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar

from batchtrace.extract.base import (
    NO_RESULT,
    Cut,
    ExtractContext,
    FormatAdapter,
    JsonObject,
    as_dict,
    as_int,
    as_list,
    as_str,
    finish_reason,
    finished,
    media_part,
    message,
    params_from,
    reasoning_part,
    stop_sequences,
    text_part,
    tool_call_part,
    tool_response_part,
)
from batchtrace.record import Failure, Part, Record, Usage
from batchtrace.semconv import Operation

#: Gemini roles -> GenAI roles ("model" is the assistant; old function-calling used "function").
ROLES = {"model": "assistant", "function": "tool"}
#: generationConfig fields -> the record's neutral parameter names.
PARAMS = {
    "maxOutputTokens": "max_tokens",
    "temperature": "temperature",
    "topP": "top_p",
    "topK": "top_k",
    "frequencyPenalty": "frequency_penalty",
    "presencePenalty": "presence_penalty",
    "seed": "seed",
    "candidateCount": "choice_count",
}
#: google.rpc.Code numbers, for a status that gives a gRPC code and no ``status`` name.
GRPC_CODES = {
    1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
    6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION",
    10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE",
    15: "DATA_LOSS", 16: "UNAUTHENTICATED",
}  # fmt: skip
INLINE_OMITTED = "[inline data omitted]"
EXTRA = "batchtrace.gemini."


# --------------------------------------------------------------------------- JSON access


@functools.cache
def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def pick(mapping: Mapping[str, Any], name: str) -> Any:
    """A field by its camelCase (REST) or snake_case (SDK, Vertex echo) name; ``null`` counts as absent."""
    value = mapping.get(name)
    return mapping.get(_snake(name)) if value is None else value


def parse_time(value: Any) -> float | None:
    """Epoch seconds of an RFC 3339 / ISO 8601 time (``…Z`` or ``…+00:00``), ``None`` when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None


def raw_tree(value: Any, cut: Cut) -> Any:
    """The provider's JSON for the compatibility writer: strings cut, inline bytes left out."""
    if isinstance(value, str):
        return cut(value)
    if isinstance(value, list):
        return [raw_tree(item, cut) for item in value]
    if not isinstance(value, dict):
        return value
    out = {key: raw_tree(item, cut) for key, item in value.items()}
    for key in ("inlineData", "inline_data"):
        if isinstance(out.get(key), dict) and "data" in out[key]:
            out[key] = {**out[key], "data": INLINE_OMITTED}
    return out


# --------------------------------------------------------------------------- parts and messages


def _modality(mime_type: Any) -> str:
    kind = mime_type.split("/", 1)[0] if isinstance(mime_type, str) else ""
    return kind if kind in ("image", "audio", "video") else "file"


def _text(value: Any, part: JsonObject, cut: Cut) -> Part:
    return reasoning_part(value, cut) if part.get("thought") is True else text_part(value, cut)


def _function_call(value: Any, part: JsonObject, cut: Cut) -> Part:
    call = as_dict(value)
    return tool_call_part(call.get("id"), call.get("name"), call.get("args"), cut)


def _function_response(value: Any, part: JsonObject, cut: Cut) -> Part:
    # Gemini pairs a response with its call by name (an id only where the caller set one).
    reply = as_dict(value)
    out = tool_response_part(reply.get("id"), reply.get("response"), cut)
    if isinstance(reply.get("name"), str):
        out["name"] = reply["name"]
    return out


def _inline_data(value: Any, part: JsonObject, cut: Cut) -> Part:
    mime_type = pick(as_dict(value), "mimeType")
    return media_part(_modality(mime_type), mime_type=mime_type)


def _file_data(value: Any, part: JsonObject, cut: Cut) -> Part:
    data = as_dict(value)
    mime_type = pick(data, "mimeType")
    return media_part(_modality(mime_type), uri=pick(data, "fileUri"), mime_type=mime_type)


def _executable_code(value: Any, part: JsonObject, cut: Cut) -> Part:
    code = as_dict(value)
    return tool_call_part(
        code.get("id"), "code_execution", {"language": code.get("language"), "code": code.get("code")}, cut
    )


def _code_result(value: Any, part: JsonObject, cut: Cut) -> Part:
    result = as_dict(value)
    return tool_response_part(result.get("id"), {"outcome": result.get("outcome"), "output": result.get("output")}, cut)


#: A part is a oneof: the first of these fields that is set says what it is; others are skipped.
PART_KINDS: tuple[tuple[str, Callable[[Any, JsonObject, Cut], Part]], ...] = (
    ("text", _text),
    ("functionCall", _function_call),
    ("functionResponse", _function_response),
    ("inlineData", _inline_data),
    ("fileData", _file_data),
    ("executableCode", _executable_code),
    ("codeExecutionResult", _code_result),
)


def parts_of(parts: Any, cut: Cut) -> list[Part]:
    """A Content's ``parts`` as GenAI parts (unknown kinds, e.g. ``videoMetadata`` alone, skipped)."""
    out: list[Part] = []
    for part in as_list(parts):
        if not isinstance(part, dict):
            continue
        for name, build in PART_KINDS:
            value = pick(part, name)
            if value is not None:
                out.append(build(value, part, cut))
                break
    return out


def content_messages(contents: Any, cut: Cut) -> list[JsonObject]:
    """A request's ``contents`` as GenAI input messages; function responses are the ``tool`` role."""
    messages: list[JsonObject] = []
    for content in as_list(contents):
        if not isinstance(content, dict):
            continue
        parts = parts_of(pick(content, "parts"), cut)
        role = as_str(content.get("role")) or "user"
        if parts and all(part["type"] == "tool_call_response" for part in parts):
            role = "tool"
        messages.append(message(ROLES.get(role, role), parts))
    return messages


def system_parts(instruction: Any, cut: Cut) -> list[Part]:
    if isinstance(instruction, str):
        return [text_part(instruction, cut)]
    return parts_of(pick(as_dict(instruction), "parts"), cut)


def tool_definitions(tools: Any, cut: Cut) -> list[Any] | None:
    """Function declarations as ``{type: function, name, description, parameters}``; built-in tools by name."""
    if not isinstance(tools, list):
        return None
    out: list[Any] = []
    for tool in tools:
        for key, value in as_dict(tool).items():
            if key in ("functionDeclarations", "function_declarations"):
                out.extend(_declaration(item) for item in as_list(value) if isinstance(item, dict))
            elif value is not None:
                out.append({"type": key, **({"config": value} if value else {})})
    definitions: list[Any] = raw_tree(out, cut)
    return definitions


def _declaration(item: JsonObject) -> JsonObject:
    parameters = pick(item, "parameters") or pick(item, "parametersJsonSchema")
    return {
        "type": "function",
        "name": item.get("name"),
        "description": item.get("description"),
        "parameters": parameters,
    }


def candidate_messages(candidates: Any, cut: Cut) -> list[JsonObject]:
    """Candidates as assistant messages; a candidate that stopped on a function call finished as ``tool_call``."""
    messages: list[JsonObject] = []
    for candidate in as_list(candidates):
        if not isinstance(candidate, dict):
            continue
        parts = parts_of(pick(as_dict(pick(candidate, "content")), "parts"), cut)
        reason = finish_reason(pick(candidate, "finishReason"))
        if reason == "stop" and any(part["type"] == "tool_call" for part in parts):
            reason = "tool_call"
        messages.append(message("assistant", parts, reason))
    return messages


# --------------------------------------------------------------------------- usage and errors


def gemini_usage(metadata: Any) -> Usage:
    """usageMetadata in the shared meaning: prompt tokens already include cached ones; output adds thoughts.

    Zero counts are left out of the JSON, so a missing count in a present block is 0.
    """
    data = as_dict(metadata)
    if not data:
        return Usage()
    thoughts = as_int(pick(data, "thoughtsTokenCount"))
    return Usage(
        input_tokens=as_int(pick(data, "promptTokenCount")) or 0,
        output_tokens=(as_int(pick(data, "candidatesTokenCount")) or 0) + (thoughts or 0),
        cache_read_tokens=as_int(pick(data, "cachedContentTokenCount")),
        reasoning_tokens=thoughts,
        total_tokens=as_int(pick(data, "totalTokenCount")),
    )


def status_failure(error: Any) -> tuple[Failure, int | None]:
    """``(failure, HTTP status)`` of a google.rpc.Status; ``error.type`` is its status name when it has one."""
    data = as_dict(error)
    if not data:
        text = str(error) if error not in (None, "", {}) else "the request failed"
        return Failure("error", text), None
    code = as_int(data.get("code"))
    kind = as_str(data.get("status")) or GRPC_CODES.get(code or 0) or (str(code) if code is not None else "error")
    text = as_str(data.get("message")) or kind
    return Failure(kind, text), (code if code is not None and 100 <= code < 600 else None)


def _blocked_categories(response: JsonObject) -> list[str]:
    ratings = list(as_list(pick(as_dict(pick(response, "promptFeedback")), "safetyRatings")))
    for candidate in as_list(response.get("candidates")):
        ratings.extend(as_list(pick(as_dict(candidate), "safetyRatings")))
    return sorted({str(r.get("category")) for r in ratings if isinstance(r, dict) and r.get("blocked") is True})


# --------------------------------------------------------------------------- record fields


def request_model(body: JsonObject, ctx: ExtractContext) -> str | None:
    """The request's ``model`` when a line has one (``models/…`` or a publisher path), else ``--model``."""
    named = as_str(body.get("model"))
    return named.rsplit("/", 1)[-1] if named else ctx.model


def request_fields(record: Record, body: JsonObject, ctx: ExtractContext) -> None:
    """Model, parameters, system instructions, messages and tools of a GenerateContentRequest."""
    record.request_model = request_model(body, ctx)
    config = as_dict(pick(body, "generationConfig"))
    record.params = params_from({name: pick(config, name) for name in PARAMS}, PARAMS)
    stops = stop_sequences(pick(config, "stopSequences"))
    if stops:
        record.params["stop_sequences"] = stops
    mime_type = as_str(pick(config, "responseMimeType"))
    if mime_type:
        record.output_type = "json" if "json" in mime_type else "text"
    thinking = as_dict(pick(config, "thinkingConfig"))
    budget, level = as_int(pick(thinking, "thinkingBudget")), as_str(pick(thinking, "thinkingLevel"))
    if budget is not None:
        record.extra[EXTRA + "request.thinking_budget"] = budget
    if level:
        record.extra[EXTRA + "request.thinking_level"] = level
    record.system_instructions = system_parts(pick(body, "systemInstruction"), ctx.cut)
    record.input_messages = content_messages(body.get("contents"), ctx.cut)
    record.tool_definitions = tool_definitions(body.get("tools"), ctx.cut)
    if body.get("contents") is not None:
        record.raw_input = raw_tree(body.get("contents"), ctx.cut)


def response_fields(record: Record, response: JsonObject, ctx: ExtractContext) -> None:
    """Ids, model, usage, output messages and block reasons of a GenerateContentResponse."""
    record.response_id = as_str(pick(response, "responseId"))
    record.response_model = as_str(pick(response, "modelVersion"))
    record.usage = gemini_usage(pick(response, "usageMetadata"))
    record.created_s = parse_time(pick(response, "createTime"))
    tool_prompt = as_int(pick(as_dict(pick(response, "usageMetadata")), "toolUsePromptTokenCount"))
    if tool_prompt is not None:
        record.extra[EXTRA + "usage.tool_use_prompt_tokens"] = tool_prompt
    candidates = as_list(response.get("candidates"))
    record.output_messages = candidate_messages(candidates, ctx.cut)
    if candidates:
        record.raw_output = raw_tree(pick(as_dict(candidates[0]), "content"), ctx.cut)
    block = as_str(pick(as_dict(pick(response, "promptFeedback")), "blockReason"))
    if block:
        # A blocked prompt gets no candidates: a content filter outcome, not a failed request.
        record.extra[EXTRA + "prompt.block_reason"] = block
        record.finish_reasons = [m["finish_reason"] for m in record.output_messages] or ["content_filter"]
    blocked = _blocked_categories(response)
    if blocked:
        record.extra[EXTRA + "blocked_categories"] = blocked


# --------------------------------------------------------------------------- the adapter


def _key(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return as_str(value)


class GeminiAdapter(FormatAdapter):
    """The Gemini API's batch files: requests and results paired by ``key``."""

    name: ClassVar[str] = "gemini"
    provider: ClassVar[str] = "gcp.gemini"
    aliases: ClassVar[tuple[str, ...]] = ("google",)
    detect_order: ClassVar[int] = 20

    def request_id(self, line: JsonObject) -> str | None:
        return _key(line.get("key")) if isinstance(line.get("request"), dict) else None

    def result_id(self, line: JsonObject, line_no: int) -> str | None:
        response, error = line.get("response"), line.get("error")
        if isinstance(response, dict) or (response is None and error is not None):
            return _key(line.get("key"))
        return None

    def request_body(self, request: JsonObject | None, result: JsonObject | None) -> JsonObject:
        """The GenerateContentRequest: from the input line here, from the result line in :mod:`.vertex`."""
        return as_dict(request.get("request")) if request else {}

    def result_fields(self, record: Record, result: JsonObject) -> None:
        """What the result line says beside the response: here the ``error`` status, if any."""
        error = result.get("error")
        if error is not None:
            record.failure, record.http_status = status_failure(error)

    def extract(
        self, custom_id: str, request: JsonObject | None, result: JsonObject | None, ctx: ExtractContext
    ) -> Record:
        record = Record(custom_id=custom_id, provider=self.provider, operation=Operation.GENERATE_CONTENT)
        request_fields(record, self.request_body(request, result), ctx)
        if result is None:
            record.no_result, record.failure = True, NO_RESULT
            return record
        record.orphan = request is None and not self.self_contained
        response = result.get("response")
        if isinstance(response, dict):
            response_fields(record, response, ctx)
        self.result_fields(record, result)  # after the response: line-level facts (time, status) win
        return finished(record)


ADAPTER = GeminiAdapter()
