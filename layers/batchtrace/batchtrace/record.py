"""The provider-neutral record of one batch request: what every format adapter produces.

A record is built once per request/result pair by the format's adapter (``batchtrace.extract``)
and then only read: the attribute writers (``batchtrace.write``) turn it into span attributes,
and the tally sums its usage and cost. Nothing downstream of an adapter knows which provider's
JSON the record came from, which is what lets a new format be one module.

Messages use the OpenTelemetry GenAI semantic conventions' JSON shapes (``{"role", "parts":
[{"type": "text", "content"}, {"type": "tool_call", ...}, ...], "finish_reason"}``), so the
writers serialise them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pricing imports Usage from here
    from batchtrace.pricing import Cost

#: A JSON value in the GenAI message shapes (dicts, lists, strings, numbers).
Part = dict[str, Any]
Message = dict[str, Any]
#: An attribute value as OpenTelemetry accepts it.
AttributeValue = str | bool | int | float | list[str] | list[int] | list[float]


@dataclass(slots=True)
class Usage:
    """Token counts with one meaning for every provider (the semantic conventions', OpenAI's).

    ``input_tokens`` includes cached tokens (read and creation); ``output_tokens`` includes
    reasoning tokens; the parts are also given on their own. ``None`` means not reported.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    reasoning_tokens: int | None = None
    total_tokens: int | None = None

    @property
    def reported(self) -> bool:
        return self.input_tokens is not None or self.output_tokens is not None


@dataclass(slots=True)
class Failure:
    """Why a request failed: ``error.type``, a human message, and whether it was an expiry."""

    type: str
    message: str
    expired: bool = False


@dataclass(slots=True)
class Record:
    """One request and its result, as the writers need them, whatever the provider.

    ``custom_id`` is the provider's own per-request id (``custom_id``, ``recordId``, ``key``,
    or a line number). ``created_s`` is when the provider says the response was made (epoch
    seconds), if it says. ``extra`` holds provider-specific attributes already named (an
    adapter writes, e.g., ``openai.response.system_fingerprint`` there); the writers copy it.
    ``raw_input``/``raw_output`` are the request's and response's content as the provider
    shaped it, for the compatibility writer (Respan and Traceloop show them as they are).
    """

    custom_id: str
    provider: str
    operation: str
    endpoint: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    response_id: str | None = None
    params: dict[str, AttributeValue] = field(default_factory=dict)
    system_instructions: list[Part] = field(default_factory=list)
    input_messages: list[Message] = field(default_factory=list)
    output_messages: list[Message] = field(default_factory=list)
    tool_definitions: list[Any] | None = None
    finish_reasons: list[str] = field(default_factory=list)
    output_type: str | None = None
    raw_input: Any = None
    raw_output: Any = None
    usage: Usage = field(default_factory=Usage)
    failure: Failure | None = None
    http_status: int | None = None
    line_id: str | None = None
    request_id: str | None = None
    created_s: float | None = None
    #: No result came back for this request (the batch returned nothing for it).
    no_result: bool = False
    #: A result whose request was not in the input file.
    orphan: bool = False
    #: The n-th (n > 0) occurrence of a repeated id.
    occurrence: int = 0
    #: Provider-specific attributes (already-named keys), copied onto the span as they are.
    extra: dict[str, AttributeValue] = field(default_factory=dict)
    #: What the request cost (priced once, by the span worker); ``None``: no usage, or no price known.
    cost: Cost | None = None

    @property
    def failed(self) -> bool:
        return self.failure is not None

    @property
    def model(self) -> str | None:
        return self.request_model or self.response_model
