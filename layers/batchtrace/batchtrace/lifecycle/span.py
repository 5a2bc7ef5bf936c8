"""What the batch's lifecycle and reconciliation add to the ``batch_results`` span.

Attributes (status, outcome, queue and run time, endpoint, completion window, the provider's
counts, the reconciliation's figures), one span event per lifecycle timestamp, and the error a
batch that failed, expired or was cancelled puts the span in. The span itself is built by
:class:`~batchtrace.write.spans.SpanFactory`; this module only decides what goes on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from opentelemetry.sdk.trace import Event

from batchtrace import semconv as sc
from batchtrace.lifecycle.model import BatchLifecycle
from batchtrace.lifecycle.reconcile import Reconciliation
from batchtrace.record import AttributeValue

Attributes = dict[str, AttributeValue]
_NS = 1_000_000_000


@dataclass(slots=True)
class BatchSpanExtras:
    """The lifecycle's share of ``batch_results``: attributes, events and, for a failed batch, the error."""

    attributes: Attributes = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    error: str | None = None


def _put(attrs: Attributes, key: str, value: AttributeValue | None) -> None:
    if value is not None and value != "" and value != []:
        attrs[key] = value


def lifecycle_attributes(lifecycle: BatchLifecycle) -> Attributes:
    """The lifecycle's attributes; none for an unknown lifecycle."""
    attrs: Attributes = {}
    if not lifecycle.known:
        return attrs
    for key, value in (
        (sc.BATCH_PROVIDER, lifecycle.provider),
        (sc.BATCH_STATUS, lifecycle.status),
        (sc.BATCH_OUTCOME, lifecycle.outcome.value if lifecycle.outcome else None),
        (sc.BATCH_QUEUE_TIME, lifecycle.queue_time_s),
        (sc.BATCH_RUN_TIME, lifecycle.run_time_s),
        (sc.BATCH_DURATION, lifecycle.duration_s),
        (sc.BATCH_ENDPOINT, lifecycle.endpoint),
        (sc.BATCH_COMPLETION_WINDOW, lifecycle.completion_window),
        (sc.BATCH_MODEL, lifecycle.model),
        (sc.BATCH_COUNTS_SOURCE, lifecycle.counts_source),
        (sc.BATCH_VALIDATION_ERRORS, list(lifecycle.validation_errors)),
    ):
        _put(attrs, key, value)
    for name, value in lifecycle.counts.items():
        prefix = sc.BATCH_USAGE_PREFIX if name.endswith("_tokens") else sc.BATCH_REQUEST_COUNTS_PREFIX
        attrs[prefix + name] = value
    return attrs


def failure_attributes(lifecycle: BatchLifecycle) -> Attributes:
    """``error.type`` (``batch_failed``, ``batch_expired``, ``batch_cancelled``) and the reason."""
    if not lifecycle.unsuccessful or lifecycle.outcome is None:
        return {}
    return {
        sc.ERROR_TYPE: f"{sc.BATCH_ERROR_TYPE_PREFIX}{lifecycle.outcome.value}",
        sc.BATCH_FAILURE_REASON: lifecycle.failure or "",
    }


def reconciliation_attributes(reconciliation: Reconciliation | None) -> Attributes:
    """Whether the provider's counts agree with the files, and both sets of figures."""
    if reconciliation is None:
        return {}
    attrs: Attributes = {sc.RECONCILIATION_AGREE: reconciliation.agree, sc.RECONCILIATION_SOURCE: reconciliation.source}
    for name, value in reconciliation.provider.items():
        attrs[sc.RECONCILIATION_PROVIDER_PREFIX + name] = value
        attrs[sc.RECONCILIATION_SEEN_PREFIX + name] = reconciliation.seen[name]
    return attrs


def lifecycle_events(lifecycle: BatchLifecycle, place: Callable[[int], int]) -> list[Event]:
    """``batch.created``, ``batch.in_progress``, ...: one event per timestamp.

    ``place`` decides where an event goes in time (never in the future; at processing time when
    spans are moved there), so each event also keeps the provider's time as epoch seconds.
    """
    return [
        Event(
            f"{sc.BATCH_EVENT_PREFIX}{event.name}",
            attributes={sc.BATCH_EVENT_FIELD: event.field, sc.BATCH_EVENT_TIME: event.time_ns / _NS},
            timestamp=place(event.time_ns),
        )
        for event in lifecycle.events
    ]


def batch_span_extras(
    lifecycle: BatchLifecycle, reconciliation: Reconciliation | None, place: Callable[[int], int]
) -> BatchSpanExtras:
    """Everything the lifecycle and the reconciliation put on ``batch_results``."""
    attributes = lifecycle_attributes(lifecycle)
    attributes.update(failure_attributes(lifecycle))
    attributes.update(reconciliation_attributes(reconciliation))
    return BatchSpanExtras(attributes, lifecycle_events(lifecycle, place), lifecycle.failure)
