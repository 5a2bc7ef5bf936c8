"""Amazon Bedrock batch inference: each output line echoes its request, so no input file is needed.

Output file ``<prefix>/<job id>/<input name>.jsonl.out``, one line per record:
``{recordId, modelInput, modelOutput}`` or ``{recordId, modelInput, error: {errorCode, errorMessage}}``
(``errorCode`` is a number). ``modelInput``/``modelOutput`` are the model's own InvokeModel bodies,
so their shape depends on the model family, recognised from the job's model id (``ctx.model``)
when it names one, else from the shapes:

- Anthropic Claude: the Messages API with ``anthropic_version`` (read by ``extract.anthropic``);
  the legacy ``prompt``/``completion`` text API too.
- Amazon Nova: ``{system: [{text}], messages: [{role, content: [{text} | {toolUse} | ...]}],
  inferenceConfig}`` -> ``{output: {message}, stopReason, usage: {inputTokens, ...}}``.
- Amazon Titan Text: ``{inputText, textGenerationConfig}`` -> ``{inputTextTokenCount, results: [...]}``.
- Amazon Titan Embeddings: ``{inputText, dimensions}`` -> ``{embedding, inputTextTokenCount}``.
- Meta Llama: ``{prompt, max_gen_len}`` -> ``{generation, prompt_token_count, generation_token_count}``.
- Mistral: ``{prompt, max_tokens}`` -> ``{outputs: [{text, stop_reason}]}`` (no token counts).
- OpenAI-style chat (``messages`` -> ``choices``), as Mistral Large and gpt-oss answer.

The lines name no model (only Claude's response has ``model``) and carry no timestamps; the job
(``GetModelInvocationJob``: ``modelId``, ``submitTime``, ``endTime``) has both. Follows "Format and
upload your batch inference data", "View the results of a batch inference job" and the models'
"Inference request parameters and response fields" pages of the Amazon Bedrock user guide.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

from batchtrace.extract import anthropic, openai
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
    first_int,
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
from batchtrace.record import Failure, Part, Record, Usage
from batchtrace.semconv import Operation

Extractor = Callable[[Record, JsonObject, JsonObject, ExtractContext], None]

CLAUDE, CLAUDE_TEXT, NOVA, TITAN_TEXT, TITAN_EMBED = "claude", "claude_text", "nova", "titan_text", "titan_embed"
LLAMA, MISTRAL, CHAT = "llama", "mistral", "chat"

#: Model id fragments -> family (ids may be ARNs or inference profiles: ``us.anthropic.claude-…``).
MODEL_FAMILIES = (
    ("anthropic.", CLAUDE),
    ("claude", CLAUDE),
    ("nova", NOVA),
    ("titan-embed", TITAN_EMBED),
    ("titan-text", TITAN_TEXT),
    ("titan-tg1", TITAN_TEXT),
    ("llama", LLAMA),
    ("mistral", MISTRAL),
    ("mixtral", MISTRAL),
    ("openai.", CHAT),
)

#: ``(family, modelInput keys, modelOutput keys)``: the first family with any of its keys wins.
SHAPES = (
    (CLAUDE, {"anthropic_version", "max_tokens_to_sample"}, {"stop_sequence", "completion"}),
    (TITAN_EMBED, {"dimensions", "normalize", "embeddingTypes"}, {"embedding", "embeddingsByType"}),
    (TITAN_TEXT, {"inputText", "textGenerationConfig"}, {"results", "inputTextTokenCount"}),
    (NOVA, {"schemaVersion", "inferenceConfig", "toolConfig"}, {"output"}),
    (LLAMA, {"max_gen_len"}, {"generation"}),
    (MISTRAL, {"prompt"}, {"outputs"}),
)

_NOVA_PARAMS = {
    "maxTokens": "max_tokens",
    "max_new_tokens": "max_tokens",
    "temperature": "temperature",
    "topP": "top_p",
    "top_p": "top_p",
    "topK": "top_k",
    "top_k": "top_k",
}
_TITAN_PARAMS = {"maxTokenCount": "max_tokens", "temperature": "temperature", "topP": "top_p"}
_LLAMA_PARAMS = {"max_gen_len": "max_tokens", "temperature": "temperature", "top_p": "top_p"}
_TEXT_PARAMS = {
    "max_tokens": "max_tokens",
    "max_tokens_to_sample": "max_tokens",
    "max_completion_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "seed": "seed",
}


# --------------------------------------------------------------------------- family


def model_id(model: str | None) -> str | None:
    """A foundation model's or inference profile's ARN as its model id; other names as they are."""
    if model and model.startswith("arn:") and (":foundation-model/" in model or ":inference-profile/" in model):
        return model.split("/", 1)[1]
    return model


def _typeless_content(model_input: JsonObject) -> bool:
    """Nova's content blocks are keyed by kind (``{text}``, ``{image}``), not typed like Claude's."""
    blocks = [b for m in as_list(model_input.get("messages")) for b in as_list(as_dict(m).get("content"))]
    return any(isinstance(block, dict) and "type" not in block for block in blocks)


def _family_by_shape(model_input: JsonObject, model_output: JsonObject) -> str:
    if model_output.get("type") == "message":
        return CLAUDE
    for family, input_keys, output_keys in SHAPES:
        if input_keys & model_input.keys() or output_keys & model_output.keys():
            return family
    return NOVA if _typeless_content(model_input) else CHAT


def family_of(model_input: JsonObject, model_output: JsonObject, model: str | None) -> str:
    """The model family of a line: from the job's model id when it names one, else from the shapes."""
    name = (model or "").lower()
    family = next((found for needle, found in MODEL_FAMILIES if needle in name), None)
    family = family or _family_by_shape(model_input, model_output)
    # One model, two APIs: Claude's legacy text completions, Mistral's chat completions.
    if family == CLAUDE and "prompt" in model_input and "messages" not in model_input:
        return CLAUDE_TEXT
    if family == MISTRAL and "messages" in model_input:
        return CHAT
    return family


