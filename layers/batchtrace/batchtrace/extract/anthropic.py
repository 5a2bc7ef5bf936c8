"""Anthropic's Message Batches: one request's ``params`` is a Messages API body, its result a Message.

Input line (the ``requests`` array of ``POST /v1/messages/batches``, kept one per line):
``{custom_id, params: {model, max_tokens, system, messages, tools, temperature, top_p, top_k,
stop_sequences, thinking, ...}}``. Result line (``GET .../results``, JSONL):
``{custom_id, result: {type: "succeeded", message}}``, ``{custom_id, result: {type: "errored",
error: {type: "error", error: {type, message}, request_id}}}``, or ``{custom_id, result: {type:
"canceled" | "expired"}}``. Results carry no timestamps and may come in any order.

Follows https://docs.anthropic.com/en/docs/build-with-claude/batch-processing and the
anthropic-sdk-python types (``message_batch_individual_response.py``, ``message.py``,
``usage.py``, ``content_block.py``, ``content_block_param.py``).

Anthropic's ``usage.input_tokens`` EXCLUDES cache reads and cache writes; the record's input
is their sum. The message functions here are public because Claude on Amazon Bedrock speaks the
same Messages API (``batchtrace.extract.bedrock`` reuses them).
"""

from __future__ import annotations

from collections.abc import Callable
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
    cut_tree,
    finish_reason,
    finished,
    keep,
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

ENDPOINT = "/v1/messages"
PARAMS = {"max_tokens": "max_tokens", "temperature": "temperature", "top_p": "top_p", "top_k": "top_k"}
#: Shown instead of the encrypted payload of a ``redacted_thinking`` block: it was reasoning, unreadable.
REDACTED = "[redacted thinking]"


# --------------------------------------------------------------------------- content blocks


def _source_part(modality: str, source: JsonObject, cut: Cut) -> list[Part]:
    """An image or document ``source``: a URI or file id when there is one, never the base64 data."""
    kind = source.get("type")
    if kind == "text":  # a plain-text document: its text is the content
        return [text_part(source.get("data") or "", cut)]
    if kind == "content":  # a document made of content blocks
        return content_parts(source.get("content"), cut)
    return [
        media_part(modality, uri=source.get("url"), mime_type=source.get("media_type"), file_id=source.get("file_id"))
    ]


def _all_objects(content: Any) -> bool:
    return isinstance(content, list) and all(isinstance(item, dict) for item in content)


def _tool_result(block: JsonObject, cut: Cut) -> Part:
    """A ``tool_result`` (or a server tool's ``*_tool_result``): text when it is all text, else parts.

    Server tools' own result items (``web_search_result``, ...) are kept as they are, less their
    ``encrypted_*`` fields, which only Anthropic can read.
    """
    content = block.get("content")
    if not _all_objects(content):
        return tool_response_part(block.get("tool_use_id"), content, cut)
    parts = content_parts(content, cut)
    if not parts:
        kept = [{k: v for k, v in item.items() if not k.startswith("encrypted_")} for item in as_list(content)]
        return tool_response_part(block.get("tool_use_id"), kept, cut)
    texts = [part["content"] for part in parts if part["type"] == "text"]
    if len(texts) == len(parts):
        return tool_response_part(block.get("tool_use_id"), "\n".join(texts), cut)
    return tool_response_part(block.get("tool_use_id"), parts, keep)  # already cut


def _tool_use(block: JsonObject, cut: Cut) -> list[Part]:
    return [tool_call_part(block.get("id"), block.get("name"), block.get("input"), cut)]


def _media(block: JsonObject, cut: Cut) -> list[Part]:
    modality = "image" if block.get("type") == "image" else "file"
    return _source_part(modality, as_dict(block.get("source")), cut)


_BLOCKS: dict[str, Callable[[JsonObject, Cut], list[Part]]] = {
    "text": lambda block, cut: [text_part(block.get("text") or "", cut)],
    "thinking": lambda block, cut: [reasoning_part(block.get("thinking") or "", cut)],
    "redacted_thinking": lambda block, cut: [reasoning_part(REDACTED, cut)],
    "tool_use": _tool_use,
    "server_tool_use": _tool_use,
    "mcp_tool_use": _tool_use,
    "image": _media,
    "document": _media,
    "container_upload": lambda block, cut: [media_part("file", file_id=block.get("file_id"))],
}


