"""The batch's figures in CloudWatch as well, through Powertools' EMF metrics.

The same figures ``batchtrace.send.metrics`` sends over OTLP, from the same summary: completions
by outcome and the cost at both rates for the batch (on the handler's ``Metrics``, beside its
delivery counts), and, per (provider, model, operation), the tokens, outcomes and cost, as one
EMF document each with those three as dimensions. CloudWatch has no histogram to put the
per-request token counts in, so tokens are sums here, as the handler has always reported them.
A cost stays out when nothing was priced: an unknown cost is never shown as zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from batchtrace import Summary

OUTCOMES: Final = ("succeeded", "failed", "expired", "no_result")
COSTS: Final = ("cost_usd", "cost_realtime_usd")
#: Lifecycle figures (seconds) the summary may carry, and their metric names.
LIFECYCLE: Final = {"queue_time_s": "queue_time", "run_time_s": "run_time"}
DIMENSIONS: Final = ("provider", "model", "operation")


def _outcome_metrics(target: Metrics | EphemeralMetrics, counts: Mapping[str, int]) -> None:
    for outcome in OUTCOMES:
        target.add_metric(name=f"requests_{outcome}", unit=MetricUnit.Count, value=counts.get(outcome, 0))


def _cost_metrics(target: Metrics | EphemeralMetrics, figures: Mapping[str, Any]) -> None:
    for name in COSTS:
        if figures.get(name) is not None:
            target.add_metric(name=name, unit=MetricUnit.NoUnit, value=figures[name])


def _model_document(namespace: str, row: Mapping[str, Any]) -> None:
    """One EMF document for one model's row of ``summary.by_model``, printed at once."""
    document = EphemeralMetrics(namespace=namespace)
    for dimension in DIMENSIONS:
        document.add_dimension(name=dimension, value=str(row.get(dimension) or "unknown"))
    for name in ("input_tokens", "output_tokens"):
        document.add_metric(name=name, unit=MetricUnit.Count, value=row[name])
    _outcome_metrics(document, row)
    _cost_metrics(document, row)
    document.flush_metrics()


def add_batch_metrics(metrics: Metrics, summary: Summary, namespace: str) -> None:
    """Add the batch's outcome, cost and lifecycle figures to ``metrics``; print one document per model."""
    totals = {outcome: sum(row[outcome] for row in summary.by_model) for outcome in OUTCOMES}
    _outcome_metrics(metrics, totals)
    _cost_metrics(metrics, {name: getattr(summary, name, None) for name in COSTS})
    for field, name in LIFECYCLE.items():
        seconds = getattr(summary, field, None)
        if seconds is not None:
            metrics.add_metric(name=name, unit=MetricUnit.Seconds, value=seconds)
    for row in summary.by_model:
        _model_document(namespace, row)
