"""Jobs in Google's API style: Gemini API batches, Vertex AI batch prediction jobs, Fireworks jobs.

They share the conventions of Google's API design guide: a resource ``name`` as the id
(``batches/...``, ``projects/.../batchPredictionJobs/...``, ``accounts/.../batchInferenceJobs/...``),
a ``state`` enum with a prefix (``BATCH_STATE_SUCCEEDED`` in the Gemini API, ``JOB_STATE_*`` in
its SDK, in Vertex AI and in Fireworks), RFC 3339 times with nanoseconds, an ``error`` that is a
``google.rpc.Status``, and counts as int64 strings with zeros left out.

- Gemini: the batch is an operation whose ``metadata`` holds ``createTime``, ``endTime``,
  ``state`` and ``batchStats`` ``{requestCount, successfulRequestCount, failedRequestCount,
  pendingRequestCount}``.
- Vertex AI: ``createTime``, ``startTime``, ``endTime``, ``state``, ``labels`` (a traceparent
  fits a label value), ``completionStats`` ``{successfulCount, failedCount, incompleteCount}``.
- Fireworks: ``createTime``, ``updateTime`` (the end, once the state is final), ``status``
  ``{code, message}``, ``jobProgress`` with request and token totals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchtrace.lifecycle.model import (
    BatchLifecycle,
    Outcome,
    Phase,
    error_message,
    figures,
    last_segment,
    mapping,
    text,
    timeline,
)

GEMINI, VERTEX, FIREWORKS = "gcp.gemini", "gcp.vertex_ai", "fireworks_ai"

TIMELINE = (
    ("createTime", "created", Phase.CREATED),
    ("create_time", "created", Phase.CREATED),
    ("startTime", "started", Phase.IN_PROGRESS),
    ("start_time", "started", Phase.IN_PROGRESS),
    ("endTime", "ended", Phase.ENDED),
    ("end_time", "ended", Phase.ENDED),
)
_FIREWORKS_TIMELINE = (("createTime", "created", Phase.CREATED),)
_FIREWORKS_END = (("updateTime", "ended", Phase.ENDED),)

_OUTCOMES = {
    "SUCCEEDED": Outcome.COMPLETED,
    "COMPLETED": Outcome.COMPLETED,
    "PARTIALLY_SUCCEEDED": Outcome.PARTIALLY_COMPLETED,
    "FAILED": Outcome.FAILED,
    "CANCELLED": Outcome.CANCELLED,
    "EXPIRED": Outcome.EXPIRED,
}
_GEMINI_STATS = {
    "requestCount": "total",
    "successfulRequestCount": "succeeded",
    "failedRequestCount": "failed",
    "pendingRequestCount": "pending",
}
_VERTEX_STATS = {"successfulCount": "succeeded", "failedCount": "failed", "incompleteCount": "incomplete"}
_FIREWORKS_PROGRESS = {
    "totalInputRequests": "total",
    "totalProcessedRequests": "processed",
    "successfullyProcessedRequests": "succeeded",
    "failedRequests": "failed",
    "inputTokens": "input_tokens",
    "outputTokens": "output_tokens",
}


def _state(body: Mapping[str, Any]) -> str | None:
    return text(body, "state")


def _outcome(state: str | None) -> Outcome | None:
    """``BATCH_STATE_FAILED``, ``JOB_STATE_FAILED``: the word after the prefix decides."""
    for prefix in ("BATCH_STATE_", "JOB_STATE_"):
        if state and state.startswith(prefix):
            return _OUTCOMES.get(state[len(prefix) :])
    return None


def _gemini_body(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The batch itself: the operation's ``metadata``, or the object when it is the batch already."""
    metadata = mapping(obj, "metadata")
    return metadata if "state" in metadata or "createTime" in metadata else obj


def is_gemini(obj: Mapping[str, Any]) -> bool:
    name = text(obj, "name") or ""
    return name.startswith("batches/") or "batchStats" in _gemini_body(obj)


def is_vertex(obj: Mapping[str, Any]) -> bool:
    return "/batchPredictionJobs/" in (text(obj, "name") or "") or "completionStats" in obj


def is_fireworks(obj: Mapping[str, Any]) -> bool:
    return "/batchInferenceJobs/" in (text(obj, "name") or "") or "jobProgress" in obj


def parse_gemini(obj: Mapping[str, Any]) -> BatchLifecycle:
    body = _gemini_body(obj)
    state = _state(body)
    counts = figures(body.get("batchStats"), _GEMINI_STATS, zero_when_absent=True)
    return BatchLifecycle(
        id=text(body, "name") or text(obj, "name"),
        provider=GEMINI,
        status=state,
        outcome=_outcome(state),
        events=timeline(body, TIMELINE),
        model=last_segment(text(body, "model")),
        counts=counts,
        counts_source="batchStats" if counts else None,
        reason=error_message(obj.get("error")) or error_message(body.get("error")),
    )


def parse_vertex(obj: Mapping[str, Any]) -> BatchLifecycle:
    state = _state(obj)
    counts = figures(obj.get("completionStats"), _VERTEX_STATS, zero_when_absent=True)
    if counts:
        counts["total"] = sum(counts.values())
    return BatchLifecycle(
        id=text(obj, "name"),
        provider=VERTEX,
        status=state,
        outcome=_outcome(state),
        events=timeline(obj, TIMELINE),
        model=last_segment(text(obj, "model", "modelVersionId")),
        counts=counts,
        counts_source="completionStats" if counts else None,
        reason=error_message(obj.get("error")),
        traceparent=text(mapping(obj, "labels"), "traceparent"),
    )


def parse_fireworks(obj: Mapping[str, Any]) -> BatchLifecycle:
    state = _state(obj)
    outcome = _outcome(state)
    fields = _FIREWORKS_TIMELINE + (_FIREWORKS_END if outcome is not None else ())
    counts = figures(obj.get("jobProgress"), _FIREWORKS_PROGRESS)
    return BatchLifecycle(
        id=text(obj, "name"),
        provider=FIREWORKS,
        status=state,
        outcome=outcome,
        events=timeline(obj, fields),
        model=last_segment(text(obj, "model")),
        counts=counts,
        counts_source="jobProgress" if counts else None,
        reason=error_message(mapping(obj, "status")) if outcome in (Outcome.FAILED, Outcome.EXPIRED) else None,
    )
