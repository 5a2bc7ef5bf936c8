"""The OpenTelemetry GenAI semantic conventions, from a record: names from the conventions' constants.

Messages, system instructions and tool definitions are JSON strings in the conventions' shapes
(the record already holds them so); with capture off they are left out and their counts stay.
"""

from __future__ import annotations

from typing import Any

import orjson

from batchtrace import semconv as sc
from batchtrace.record import AttributeValue, Record
from batchtrace.write.attributes import set_json

Attributes = dict[str, AttributeValue]


def to_json(value: Any) -> str:
    """``value`` as a JSON string (a writer puts JSON on a span with :func:`set_json` instead)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def write_genai(record: Record, attrs: Attributes, capture: bool) -> None:
    attrs[sc.OPERATION_NAME] = record.operation
    attrs[sc.PROVIDER_NAME] = record.provider
    model = record.model
    if model:
        attrs[sc.REQUEST_MODEL] = model
    if record.response_model:
        attrs[sc.RESPONSE_MODEL] = record.response_model
    if record.response_id:
        attrs[sc.RESPONSE_ID] = record.response_id
    for name, value in record.params.items():
        key = sc.REQUEST_PARAMS.get(name)
        if key is not None:
            attrs[key] = value
    if record.output_type:
        attrs[sc.OUTPUT_TYPE] = record.output_type
    if record.finish_reasons:
        attrs[sc.RESPONSE_FINISH_REASONS] = record.finish_reasons
    _write_usage(record, attrs)
    if record.failure is not None:
        attrs[sc.ERROR_TYPE] = record.failure.type
    if capture:
        _write_content(record, attrs)
    else:
        attrs[sc.REQUEST_MESSAGE_COUNT] = len(record.input_messages)
        attrs[sc.RESPONSE_MESSAGE_COUNT] = len(record.output_messages)


def _write_usage(record: Record, attrs: Attributes) -> None:
    usage = record.usage
    for key, value in (
        (sc.USAGE_INPUT_TOKENS, usage.input_tokens),
        (sc.USAGE_OUTPUT_TOKENS, usage.output_tokens),
        (sc.USAGE_CACHE_READ_INPUT_TOKENS, usage.cache_read_tokens),
        (sc.USAGE_CACHE_CREATION_INPUT_TOKENS, usage.cache_creation_tokens),
        (sc.USAGE_REASONING_OUTPUT_TOKENS, usage.reasoning_tokens),
    ):
        if value is not None:
            attrs[key] = value


def _write_content(record: Record, attrs: Attributes) -> None:
    """The JSON texts, each serialised once (and kept as UTF-8 on a span: :mod:`~batchtrace.write.attributes`)."""
    if record.input_messages:
        set_json(attrs, sc.INPUT_MESSAGES, record.input_messages)
    if record.system_instructions:
        set_json(attrs, sc.SYSTEM_INSTRUCTIONS, record.system_instructions)
    if record.output_messages:
        set_json(attrs, sc.OUTPUT_MESSAGES, record.output_messages)
    if record.tool_definitions is not None:
        set_json(attrs, sc.TOOL_DEFINITIONS, record.tool_definitions)
