"""OpenAI's Batch API: every endpoint a batch accepts, one small extractor each.

Input line: ``{custom_id, method, url, body}``. Output line: ``{id: "batch_req_…", custom_id,
response: {status_code, request_id, body}, error: null}``. The error file holds the same
shape with ``status_code >= 400`` and ``body.error``, or ``response: null`` with a line-level
``error: {code, message}`` (``batch_expired``). Any optional field may be ``null``.

The OpenAI-compatible hosts (Azure OpenAI, Mistral, Groq, Together, Fireworks) subclass
:class:`OpenAIAdapter` and override only their quirks.
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
    as_number,
    as_str,
    cut_tree,
    failure_from_error,
    finish_reason,
    finished,
    loads_maybe,
    media_part,
    message,
    openai_usage,
    params_from,
    reasoning_part,
    stop_sequences,
    text_part,
    tool_call_part,
    tool_response_part,
)
from batchtrace.record import Failure, Part, Record
from batchtrace.semconv import Operation

#: The Batch API's own code for requests that did not run before the completion window closed.
BATCH_EXPIRED = "batch_expired"
DEFAULT_URL = "/v1/chat/completions"

_PARAMS = {
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_tokens",
    "max_output_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "seed": "seed",
    "n": "choice_count",
}


# --------------------------------------------------------------------------- content


def _content_item(item: JsonObject, cut: Cut) -> Part | None:
    kind = item.get("type")
    if kind in ("text", "input_text", "output_text"):
        return text_part(item.get("text") or "", cut)
    if kind == "refusal":
        return text_part(item.get("refusal") or "", cut)
    if kind in ("image_url", "input_image"):
        image = item.get("image_url")
        return media_part(
            "image", uri=image.get("url") if isinstance(image, dict) else image, file_id=item.get("file_id")
        )
    if kind in ("input_audio", "audio"):
        return media_part("audio")
    if kind in ("input_file", "file"):
        file = as_dict(item.get("file"))
        return media_part("file", uri=item.get("file_url"), file_id=item.get("file_id") or file.get("file_id"))
    return None


def content_parts(content: Any, cut: Cut) -> list[Part]:
    """Chat or Responses content (a string or a list of typed parts) as GenAI parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content, cut)]
    if not isinstance(content, list):
        return [text_part(str(content), cut)]
    parts = [_content_item(item, cut) for item in content if isinstance(item, dict)]
    return [part for part in parts if part is not None]


def _tool_calls(calls: Any, cut: Cut) -> list[Part]:
    parts: list[Part] = []
    for call in as_list(calls):
        if isinstance(call, dict):
            function = as_dict(call.get("function"))
            name = function.get("name") or call.get("name")
            parts.append(tool_call_part(call.get("id"), name, function.get("arguments"), cut))
    return parts


def chat_inputs(messages: Any, cut: Cut) -> tuple[list[JsonObject], list[Part]]:
    """``(input messages, system instructions)`` of a chat request."""
    inputs: list[JsonObject] = []
    system: list[Part] = []
    for item in as_list(messages):
        if not isinstance(item, dict):
            continue
        role = str(item.get("role") or "user")
        if role in ("system", "developer"):
            system.extend(content_parts(item.get("content"), cut))
        elif role in ("tool", "function"):
            inputs.append(message("tool", [tool_response_part(item.get("tool_call_id"), item.get("content"), cut)]))
        else:
            parts = content_parts(item.get("content"), cut) + _tool_calls(item.get("tool_calls"), cut)
            inputs.append(message(role, parts))
    return inputs, system


def chat_outputs(choices: Any, cut: Cut) -> list[JsonObject]:
    outputs: list[JsonObject] = []
    for choice in as_list(choices):
        if not isinstance(choice, dict):
            continue
        reply = as_dict(choice.get("message"))
        parts = content_parts(reply.get("content"), cut)
        if reply.get("reasoning_content"):
            parts.insert(0, reasoning_part(reply["reasoning_content"], cut))
        if reply.get("refusal"):
            parts.append(text_part(reply["refusal"], cut))
        parts.extend(_tool_calls(reply.get("tool_calls"), cut))
        if isinstance(choice.get("text"), str):
            parts.append(text_part(choice["text"], cut))
        role = str(reply.get("role") or "assistant")
        outputs.append(message(role, parts, finish_reason(choice.get("finish_reason"))))
    return outputs


