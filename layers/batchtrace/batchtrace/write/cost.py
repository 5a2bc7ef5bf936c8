"""What a request cost, on its span: the batch rate actually charged, and what realtime would have cost.

The price itself comes from :mod:`batchtrace.pricing` (genai-prices' data, no table of our own) and is
computed once per record by the span worker (:func:`price_record`), so the span's attributes and the
run's totals (:class:`~batchtrace.tally.Tally`) read the same figure. The writer puts it under the names
the backends read: ``gen_ai.usage.cost`` (Langfuse's total), OpenInference's ``llm.cost.prompt``,
``llm.cost.completion`` and ``llm.cost.total`` (Arize, Phoenix's span attributes), plus batchtrace's
``batchtrace.cost.realtime`` (the same usage through the synchronous API) and ``batchtrace.cost.source``
(where the batch rate came from). A record without a price gets none of them: an unknown price is
left out, never written as zero. Switched off with ``BATCHTRACE_COST_ATTRIBUTES=false`` (the summary
keeps its totals).
"""

from __future__ import annotations

from batchtrace import semconv as sc
from batchtrace.pricing import Cost, price_at_ns
from batchtrace.record import AttributeValue, Record

Attributes = dict[str, AttributeValue]


def _models(record: Record) -> list[str]:
    """The names to price the record by, in turn: the request's, then the response's.

    An Azure request names a deployment (``my-gpt4o-prod``) that no price list knows; the response
    names the model that ran it. OpenAI's request alias (``gpt-4o-mini``) is tried first, as sent.
    """
    names = [record.request_model, record.response_model]
    return [name for i, name in enumerate(names) if name and name not in names[:i]]


def price_record(record: Record, at_ns: int) -> Cost | None:
    """The record's cost at the rate of ``at_ns`` (when it ran), or ``None`` when it cannot be known."""
    return price_at_ns(record.provider, _models(record), record.usage, at_ns)


def write_cost(record: Record, attrs: Attributes) -> None:
    """The record's cost attributes, if it has a price (see the module docstring for the names)."""
    cost = record.cost
    if cost is None:
        return
    attrs[sc.USAGE_COST] = cost.batch_usd
    attrs[sc.LLM_COST_PROMPT] = cost.input_usd
    attrs[sc.LLM_COST_COMPLETION] = cost.output_usd
    attrs[sc.LLM_COST_TOTAL] = cost.batch_usd
    attrs[sc.COST_REALTIME] = cost.realtime_usd
    attrs[sc.COST_SOURCE] = cost.source