def _block(block: JsonObject, cut: Cut) -> list[Part]:
    """One request or response content block as GenAI parts (unknown types give none)."""
    kind = str(block.get("type") or "")
    if kind.endswith("tool_result"):
        return [_tool_result(block, cut)]
    handler = _BLOCKS.get(kind)
    return handler(block, cut) if handler else []


def content_parts(content: Any, cut: Cut) -> list[Part]:
    """Message content (a string or a list of typed blocks) as GenAI parts."""
    if isinstance(content, str):
        return [text_part(content, cut)]
    return [part for block in as_list(content) if isinstance(block, dict) for part in _block(block, cut)]


def chat_message(role: str, parts: list[Part]) -> list[JsonObject]:
    """A turn as GenAI messages: tool results travel in user turns, the conventions put them in ``tool`` ones."""
    results = [part for part in parts if part["type"] == "tool_call_response"]
    rest = [part for part in parts if part["type"] != "tool_call_response"]
    out = [message("tool", results)] if results else []
    if rest or not results:
        out.append(message(role, rest))
    return out


def chat_inputs(messages: Any, cut: Cut) -> list[JsonObject]:
    """The request's ``messages`` (user and assistant turns) as GenAI input messages."""
    inputs: list[JsonObject] = []
    for item in as_list(messages):
        if isinstance(item, dict):
            role = as_str(item.get("role")) or "user"
            inputs.extend(chat_message(role, content_parts(item.get("content"), cut)))
    return inputs


# --------------------------------------------------------------------------- usage and extras


def anthropic_usage(usage: Any) -> Usage:
    """Anthropic's usage in the record's meaning: input includes cache reads and writes."""
    data = as_dict(usage)
    if not data:
        return Usage()
    return usage_from_uncached(
        as_int(data.get("input_tokens")),
        as_int(data.get("output_tokens")),
        read=as_int(data.get("cache_read_input_tokens")),
        written=as_int(data.get("cache_creation_input_tokens")),
        reasoning=as_int(as_dict(data.get("output_tokens_details")).get("thinking_tokens")),
    )


def usage_from_uncached(
    uncached: int | None, output: int | None, *, read: int | None, written: int | None, reasoning: int | None = None
) -> Usage:
    """A usage whose provider counts input WITHOUT the cache (Anthropic, Bedrock): input = the three summed."""
    counts = [value for value in (uncached, read, written) if value is not None]
    input_tokens = sum(counts) if counts else None
    total = input_tokens + output if input_tokens is not None and output is not None else None
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output,
        cache_read_tokens=read,
        cache_creation_tokens=written,
        reasoning_tokens=reasoning,
        total_tokens=total,
    )


def _usage_extras(usage: JsonObject) -> dict[str, Any]:
    """What usage says beyond tokens: the service tier, cache writes by TTL, server tool requests."""
    extra: dict[str, Any] = {}
    tier = as_str(usage.get("service_tier"))
    if tier:
        extra["anthropic.response.service_tier"] = tier
    geo = as_str(usage.get("inference_geo"))
    if geo:
        extra["batchtrace.anthropic.inference_geo"] = geo
    for group in ("cache_creation", "server_tool_use"):
        for name, value in as_dict(usage.get(group)).items():
            count = as_int(value)
            if count:  # zero counts say nothing worth an attribute
                extra[f"batchtrace.anthropic.{group}.{name}"] = count
    return extra


# --------------------------------------------------------------------------- request and response