# --------------------------------------------------------------------------- endpoints


def _chat(record: Record, body: JsonObject, response: JsonObject, ctx: ExtractContext) -> None:
    record.extra["openai.api.type"] = "chat_completions"
    if body:
        record.input_messages, record.system_instructions = chat_inputs(body.get("messages"), ctx.cut)
        record.raw_input = cut_tree(body.get("messages"), ctx.cut)
    choices = response.get("choices")
    if choices is not None:
        record.output_messages = chat_outputs(choices, ctx.cut)
        first = as_dict(as_list(choices)[0]) if as_list(choices) else {}
        record.raw_output = cut_tree(first.get("message", first.get("text")), ctx.cut)


def _responses_inputs(body: JsonObject, cut: Cut) -> list[JsonObject]:
    items = body.get("input")
    if isinstance(items, str):
        return [message("user", [text_part(items, cut)])]
    inputs: list[JsonObject] = []
    for item in as_list(items):
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "function_call_output":
            inputs.append(message("tool", [tool_response_part(item.get("call_id"), item.get("output"), cut)]))
        elif kind == "function_call":
            inputs.append(
                message(
                    "assistant", [tool_call_part(item.get("call_id"), item.get("name"), item.get("arguments"), cut)]
                )
            )
        elif "role" in item:
            inputs.append(message(str(item["role"]), content_parts(item.get("content"), cut)))
    return inputs


def _reasoning_item(item: JsonObject, cut: Cut) -> list[Part]:
    summary = [str(s["text"]) for s in as_list(item.get("summary")) if isinstance(s, dict) and s.get("text")]
    return [reasoning_part("\n".join(summary), cut)] if summary else []


def _function_call_item(item: JsonObject, cut: Cut) -> list[Part]:
    arguments = item.get("arguments", item.get("input"))
    return [tool_call_part(item.get("call_id"), item.get("name"), arguments, cut)]


def _builtin_call_item(item: JsonObject, cut: Cut) -> list[Part]:
    """A built-in tool's call (web_search_call, file_search_call, code_interpreter_call, ...)."""
    arguments = {k: v for k, v in item.items() if k not in ("type", "id", "status")}
    name = str(item.get("type")).removesuffix("_call")
    return [tool_call_part(item.get("id"), name, cut_tree(arguments, cut), cut)]


_OUTPUT_ITEMS: dict[str, Callable[[JsonObject, Cut], list[Part]]] = {
    "message": lambda item, cut: content_parts(item.get("content"), cut),
    "reasoning": _reasoning_item,
    "function_call": _function_call_item,
    "custom_tool_call": _function_call_item,
}


def _responses_item(item: JsonObject, cut: Cut) -> list[Part]:
    kind = str(item.get("type") or "")
    handler = _OUTPUT_ITEMS.get(kind) or (_builtin_call_item if kind.endswith("_call") else None)
    return handler(item, cut) if handler else []


#: Built-in tools OpenAI runs itself: the model goes on after them, so they do not end the response.
_SERVER_SIDE_CALLS = frozenset(
    {"web_search_call", "file_search_call", "code_interpreter_call", "image_generation_call", "mcp_call"}
)


def _responses_finish(response: JsonObject, output: list[JsonObject]) -> str:
    incomplete = as_dict(response.get("incomplete_details"))
    if incomplete.get("reason"):
        return finish_reason(incomplete["reason"])
    kinds = [str(item.get("type") or "") for item in output]
    if any(kind.endswith("_call") and kind not in _SERVER_SIDE_CALLS for kind in kinds):
        return "tool_call"  # the caller must run a function (or computer, shell) call and send its output
    return "error" if response.get("status") == "failed" else "stop"