# --------------------------------------------------------------------------- shared pieces


def _usage(input_tokens: int | None, output_tokens: int | None) -> Usage:
    total = input_tokens + output_tokens if input_tokens is not None and output_tokens is not None else None
    return Usage(input_tokens=input_tokens, output_tokens=output_tokens, total_tokens=total)


def _prompt(record: Record, prompt: Any, cut: Cut) -> None:
    """A prompt-to-text request's one input: the prompt as the user's message (template tokens and all)."""
    if isinstance(prompt, str):
        record.input_messages = [message("user", [text_part(prompt, cut)])]
        record.raw_input = cut(prompt)


def _completions(record: Record, outputs: list[Any], text_key: str, reason_key: str, cut: Cut) -> None:
    """A prompt-to-text response's generations, one output message each (no part for an empty text)."""
    found = [item for item in outputs if isinstance(item, dict) and text_key in item]
    for item in found:
        parts = [text_part(item[text_key], cut)] if item[text_key] else []
        record.output_messages.append(message("assistant", parts, finish_reason(item.get(reason_key))))
    if found:
        record.raw_output = cut_tree(found[0].get(text_key), cut)


def _stops(record: Record, value: Any) -> None:
    stops = stop_sequences(value)
    if stops:
        record.params["stop_sequences"] = stops


# --------------------------------------------------------------------------- Anthropic Claude


def _claude(record: Record, model_input: JsonObject, model_output: JsonObject, ctx: ExtractContext) -> None:
    anthropic.request_fields(record, model_input, ctx)
    if model_output:
        anthropic.response_fields(record, model_output, ctx)


def _claude_text(record: Record, model_input: JsonObject, model_output: JsonObject, ctx: ExtractContext) -> None:
    record.params = params_from(model_input, _TEXT_PARAMS)
    _stops(record, model_input.get("stop_sequences"))
    _prompt(record, model_input.get("prompt"), ctx.cut)
    _completions(record, [model_output], "completion", "stop_reason", ctx.cut)


# --------------------------------------------------------------------------- Amazon Nova


def _nova_tool_result(result: JsonObject, cut: Cut) -> Part:
    items = [item for item in as_list(result.get("content")) if isinstance(item, dict)]
    texts = [item["text"] for item in items if isinstance(item.get("text"), str)]
    response: Any = "\n".join(texts) if len(texts) == len(items) else [item.get("json", item) for item in items]
    return tool_response_part(result.get("toolUseId"), response, cut)


def _nova_media(block: JsonObject) -> Part | None:
    """An image, video or document block: its S3 URI when it has one, never the inline bytes."""
    for kind, modality in (("image", "image"), ("video", "video"), ("audio", "audio"), ("document", "file")):
        if kind in block:
            media = as_dict(block[kind])
            uri = as_dict(as_dict(media.get("source")).get("s3Location")).get("uri")
            form = as_str(media.get("format"))
            mime = f"{modality}/{form}" if form and modality != "file" else None
            return media_part(modality, uri=uri, mime_type=mime)
    return None


def _nova_block(block: JsonObject, cut: Cut) -> Part | None:
    if isinstance(block.get("text"), str):
        return text_part(block["text"], cut)
    if "reasoningContent" in block:
        reasoning = as_dict(block["reasoningContent"])
        text = as_dict(reasoning.get("reasoningText")).get("text")
        return reasoning_part(text if isinstance(text, str) else anthropic.REDACTED, cut)
    if "toolUse" in block:
        call = as_dict(block["toolUse"])
        return tool_call_part(call.get("toolUseId"), call.get("name"), call.get("input"), cut)
    if "toolResult" in block:
        return _nova_tool_result(as_dict(block["toolResult"]), cut)
    return _nova_media(block)


