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
from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (
    GenAiOperationNameValues,
    GenAiTokenTypeValues,
)
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics
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

# --------------------------------------------------------------------------- cost (write/cost.py)
#: The request's cost in USD at the rate charged: the name Langfuse reads (the conventions have none yet).
USAGE_COST: Final = "gen_ai.usage.cost"
#: OpenInference's cost names (Arize, and Phoenix's span attributes), USD at the rate charged.
LLM_COST_PROMPT: Final = "llm.cost.prompt"
LLM_COST_COMPLETION: Final = "llm.cost.completion"
LLM_COST_TOTAL: Final = "llm.cost.total"
#: What the same usage would have cost through the provider's synchronous API, USD.
COST_REALTIME: Final = "batchtrace.cost.realtime"
#: Where the batch rate came from: ``genai-prices``, ``documented-discount`` or ``realtime``.
COST_SOURCE: Final = "batchtrace.cost.source"

# --------------------------------------------------------------------------- time (timestamps.py)
#: The batch's own window (epoch seconds) when spans are placed at processing time.
ORIGINAL_START: Final = "batchtrace.original_start"
ORIGINAL_END: Final = "batchtrace.original_end"

# --------------------------------------------------------------------------- metrics (send/metrics.py)
#: The conventions' histogram of tokens per request, by ``gen_ai.token.type``.
METRIC_TOKEN_USAGE: Final = gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE
TOKEN_TYPE_INPUT: Final = GenAiTokenTypeValues.INPUT.value
TOKEN_TYPE_OUTPUT: Final = GenAiTokenTypeValues.COMPLETION.value  # "output": the enum kept its old name
#: Completions of a batch by ``batchtrace.outcome`` (``succeeded``, ``failed``, ``expired``, ``no_result``).
METRIC_BATCH_REQUESTS: Final = "batchtrace.batch.requests"
#: Seconds from the batch's creation to the start of its processing, and from there to its end.
METRIC_BATCH_QUEUE_TIME: Final = "batchtrace.batch.queue_time"
METRIC_BATCH_RUN_TIME: Final = "batchtrace.batch.run_time"
#: USD, by ``batchtrace.cost.rate``: ``batch`` (the rate charged) and ``realtime`` (the synchronous API's).
METRIC_BATCH_COST: Final = "batchtrace.batch.cost"
OUTCOME: Final = "batchtrace.outcome"
COST_RATE: Final = "batchtrace.cost.rate"

# --------------------------------------------------------------------------- the batch's lifecycle
#: On ``batch_results`` when the provider's batch object or job is known.
BATCH_PROVIDER: Final = "batchtrace.batch.provider"
BATCH_STATUS: Final = "batchtrace.batch.status"
BATCH_OUTCOME: Final = "batchtrace.batch.outcome"
BATCH_QUEUE_TIME: Final = "batchtrace.batch.queue_time_s"
BATCH_RUN_TIME: Final = "batchtrace.batch.run_time_s"
BATCH_DURATION: Final = "batchtrace.batch.duration_s"
BATCH_ENDPOINT: Final = "batchtrace.batch.endpoint"
BATCH_COMPLETION_WINDOW: Final = "batchtrace.batch.completion_window"
BATCH_MODEL: Final = "batchtrace.batch.model"
BATCH_FAILURE_REASON: Final = "batchtrace.batch.failure_reason"
BATCH_VALIDATION_ERRORS: Final = "batchtrace.batch.validation_errors"
BATCH_COUNTS_SOURCE: Final = "batchtrace.batch.counts_source"
#: ``+ total``, ``succeeded``, ``failed``, ...: the provider's request counts.
BATCH_REQUEST_COUNTS_PREFIX: Final = "batchtrace.batch.request_counts."
#: ``+ input_tokens``, ``output_tokens``: the provider's token totals.
BATCH_USAGE_PREFIX: Final = "batchtrace.batch.usage."
#: Span events: ``batch.created``, ``batch.in_progress``, ``batch.completed``... one per timestamp.
BATCH_EVENT_PREFIX: Final = "batch."
#: On each lifecycle event: the provider's field it came from (``in_progress_at``, ``endTime``).
BATCH_EVENT_FIELD: Final = "batchtrace.batch.field"
#: On each lifecycle event: the provider's time for it, epoch seconds (kept when spans move in time).
BATCH_EVENT_TIME: Final = "batchtrace.batch.time"
#: ``error.type`` of a ``batch_results`` span whose batch failed, expired or was cancelled.
BATCH_ERROR_TYPE_PREFIX: Final = "batch_"
RECONCILIATION_AGREE: Final = "batchtrace.reconciliation.agree"
RECONCILIATION_SOURCE: Final = "batchtrace.reconciliation.source"
RECONCILIATION_PROVIDER_PREFIX: Final = "batchtrace.reconciliation.provider."
RECONCILIATION_SEEN_PREFIX: Final = "batchtrace.reconciliation.seen."

# --------------------------------------------------------------------------- a batch's trace context (submit.py)
#: The W3C Trace Context names, used as the key of the batch's metadata entry, tag or label.
#: The lifecycle parsers read the same key back (OpenAI ``metadata``, a Bedrock tag, a Vertex label).
TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"
