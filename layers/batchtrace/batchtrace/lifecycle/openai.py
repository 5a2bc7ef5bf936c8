"""OpenAI's batch object (and Azure OpenAI's, which is the same with ISO times and capitalised statuses).

Fields: ``status`` (``validating``, ``in_progress``, ``finalizing``, ``completed``, ``failed``,
``expired``, ``cancelling``, ``cancelled``), one epoch-seconds timestamp per phase
(``created_at`` ... ``cancelled_at``), ``errors.data[]`` (``{code, message, param, line}``: why
validation failed), ``request_counts`` ``{total, completed, failed}``, ``usage`` (token totals,
in newer objects), ``endpoint``, ``completion_window``, ``metadata`` (where a submitter may keep
a ``traceparent``). ``expires_at`` is a deadline, not something that happened: it is no event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchtrace.lifecycle.model import (
    BatchLifecycle,
    Outcome,
    Phase,
    capped,
    figures,
    mapping,
    summarise,
    text,
    timeline,
)

PROVIDER = "openai"

TIMELINE = (
    ("created_at", "created", Phase.CREATED),
    ("in_progress_at", "in_progress", Phase.IN_PROGRESS),
    ("finalizing_at", "finalizing", Phase.FINALIZING),
    ("completed_at", "completed", Phase.ENDED),
    ("failed_at", "failed", Phase.ENDED),
    ("expired_at", "expired", Phase.ENDED),
    ("cancelling_at", "cancelling", Phase.OTHER),
    ("cancelled_at", "cancelled", Phase.ENDED),
)
TIME_FIELDS = frozenset(name for name, _, _ in TIMELINE)

_OUTCOMES = {
    "completed": Outcome.COMPLETED,
    "failed": Outcome.FAILED,
    "expired": Outcome.EXPIRED,
    "cancelled": Outcome.CANCELLED,
}
#: ``request_counts.failed`` counts requests that ran and failed: an expired batch reports
#: ``{total: 10, completed: 1, failed: 0}`` with nine ``batch_expired`` lines in its error file.
_COUNTS = {"total": "total", "completed": "succeeded", "failed": "failed"}
_USAGE = {"input_tokens": "input_tokens", "output_tokens": "output_tokens"}


def is_openai(obj: Mapping[str, Any]) -> bool:
    """An OpenAI batch object, or a fragment of one (a ``trace.json`` may keep only its times)."""
    return obj.get("object") == "batch" or "request_counts" in obj or not TIME_FIELDS.isdisjoint(obj)


def validation_errors(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """``errors.data[]`` as ``line 3: invalid_json_line: ...`` lines."""
    data = mapping(obj, "errors").get("data")
    if not isinstance(data, list):
        return ()
    return capped(_error_line(item) for item in data if isinstance(item, Mapping))


def _error_line(item: Mapping[str, Any]) -> str:
    parts = [f"line {item['line']}" if isinstance(item.get("line"), int) else None, text(item, "code")]
    parts.append(text(item, "message") or "no message")
    return ": ".join(part for part in parts if part)


def _reason(outcome: Outcome | None, errors: tuple[str, ...]) -> str | None:
    return summarise("the batch failed validation", errors) if outcome is Outcome.FAILED else None


def parse(obj: Mapping[str, Any]) -> BatchLifecycle:
    status = (text(obj, "status") or "").lower() or None
    outcome = _OUTCOMES.get(status or "")
    errors = validation_errors(obj)
    counts = figures(obj.get("request_counts"), _COUNTS) | figures(obj.get("usage"), _USAGE)
    return BatchLifecycle(
        id=text(obj, "id"),
        provider=PROVIDER,
        status=status,
        outcome=outcome,
        events=timeline(obj, TIMELINE),
        endpoint=text(obj, "endpoint"),
        completion_window=text(obj, "completion_window"),
        model=text(obj, "model"),
        counts=counts,
        counts_source="request_counts" if counts else None,
        reason=_reason(outcome, errors),
        validation_errors=errors,
        traceparent=text(mapping(obj, "metadata"), "traceparent"),
    )
