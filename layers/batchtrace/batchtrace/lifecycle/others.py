"""Batch jobs of the OpenAI-like hosts whose job objects are their own: Mistral and Together AI.

- Mistral: ``status`` ``QUEUED``, ``RUNNING``, ``SUCCESS``, ``FAILED``, ``TIMEOUT_EXCEEDED``,
  ``CANCELLATION_REQUESTED``, ``CANCELLED``; epoch-seconds ``created_at``, ``started_at``,
  ``completed_at``; ``total_requests``, ``completed_requests``, ``succeeded_requests``,
  ``failed_requests``; ``errors[{message, count}]``; ``metadata``.
- Together AI: ``status`` ``VALIDATING``, ``IN_PROGRESS``, ``COMPLETED``, ``FAILED``,
  ``EXPIRED``, ``CANCELLING``, ``CANCELLED``; ISO ``created_at``, ``completed_at``; ``model_id``;
  ``error``; no request counts (only a ``progress`` percentage).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchtrace.lifecycle.model import (
    BatchLifecycle,
    Outcome,
    Phase,
    capped,
    error_message,
    figures,
    mapping,
    summarise,
    text,
    timeline,
)

MISTRAL, TOGETHER = "mistral_ai", "together_ai"

_MISTRAL_TIMELINE = (
    ("created_at", "created", Phase.CREATED),
    ("started_at", "started", Phase.IN_PROGRESS),
    ("completed_at", "completed", Phase.ENDED),
)
_MISTRAL_OUTCOMES = {
    "SUCCESS": Outcome.COMPLETED,
    "FAILED": Outcome.FAILED,
    "TIMEOUT_EXCEEDED": Outcome.EXPIRED,
    "CANCELLED": Outcome.CANCELLED,
}
_MISTRAL_COUNTS = {
    "total_requests": "total",
    "completed_requests": "processed",
    "succeeded_requests": "succeeded",
    "failed_requests": "failed",
}
_TOGETHER_TIMELINE = (
    ("created_at", "created", Phase.CREATED),
    ("completed_at", "completed", Phase.ENDED),
)
_TOGETHER_OUTCOMES = {
    "COMPLETED": Outcome.COMPLETED,
    "FAILED": Outcome.FAILED,
    "EXPIRED": Outcome.EXPIRED,
    "CANCELLED": Outcome.CANCELLED,
}


def is_mistral(obj: Mapping[str, Any]) -> bool:
    return "total_requests" in obj or "input_files" in obj


def is_together(obj: Mapping[str, Any]) -> bool:
    return "model_id" in obj or "job_deadline" in obj


def _mistral_errors(obj: Mapping[str, Any]) -> tuple[str, ...]:
    errors = obj.get("errors")
    if not isinstance(errors, list):
        return ()
    return capped(message for item in errors if (message := error_message(item)))


def parse_mistral(obj: Mapping[str, Any]) -> BatchLifecycle:
    status = text(obj, "status")
    errors = _mistral_errors(obj)
    counts = figures(obj, _MISTRAL_COUNTS)
    return BatchLifecycle(
        id=text(obj, "id"),
        provider=MISTRAL,
        status=status,
        outcome=_MISTRAL_OUTCOMES.get((status or "").upper()),
        events=timeline(obj, _MISTRAL_TIMELINE),
        endpoint=text(obj, "endpoint"),
        model=text(obj, "model"),
        counts=counts,
        counts_source="job" if counts else None,
        reason=summarise("the batch reported errors", errors),
        validation_errors=errors,
        traceparent=text(mapping(obj, "metadata"), "traceparent"),
    )


def parse_together(obj: Mapping[str, Any]) -> BatchLifecycle:
    status = text(obj, "status")
    return BatchLifecycle(
        id=text(obj, "id"),
        provider=TOGETHER,
        status=status,
        outcome=_TOGETHER_OUTCOMES.get((status or "").upper()),
        events=timeline(obj, _TOGETHER_TIMELINE),
        endpoint=text(obj, "endpoint"),
        model=text(obj, "model_id"),
        reason=error_message(obj.get("error")),
    )