def _responses_request(record: Record, body: JsonObject, ctx: ExtractContext) -> None:
    record.input_messages = _responses_inputs(body, ctx.cut)
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        record.system_instructions = [text_part(instructions, ctx.cut)]
    record.raw_input = cut_tree(body.get("input"), ctx.cut)


def _responses_output(record: Record, response: JsonObject, ctx: ExtractContext) -> None:
    output = [item for item in as_list(response.get("output")) if isinstance(item, dict)]
    if not output:
        return
    parts = [part for item in output for part in _responses_item(item, ctx.cut)]
    record.output_messages = [message("assistant", parts, _responses_finish(response, output))]
    text = as_str(response.get("output_text")) or "".join(p["content"] for p in parts if p["type"] == "text")
    record.raw_output = {"role": "assistant", "content": text or None}


def _responses(record: Record, body: JsonObject, response: JsonObject, ctx: ExtractContext) -> None:
    record.extra["openai.api.type"] = "responses"
    if body:
        _responses_request(record, body, ctx)
    _responses_output(record, response, ctx)


def _completions(record: Record, body: JsonObject, response: JsonObject, ctx: ExtractContext) -> None:
    prompt = body.get("prompt")
    prompts = prompt if isinstance(prompt, list) else [prompt] if prompt is not None else []
    record.input_messages = [message("user", [text_part(p, ctx.cut)]) for p in prompts]
    record.raw_input = cut_tree(prompt, ctx.cut)
    choices = response.get("choices")
    if choices is not None:
        record.output_messages = chat_outputs(choices, ctx.cut)
        first = as_dict(as_list(choices)[0]) if as_list(choices) else {}
        record.raw_output = cut_tree(first.get("text"), ctx.cut)


def _embeddings(record: Record, body: JsonObject, response: JsonObject, ctx: ExtractContext) -> None:
    raw = body.get("input")
    record.raw_input = cut_tree(raw, ctx.cut)
    if raw is not None:
        record.extra["batchtrace.embeddings.input_count"] = len(raw) if isinstance(raw, list) else 1
    encoding = as_str(body.get("encoding_format"))
    if encoding:
        record.params["encoding_formats"] = [encoding]
    dimensions = as_int(body.get("dimensions"))
    data = [item for item in as_list(response.get("data")) if isinstance(item, dict)]
    vector = data[0].get("embedding") if data else None
    if isinstance(vector, list):
        dimensions = len(vector)
    if dimensions is not None:
        record.extra["gen_ai.embeddings.dimension.count"] = dimensions
    if data:
        record.extra["batchtrace.embeddings.output_count"] = len(data)


def _verdict(results: list[JsonObject]) -> tuple[bool, list[str], float | None]:
    """Whether any input was flagged, the categories that fired, and the highest category score."""
    fired: set[str] = set()
    scores: list[float] = []
    for result in results:
        fired.update(name for name, hit in as_dict(result.get("categories")).items() if hit is True)
        scores.extend(float(s) for s in as_dict(result.get("category_scores")).values() if as_number(s) is not None)
    flagged = any(result.get("flagged") is True for result in results)
    return flagged, sorted(fired), max(scores) if scores else None


def _moderations(record: Record, body: JsonObject, response: JsonObject, ctx: ExtractContext) -> None:
    record.raw_input = cut_tree(body.get("input"), ctx.cut)
    results = [item for item in as_list(response.get("results")) if isinstance(item, dict)]
    if not results:
        return
    flagged, fired, top_score = _verdict(results)
    record.extra["batchtrace.moderation.flagged"] = flagged
    record.extra["batchtrace.moderation.categories"] = fired
    if top_score is not None:
        record.extra["batchtrace.moderation.max_score"] = top_score
    verdict = f"flagged: {', '.join(fired) or 'yes'}" if flagged else "not flagged"
    record.output_messages = [message("assistant", [text_part(verdict, ctx.cut)], "stop")]
    record.raw_output = results


def _image_parts(data: Any, cut: Cut) -> list[Part]:
    parts: list[Part] = []
    for item in as_list(data):
        if isinstance(item, dict):
            parts.append(media_part("image", uri=item.get("url")))
            if isinstance(item.get("revised_prompt"), str):
                parts.append(text_part(item["revised_prompt"], cut))
    return parts


