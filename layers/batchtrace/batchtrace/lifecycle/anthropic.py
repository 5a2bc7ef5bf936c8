"""Anthropic's Message Batch object (``type: message_batch``).

Fields: ``processing_status`` (``in_progress``, ``canceling``, ``ended``), RFC 3339
``created_at``, ``cancel_initiated_at`` and ``ended_at`` (``expires_at`` is a deadline, and
``archived_at`` is housekeeping), ``request_counts`` ``{processing, succeeded, errored,
canceled, expired}``. There is no word for how the batch ended beyond ``ended``: a batch whose
cancel was initiated was cancelled, one with expired requests ran out of its 24 hours.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchtrace.lifecycle.model import BatchLifecycle, Outcome, Phase, figures, text, timeline

PROVIDER = "anthropic"

TIMELINE = (
    ("created_at", "created", Phase.CREATED),
    ("cancel_initiated_at", "cancel_initiated", Phase.OTHER),
    ("ended_at", "ended", Phase.ENDED),
)
_COUNTS = {
    "processing": "pending",
    "succeeded": "succeeded",
    "errored": "failed",
    "canceled": "canceled",
    "expired": "expired",
}


def is_anthropic(obj: Mapping[str, Any]) -> bool:
    return obj.get("type") == "message_batch" or "processing_status" in obj


def _outcome(obj: Mapping[str, Any], counts: Mapping[str, int]) -> Outcome | None:
    if text(obj, "processing_status") != "ended":
        return None
    if text(obj, "cancel_initiated_at"):
        return Outcome.CANCELLED
    return Outcome.EXPIRED if counts.get("expired") else Outcome.COMPLETED


def parse(obj: Mapping[str, Any]) -> BatchLifecycle:
    counts = figures(obj.get("request_counts"), _COUNTS)
    if counts:
        # Every request is in exactly one bucket: their sum is the batch's size.
        counts["total"] = sum(counts.values())
    return BatchLifecycle(
        id=text(obj, "id"),
        provider=PROVIDER,
        status=text(obj, "processing_status"),
        outcome=_outcome(obj, counts),
        events=timeline(obj, TIMELINE),
        counts=counts,
        counts_source="request_counts" if counts else None,
    )