def request_fields(record: Record, params: JsonObject, ctx: ExtractContext) -> None:
    """Model, parameters, system, input messages and tools of a Messages API body."""
    record.request_model = as_str(params.get("model")) or ctx.model
    record.params = params_from(params, PARAMS)
    stops = stop_sequences(params.get("stop_sequences"))
    if stops:
        record.params["stop_sequences"] = stops
    record.system_instructions = content_parts(params.get("system"), ctx.cut)  # a string or text blocks
    record.input_messages = chat_inputs(params.get("messages"), ctx.cut)
    if params.get("messages") is not None:
        record.raw_input = cut_tree(params.get("messages"), ctx.cut)
    tools = params.get("tools")
    if isinstance(tools, list):
        record.tool_definitions = cut_tree(tools, ctx.cut)
    budget = as_int(as_dict(params.get("thinking")).get("budget_tokens"))
    if budget is not None:
        record.extra["batchtrace.anthropic.thinking.budget_tokens"] = budget


def response_fields(record: Record, reply: JsonObject, ctx: ExtractContext) -> None:
    """Id, model, output message, finish reason and usage of a Message."""
    record.response_id = as_str(reply.get("id"))
    record.response_model = as_str(reply.get("model"))
    stop = as_str(reply.get("stop_reason"))
    parts = content_parts(reply.get("content"), ctx.cut)
    role = as_str(reply.get("role")) or "assistant"
    record.output_messages = [message(role, parts, finish_reason(stop))]
    record.raw_output = {"role": role, "content": cut_tree(reply.get("content"), ctx.cut)}
    record.usage = anthropic_usage(reply.get("usage"))
    record.extra.update(_usage_extras(as_dict(reply.get("usage"))))
    facts = {
        "batchtrace.anthropic.stop_reason": stop,
        "batchtrace.anthropic.stop_sequence": as_str(reply.get("stop_sequence")),
        "batchtrace.anthropic.refusal_category": as_str(as_dict(reply.get("stop_details")).get("category")),
    }
    record.extra.update({name: value for name, value in facts.items() if value})


def result_failure(result: JsonObject) -> Failure | None:
    """The failure of a non-succeeded result: the API's error type, ``canceled`` or ``expired``."""
    kind = as_str(result.get("type")) or "unknown"
    if kind == "succeeded":
        if isinstance(result.get("message"), dict):
            return None
        return Failure("no_response", "the succeeded result carries no message")
    if kind == "errored":
        error = as_dict(result.get("error"))
        inner = as_dict(error.get("error")) or error  # early docs showed the error object unwrapped
        code = as_str(inner.get("type")) or "errored"
        return Failure(code, str(inner.get("message") or code))
    if kind == "canceled":
        return Failure("canceled", "the batch was canceled before this request was processed")
    if kind == "expired":
        return Failure("expired", "the batch expired before this request was processed", expired=True)
    return Failure(kind, f"result type {kind!r}")


# --------------------------------------------------------------------------- the adapter


class AnthropicAdapter(FormatAdapter):
    """Anthropic's Message Batches lines."""

    name: ClassVar[str] = "anthropic"
    provider: ClassVar[str] = "anthropic"
    detect_order: ClassVar[int] = 20

    def request_id(self, line: JsonObject) -> str | None:
        custom_id = as_str(line.get("custom_id"))
        return custom_id if custom_id and isinstance(line.get("params"), dict) else None

    def result_id(self, line: JsonObject, line_no: int) -> str | None:
        custom_id = as_str(line.get("custom_id"))
        result = line.get("result")
        if not custom_id or not isinstance(result, dict) or not as_str(result.get("type")):
            return None
        return custom_id

    def extract(
        self, custom_id: str, request: JsonObject | None, result: JsonObject | None, ctx: ExtractContext
    ) -> Record:
        record = Record(custom_id=custom_id, provider=self.provider, operation=Operation.CHAT, endpoint=ENDPOINT)
        request_fields(record, as_dict(request.get("params")) if request else {}, ctx)
        if result is None:
            record.no_result, record.failure = True, NO_RESULT
            return finished(record)
        record.orphan = request is None
        outcome = as_dict(result.get("result"))
        record.failure = result_failure(outcome)
        record.request_id = as_str(as_dict(outcome.get("error")).get("request_id"))
        reply = as_dict(outcome.get("message"))
        if reply and record.failure is None:
            response_fields(record, reply, ctx)
        return finished(record)


ADAPTER = AnthropicAdapter()