def _prompt(record: Record, body: JsonObject, ctx: ExtractContext) -> None:
    """A generation prompt (images, videos) as the one user message it is."""
    prompt = body.get("prompt")
    if prompt is not None:
        record.input_messages = [message("user", [text_part(prompt, ctx.cut)])]
        record.raw_input = cut_tree(prompt, ctx.cut)


def _images(record: Record, body: JsonObject, response: JsonObject, ctx: ExtractContext) -> None:
    record.output_type = "image"
    _prompt(record, body, ctx)
    for key in ("size", "quality", "background", "output_format", "style"):
        value = as_str(response.get(key)) or as_str(body.get(key))
        if value:
            record.extra[f"batchtrace.image.{key}"] = value
    data = response.get("data")
    if data is not None:
        record.output_messages = [message("assistant", _image_parts(data, ctx.cut), "stop")]
        record.raw_output = {"images": len(as_list(data))}


def _videos(record: Record, body: JsonObject, response: JsonObject, ctx: ExtractContext) -> None:
    record.output_type = "video"
    _prompt(record, body, ctx)
    for key in ("seconds", "size"):
        value = response.get(key) or body.get(key)
        if isinstance(value, str | int):
            record.extra[f"batchtrace.video.{key}"] = str(value)
    status = as_str(response.get("status"))
    if status:
        record.extra["batchtrace.video.status"] = status
    if response.get("id"):
        record.output_messages = [message("assistant", [media_part("video", file_id=response.get("id"))], "stop")]
        record.raw_output = {"video": response.get("id"), "status": status}
    error = response.get("error")
    if record.failure is None and (isinstance(error, dict) or status == "failed"):
        record.failure = failure_from_error(error or "the video generation failed", "video_failed")


def _generic(record: Record, body: JsonObject, response: JsonObject, ctx: ExtractContext) -> None:
    """An endpoint this adapter does not know: what is generic (model, status, ids, usage) only."""


Extractor = Callable[[Record, JsonObject, JsonObject, ExtractContext], None]

#: URL path -> (operation name, extractor). Matched on the path without query or trailing slash.
ENDPOINTS: dict[str, tuple[str, Extractor]] = {
    "/v1/chat/completions": (Operation.CHAT, _chat),
    "/v1/responses": (Operation.CHAT, _responses),
    "/v1/completions": (Operation.TEXT_COMPLETION, _completions),
    "/v1/embeddings": (Operation.EMBEDDINGS, _embeddings),
    "/v1/moderations": (Operation.MODERATION, _moderations),
    "/v1/images/generations": (Operation.GENERATE_CONTENT, _images),
    "/v1/images/edits": (Operation.GENERATE_CONTENT, _images),
    "/v1/videos": (Operation.GENERATE_CONTENT, _videos),
}


def endpoint_of(url: str) -> tuple[str, Extractor]:
    """The operation and extractor for a batch URL; an unknown one gets its last path segment."""
    path = url.split("?", 1)[0].rstrip("/")
    if not path.startswith("/v1/") and path.startswith("/"):
        path = "/v1" + path
    known = ENDPOINTS.get(path)
    if known is not None:
        return known
    return (path.rsplit("/", 1)[-1] or Operation.CHAT), _generic


# --------------------------------------------------------------------------- the adapter


