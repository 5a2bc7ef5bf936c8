"""Attribute names and values, as constants: the semantic conventions' where they exist.

The OpenTelemetry GenAI names come from ``opentelemetry-semantic-conventions`` (the incubating
module, where GenAI lives); names the conventions do not have yet are batchtrace's own, under
``batchtrace.``, or the compatibility names that Respan, Traceloop and OpenInference read.
No deprecated key (``gen_ai.system``, ``gen_ai.usage.prompt_tokens`` as a GenAI key) is used by
the GenAI writer; the compatibility writer writes those on purpose.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as genai
from opentelemetry.semconv._incubating.attributes import openai_attributes as openai
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import GenAiOperationNameValues
from opentelemetry.semconv.attributes import error_attributes, http_attributes

# --------------------------------------------------------------------------- GenAI (semconv)
OPERATION_NAME: Final = genai.GEN_AI_OPERATION_NAME
PROVIDER_NAME: Final = genai.GEN_AI_PROVIDER_NAME
REQUEST_MODEL: Final = genai.GEN_AI_REQUEST_MODEL
RESPONSE_MODEL: Final = genai.GEN_AI_RESPONSE_MODEL
RESPONSE_ID: Final = genai.GEN_AI_RESPONSE_ID
RESPONSE_FINISH_REASONS: Final = genai.GEN_AI_RESPONSE_FINISH_REASONS
USAGE_INPUT_TOKENS: Final = genai.GEN_AI_USAGE_INPUT_TOKENS
USAGE_OUTPUT_TOKENS: Final = genai.GEN_AI_USAGE_OUTPUT_TOKENS
USAGE_CACHE_READ_INPUT_TOKENS: Final = genai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
USAGE_CACHE_CREATION_INPUT_TOKENS: Final = genai.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS
USAGE_REASONING_OUTPUT_TOKENS: Final = genai.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS
INPUT_MESSAGES: Final = genai.GEN_AI_INPUT_MESSAGES
OUTPUT_MESSAGES: Final = genai.GEN_AI_OUTPUT_MESSAGES
SYSTEM_INSTRUCTIONS: Final = genai.GEN_AI_SYSTEM_INSTRUCTIONS
TOOL_DEFINITIONS: Final = genai.GEN_AI_TOOL_DEFINITIONS
OUTPUT_TYPE: Final = genai.GEN_AI_OUTPUT_TYPE
TOKEN_TYPE: Final = genai.GEN_AI_TOKEN_TYPE

#: The record's neutral parameter names -> ``gen_ai.request.*`` attributes.
REQUEST_PARAMS: Final[dict[str, str]] = {
    "max_tokens": genai.GEN_AI_REQUEST_MAX_TOKENS,
    "temperature": genai.GEN_AI_REQUEST_TEMPERATURE,
    "top_p": genai.GEN_AI_REQUEST_TOP_P,
    "top_k": genai.GEN_AI_REQUEST_TOP_K,
    "frequency_penalty": genai.GEN_AI_REQUEST_FREQUENCY_PENALTY,
    "presence_penalty": genai.GEN_AI_REQUEST_PRESENCE_PENALTY,
    "seed": genai.GEN_AI_REQUEST_SEED,
    "choice_count": genai.GEN_AI_REQUEST_CHOICE_COUNT,
    "stop_sequences": genai.GEN_AI_REQUEST_STOP_SEQUENCES,
    "encoding_formats": genai.GEN_AI_REQUEST_ENCODING_FORMATS,
}

OPENAI_API_TYPE: Final = openai.OPENAI_API_TYPE
ERROR_TYPE: Final = error_attributes.ERROR_TYPE
HTTP_RESPONSE_STATUS_CODE: Final = http_attributes.HTTP_RESPONSE_STATUS_CODE


class Operation:
    """``gen_ai.operation.name`` values: the conventions' where they have one."""

    CHAT: Final = GenAiOperationNameValues.CHAT.value
    TEXT_COMPLETION: Final = GenAiOperationNameValues.TEXT_COMPLETION.value
    EMBEDDINGS: Final = GenAiOperationNameValues.EMBEDDINGS.value
    GENERATE_CONTENT: Final = GenAiOperationNameValues.GENERATE_CONTENT.value
    #: Not in the conventions: a content classification (OpenAI's ``/v1/moderations``).
    MODERATION: Final = "moderation"


# --------------------------------------------------------------------------- batchtrace's own
BATCH_ID: Final = "batchtrace.batch_id"
CUSTOM_ID: Final = "batchtrace.custom_id"
ENDPOINT: Final = "batchtrace.endpoint"
BATCH_REQUEST_ID: Final = "batchtrace.batch_request_id"
PROVIDER_REQUEST_ID: Final = "batchtrace.request_id"
NO_RESULT: Final = "batchtrace.no_result"
ORPHAN_RESULT: Final = "batchtrace.orphan_result"
DUPLICATE_CUSTOM_ID: Final = "batchtrace.duplicate_custom_id"
REQUEST_MESSAGE_COUNT: Final = "batchtrace.request.message_count"
RESPONSE_MESSAGE_COUNT: Final = "batchtrace.response.choice_count"
TOOL_COUNT: Final = "batchtrace.request.tool_count"
CREATED: Final = "batchtrace.response.created"
TRACE_LINK: Final = "batchtrace.trace_link"
BATCH_COUNT_PREFIX: Final = "batchtrace."

# --------------------------------------------------------------------------- compatibility
TRACELOOP_SPAN_KIND: Final = "traceloop.span.kind"
TRACELOOP_ENTITY_NAME: Final = "traceloop.entity.name"
TRACELOOP_ENTITY_PATH: Final = "traceloop.entity.path"
TRACELOOP_ENTITY_INPUT: Final = "traceloop.entity.input"
TRACELOOP_ENTITY_OUTPUT: Final = "traceloop.entity.output"
LLM_REQUEST_TYPE: Final = "llm.request.type"
LLM_USAGE_TOTAL_TOKENS: Final = "llm.usage.total_tokens"
RESPAN_LOG_TYPE: Final = "respan.entity.log_type"
#: The pre-1.0 GenAI names Respan and Traceloop still read for token counts.
COMPAT_PROMPT_TOKENS: Final = genai.GEN_AI_USAGE_PROMPT_TOKENS
COMPAT_COMPLETION_TOKENS: Final = genai.GEN_AI_USAGE_COMPLETION_TOKENS
OPENINFERENCE_SPAN_KIND: Final = "openinference.span.kind"
