"""The submitting trace, put into the batch itself: OpenAI ``metadata=``, Bedrock ``tags=``, Vertex AI ``labels``.

A batch's spans belong in the trace that submitted it. Writing ``trace.json`` beside the input
works but is glue every user must write; the batch's own metadata travels with the batch for
free, and every place that later sees the batch object (the webhook receiver, the lifecycle
state machine, ``batch.json``, a backfill) reads it back (:mod:`batchtrace.lifecycle`).

:func:`submission_metadata` asks OpenTelemetry's W3C Trace Context propagator for the current
context's ``traceparent`` (and ``tracestate``) and shapes it for the provider's API:

- ``"openai"`` (also Mistral's batch ``metadata``): a dict for ``metadata=``. OpenAI allows 16 keys
  of at most 64 characters and values of at most 512; a traceparent is 55, a tracestate at most
  512 (W3C's own limit).
- ``"bedrock"``: a list of ``{"key", "value"}`` for ``create_model_invocation_job(tags=...)``.
  Tag values allow letters, digits, spaces and ``._:/=+@-`` only, up to 256: a traceparent fits,
  a tracestate with several members (``a=1,b=2``) does not and is left out.
- ``"vertex"``: a dict for a batch prediction job's ``labels``. Label values allow lower-case
  letters, digits, ``_`` and ``-`` only, up to 63 characters. A W3C traceparent is exactly that
  (its hex is lower-case by definition, 55 characters with its dashes), so it is kept as it is
  under the ``traceparent`` label, which is what the Vertex parser reads; a tracestate (``=``,
  ``,``) never fits and is left out.

Outside a span (no valid current context) there is nothing to carry: ``{}`` (``[]`` for Bedrock),
so the call can stay in code that runs with or without tracing. A value a provider would refuse
is left out with one warning line per provider and process, never sent to fail the submission.
"""

from __future__ import annotations

import logging
import re
from typing import Literal, overload

from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from batchtrace.semconv import TRACEPARENT, TRACESTATE

__all__ = ["MetadataFormat", "submission_metadata", "trace_context"]

logger = logging.getLogger(__name__)

MetadataFormat = Literal["openai", "bedrock", "vertex"]

#: What each provider accepts as a value (keys are the two fixed names, which fit everywhere).
_VALUE_RULES: dict[str, re.Pattern[str]] = {
    "openai": re.compile(r".{0,512}", re.DOTALL),
    "bedrock": re.compile(r"[a-zA-Z0-9\s._:/=+@-]{0,256}"),
    "vertex": re.compile(r"[a-z0-9_-]{0,63}"),
}
_RULE_TEXT = {
    "openai": "at most 512 characters",
    "bedrock": "letters, digits, spaces and ._:/=+@- only, at most 256 characters",
    "vertex": "lower-case letters, digits, _ and - only, at most 63 characters",
}
_PROPAGATOR = TraceContextTextMapPropagator()
_warned: set[tuple[str, str]] = set()


def trace_context(context: Context | None = None) -> dict[str, str]:
    """``{"traceparent", "tracestate"?}`` of ``context`` (default: the current one); ``{}`` outside a span."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    return {key: carrier[key] for key in (TRACEPARENT, TRACESTATE) if carrier.get(key)}


def _fitting(fields: dict[str, str], format: str) -> dict[str, str]:
    """The fields whose values ``format``'s API accepts; the others left out, said once."""
    rule = _VALUE_RULES[format]
    kept = {}
    for key, value in fields.items():
        if rule.fullmatch(value):
            kept[key] = value
        elif (format, key) not in _warned:
            _warned.add((format, key))
            logger.warning("%s left out of the %s metadata: its values allow %s", key, format, _RULE_TEXT[format])
    return kept


@overload
def submission_metadata(
    format: Literal["openai", "vertex"] = "openai", *, context: Context | None = None
) -> dict[str, str]: ...


@overload
def submission_metadata(format: Literal["bedrock"], *, context: Context | None = None) -> list[dict[str, str]]: ...


def submission_metadata(
    format: MetadataFormat = "openai", *, context: Context | None = None
) -> dict[str, str] | list[dict[str, str]]:
    """The current trace context as the batch's metadata, for ``format``'s submission call.

    ``client.batches.create(..., metadata=batchtrace.submission_metadata())`` is all OpenAI needs;
    ``format="bedrock"`` gives ``tags=`` for ``create_model_invocation_job`` and ``format="vertex"``
    gives a batch prediction job's ``labels``. ``context`` defaults to the current one. Empty
    outside a span. Raises :class:`ValueError` for an unknown ``format``.
    """
    if format not in _VALUE_RULES:
        raise ValueError(f"format must be one of {sorted(_VALUE_RULES)}, got {format!r}")
    fields = _fitting(trace_context(context), format)
    if format == "bedrock":
        return [{"key": key, "value": value} for key, value in fields.items()]
    return fields
