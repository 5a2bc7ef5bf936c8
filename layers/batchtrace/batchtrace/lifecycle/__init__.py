"""The batch's own lifecycle, from whichever provider ran it, and the reconciliation of its counts.

A provider's batch object or job (``trace.json``'s ``batch``, a ``batch.json`` beside the
output, a Step Functions payload, ``--batch-json``) becomes one neutral :class:`BatchLifecycle`
(:func:`lifecycle_of` tells the shape from the object); the ``batch_results`` span runs from its
creation to its final state with one event per timestamp, and its counts are reconciled with
what the files held (:func:`reconcile`). :mod:`batchtrace.lifecycle.status` logs a batch that
has no files at all (it failed validation, expired or was cancelled).
"""

from batchtrace.lifecycle.detect import lifecycle_of, lifecycle_or_warn, require_lifecycle
from batchtrace.lifecycle.model import NO_LIFECYCLE, BatchLifecycle, LifecycleEvent, Outcome, Phase
from batchtrace.lifecycle.reconcile import Reconciliation, check_counts, reconcile

__all__ = [
    "NO_LIFECYCLE",
    "BatchLifecycle",
    "LifecycleEvent",
    "Outcome",
    "Phase",
    "Reconciliation",
    "check_counts",
    "lifecycle_of",
    "lifecycle_or_warn",
    "reconcile",
    "require_lifecycle",
]