def _nova_parts(content: Any, cut: Cut) -> list[Part]:
    parts = [_nova_block(block, cut) for block in as_list(content) if isinstance(block, dict)]
    return [part for part in parts if part is not None]


def _nova(record: Record, model_input: JsonObject, model_output: JsonObject, ctx: ExtractContext) -> None:
    cut = ctx.cut
    record.system_instructions = _nova_parts(model_input.get("system"), cut)
    for item in as_list(model_input.get("messages")):
        if isinstance(item, dict):
            role = as_str(item.get("role")) or "user"
            record.input_messages.extend(anthropic.chat_message(role, _nova_parts(item.get("content"), cut)))
    if model_input.get("messages") is not None:
        record.raw_input = cut_tree(model_input.get("messages"), cut)
    config = as_dict(model_input.get("inferenceConfig"))
    record.params = params_from(config, _NOVA_PARAMS)
    _stops(record, config.get("stopSequences"))
    tools = as_dict(model_input.get("toolConfig")).get("tools")
    if isinstance(tools, list):
        record.tool_definitions = cut_tree(tools, cut)
    if model_output:
        _nova_response(record, model_output, cut)


def _nova_response(record: Record, model_output: JsonObject, cut: Cut) -> None:
    reply = as_dict(as_dict(model_output.get("output")).get("message"))
    role = as_str(reply.get("role")) or "assistant"
    parts = _nova_parts(reply.get("content"), cut)
    record.output_messages = [message(role, parts, finish_reason(model_output.get("stopReason")))]
    record.raw_output = {"role": role, "content": cut_tree(reply.get("content"), cut)}
    usage = as_dict(model_output.get("usage"))
    if usage:  # like Anthropic's, ``inputTokens`` leaves out the tokens read from or written to the cache
        record.usage = anthropic.usage_from_uncached(
            as_int(usage.get("inputTokens")),
            as_int(usage.get("outputTokens")),
            read=first_int(usage, "cacheReadInputTokenCount", "cacheReadInputTokens"),
            written=first_int(usage, "cacheWriteInputTokenCount", "cacheWriteInputTokens"),
        )


# --------------------------------------------------------------------------- Amazon Titan


def _titan_text(record: Record, model_input: JsonObject, model_output: JsonObject, ctx: ExtractContext) -> None:
    config = as_dict(model_input.get("textGenerationConfig"))
    record.params = params_from(config, _TITAN_PARAMS)
    _stops(record, config.get("stopSequences"))
    _prompt(record, model_input.get("inputText"), ctx.cut)
    results = as_list(model_output.get("results"))
    _completions(record, results, "outputText", "completionReason", ctx.cut)
    counts = [as_int(as_dict(item).get("tokenCount")) for item in results]
    output = sum(count for count in counts if count is not None) if any(c is not None for c in counts) else None
    if model_output:
        record.usage = _usage(as_int(model_output.get("inputTextTokenCount")), output)


def _titan_embed(record: Record, model_input: JsonObject, model_output: JsonObject, ctx: ExtractContext) -> None:
    """Embeddings: the text went in, a vector came out; no chat messages are made up for either."""
    text = model_input.get("inputText")
    record.raw_input = cut_tree(text, ctx.cut)
    if text is not None:
        record.extra["batchtrace.embeddings.input_count"] = 1
    kinds = stop_sequences(model_input.get("embeddingTypes"))  # a list of strings, like stop sequences
    if kinds:
        record.params["encoding_formats"] = kinds
    vector = model_output.get("embedding")
    dimensions = len(vector) if isinstance(vector, list) else as_int(model_input.get("dimensions"))
    if dimensions is not None:
        record.extra["gen_ai.embeddings.dimension.count"] = dimensions
    if model_output:
        record.usage = Usage(input_tokens=as_int(model_output.get("inputTextTokenCount")))


# --------------------------------------------------------------------------- Meta Llama, Mistral, chat


def _llama(record: Record, model_input: JsonObject, model_output: JsonObject, ctx: ExtractContext) -> None:
    record.params = params_from(model_input, _LLAMA_PARAMS)
    _prompt(record, model_input.get("prompt"), ctx.cut)
    _completions(record, [model_output], "generation", "stop_reason", ctx.cut)
    if model_output:
        prompt_tokens, generated = model_output.get("prompt_token_count"), model_output.get("generation_token_count")
        record.usage = _usage(as_int(prompt_tokens), as_int(generated))


