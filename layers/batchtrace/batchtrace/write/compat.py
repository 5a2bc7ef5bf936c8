"""The attributes Respan and Traceloop-based backends read, so batch completions show as LLM logs.

What the ``respan-ai`` SDK writes for a real-time call: ``traceloop.*`` entity input and output
(the provider's own shapes, as JSON), ``llm.request.type``, ``respan.entity.log_type`` and the
pre-1.0 token names. Switched off with ``BATCHTRACE_COMPAT_ATTRIBUTES=false``.
"""

from __future__ import annotations

from batchtrace import semconv as sc
from batchtrace.record import AttributeValue, Record
from batchtrace.write.attributes import set_json

Attributes = dict[str, AttributeValue]

#: Respan's log types for the operations it knows; others keep the operation's name.
_LOG_TYPES = {"chat": "chat", "text_completion": "completion", "embeddings": "embedding"}
_REQUEST_TYPES = {"chat": "chat", "text_completion": "completion", "embeddings": "embedding"}


def write_compat(record: Record, attrs: Attributes, capture: bool) -> None:
    operation = record.operation
    attrs[sc.LLM_REQUEST_TYPE] = _REQUEST_TYPES.get(operation, operation)
    attrs[sc.RESPAN_LOG_TYPE] = _LOG_TYPES.get(operation, operation)
    attrs[sc.TRACELOOP_SPAN_KIND] = "task"
    attrs[sc.TRACELOOP_ENTITY_PATH] = "batch_results"
    usage = record.usage
    if usage.input_tokens is not None:
        attrs[sc.COMPAT_PROMPT_TOKENS] = usage.input_tokens
    if usage.output_tokens is not None:
        attrs[sc.COMPAT_COMPLETION_TOKENS] = usage.output_tokens
    if usage.total_tokens is not None:
        attrs[sc.LLM_USAGE_TOTAL_TOKENS] = usage.total_tokens
    if capture:
        if record.raw_input is not None:
            set_json(attrs, sc.TRACELOOP_ENTITY_INPUT, record.raw_input)
        if record.raw_output is not None:
            set_json(attrs, sc.TRACELOOP_ENTITY_OUTPUT, record.raw_output)