class OpenAIAdapter(FormatAdapter):
    """OpenAI's Batch API lines (and, through subclasses, the hosts that copied them)."""

    name: ClassVar[str] = "openai"
    provider: ClassVar[str] = "openai"
    family: ClassVar[str] = "openai"
    detect_order: ClassVar[int] = 90

    def request_id(self, line: JsonObject) -> str | None:
        custom_id = line.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id or not isinstance(line.get("body"), dict):
            return None
        return custom_id

    def result_id(self, line: JsonObject, line_no: int) -> str | None:
        custom_id = line.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            return None
        response, error = line.get("response"), line.get("error")
        if response is not None and not isinstance(response, dict):
            return None
        if "result" in line or "params" in line:
            return None  # another provider's line (Anthropic's) that happens to have a custom_id
        return custom_id if response is not None or error is not None or "response" in line else None

    def is_request(self, line: JsonObject) -> bool:
        return self.request_id(line) is not None and "url" in line

    def is_result(self, line: JsonObject) -> bool:
        return self.result_id(line, 0) is not None and "response" in line

    def request_url(self, request: JsonObject | None) -> str:
        url = request.get("url") if request else None
        return url if isinstance(url, str) and url else DEFAULT_URL

    def response_of(self, result: JsonObject) -> tuple[JsonObject | None, int | None, str | None]:
        """``(body, status_code, request_id)`` of a result line."""
        response = as_dict(result.get("response"))
        status = as_int(response.get("status_code"))
        body = loads_maybe(response.get("body"))
        return (body if isinstance(body, dict) else None), status, as_str(response.get("request_id"))

    def failure_of(self, result: JsonObject, body: JsonObject | None, status: int | None) -> Failure | None:
        """Why a result failed: a line-level error (``batch_expired``), an error body, an HTTP status."""
        error = result.get("error")
        if error is not None:
            failure = failure_from_error(error)
            failure.expired = failure.type == BATCH_EXPIRED
            return failure
        body_error = body.get("error") if body else None
        if body_error is not None and body_error != {}:
            return self.body_failure(body_error, status)
        if status is not None and status >= 400:
            return Failure(str(status), f"HTTP {status}")
        if status is None and body is None:
            return Failure("no_response", "the result line carries neither a response nor an error")
        return None

    @staticmethod
    def body_failure(body_error: Any, status: int | None) -> Failure:
        failure = failure_from_error(loads_maybe(body_error), str(status or "error"))
        if failure.message == failure.type and status:
            failure.message = f"HTTP {status}"
        return failure

    def extract(
        self, custom_id: str, request: JsonObject | None, result: JsonObject | None, ctx: ExtractContext
    ) -> Record:
        url = self.request_url(request)
        operation, extractor = endpoint_of(url)
        body = as_dict(request.get("body")) if request else {}
        record = Record(custom_id=custom_id, provider=self.provider, operation=operation, endpoint=url)
        self.request_fields(record, body, ctx)
        response: JsonObject = {}
        if result is None:
            record.no_result, record.failure = True, NO_RESULT
        else:
            record.orphan = request is None
            record.line_id = as_str(result.get("id"))
            body_out, record.http_status, record.request_id = self.response_of(result)
            record.failure = self.failure_of(result, body_out, record.http_status)
            if body_out is not None and record.failure is None:
                response = body_out
                self.response_fields(record, response)
        extractor(record, body, response, ctx)
        return finished(record)

    def request_fields(self, record: Record, body: JsonObject, ctx: ExtractContext) -> None:
        record.request_model = as_str(body.get("model")) or ctx.model
        record.params = params_from(body, _PARAMS)
        stops = stop_sequences(body.get("stop"))
        if stops:
            record.params["stop_sequences"] = stops
        tier = as_str(body.get("service_tier"))
        if tier:
            record.extra["openai.request.service_tier"] = tier
        response_format = as_dict(body.get("response_format")) or as_dict(as_dict(body.get("text")).get("format"))
        kind = as_str(response_format.get("type"))
        if kind:
            record.output_type = "json" if "json" in kind else "text"
        tools = body.get("tools")
        if isinstance(tools, list):
            record.tool_definitions = cut_tree(tools, ctx.cut)

    def response_fields(self, record: Record, response: JsonObject) -> None:
        record.response_id = as_str(response.get("id"))
        record.response_model = as_str(response.get("model"))
        record.usage = openai_usage(response.get("usage"))
        created = as_number(response.get("created", response.get("created_at")))
        if created is not None:
            record.created_s = float(created)
        fingerprint = as_str(response.get("system_fingerprint"))
        if fingerprint:
            record.extra["openai.response.system_fingerprint"] = fingerprint
        tier = as_str(response.get("service_tier"))
        if tier:
            record.extra["openai.response.service_tier"] = tier


ADAPTER = OpenAIAdapter()