def _mistral(record: Record, model_input: JsonObject, model_output: JsonObject, ctx: ExtractContext) -> None:
    """Mistral's text completion; its output has no token counts (only the job's manifest does)."""
    record.params = params_from(model_input, _TEXT_PARAMS)
    _stops(record, model_input.get("stop"))
    _prompt(record, model_input.get("prompt"), ctx.cut)
    outputs = model_output.get("outputs", model_output.get("choices"))
    _completions(record, as_list(outputs), "text", "stop_reason", ctx.cut)


def _chat(record: Record, model_input: JsonObject, model_output: JsonObject, ctx: ExtractContext) -> None:
    """OpenAI-style chat bodies; Mistral's name the finish ``stop_reason``."""
    record.input_messages, record.system_instructions = openai.chat_inputs(model_input.get("messages"), ctx.cut)
    record.raw_input = cut_tree(model_input.get("messages"), ctx.cut)
    record.params = params_from(model_input, _TEXT_PARAMS)
    _stops(record, model_input.get("stop"))
    if isinstance(model_input.get("tools"), list):
        record.tool_definitions = cut_tree(model_input["tools"], ctx.cut)
    choices = [as_dict(c) for c in as_list(model_output.get("choices"))]
    choices = [{**c, "finish_reason": c.get("finish_reason") or c.get("stop_reason")} for c in choices]
    record.output_messages = openai.chat_outputs(choices, ctx.cut)
    if choices:
        record.raw_output = cut_tree(choices[0].get("message"), ctx.cut)
    record.response_id = as_str(model_output.get("id"))
    record.response_model = as_str(model_output.get("model"))
    record.usage = openai_usage(model_output.get("usage"))


FAMILIES: dict[str, tuple[str, Extractor]] = {
    CLAUDE: (Operation.CHAT, _claude),
    CLAUDE_TEXT: (Operation.TEXT_COMPLETION, _claude_text),
    NOVA: (Operation.CHAT, _nova),
    TITAN_TEXT: (Operation.TEXT_COMPLETION, _titan_text),
    TITAN_EMBED: (Operation.EMBEDDINGS, _titan_embed),
    LLAMA: (Operation.TEXT_COMPLETION, _llama),
    MISTRAL: (Operation.TEXT_COMPLETION, _mistral),
    CHAT: (Operation.CHAT, _chat),
}


# --------------------------------------------------------------------------- the adapter


def record_failure(error: Any) -> tuple[Failure, int | None]:
    """``(failure, HTTP status)`` of a line's ``error: {errorCode, errorMessage}``."""
    data = as_dict(error)
    code = data.get("errorCode")
    status = as_int(code)
    kind = str(code) if code not in (None, "") else "error"
    text = as_str(data.get("errorMessage")) or (error if isinstance(error, str) and error else kind)
    return Failure(kind, text), (status if status is not None and 100 <= status <= 599 else None)


class BedrockAdapter(FormatAdapter):
    """Amazon Bedrock batch inference output (``.jsonl.out``): every line is request and result."""

    name: ClassVar[str] = "bedrock"
    provider: ClassVar[str] = "aws.bedrock"
    aliases: ClassVar[tuple[str, ...]] = ("aws.bedrock",)
    self_contained: ClassVar[bool] = True
    detect_order: ClassVar[int] = 10

    def request_id(self, line: JsonObject) -> str | None:
        record_id = as_str(line.get("recordId"))
        return record_id if record_id and isinstance(line.get("modelInput"), dict) else None

    def result_id(self, line: JsonObject, line_no: int) -> str | None:
        if not isinstance(line.get("modelOutput"), dict) and line.get("error") in (None, {}, ""):
            return None
        return self.request_id(line)

    def extract(
        self, custom_id: str, request: JsonObject | None, result: JsonObject | None, ctx: ExtractContext
    ) -> Record:
        line = result or request or {}
        model_input = as_dict(line.get("modelInput"))
        model_output = as_dict(line.get("modelOutput"))
        ctx = dataclasses.replace(ctx, model=model_id(ctx.model))
        family = family_of(model_input, model_output, ctx.model)
        operation, extractor = FAMILIES[family]
        record = Record(custom_id=custom_id, provider=self.provider, operation=operation, request_model=ctx.model)
        record.extra["batchtrace.bedrock.model_family"] = family
        if result is None:
            record.no_result, record.failure = True, NO_RESULT
        elif line.get("error") not in (None, {}, ""):
            record.failure, record.http_status = record_failure(line["error"])
            model_output = {}
        extractor(record, model_input, model_output, ctx)
        return finished(record)


ADAPTER = BedrockAdapter()
