"""Amazon Bedrock batch inference: the GetModelInvocationJob response and ``manifest.json.out``.

The job: ``jobArn`` (its last segment is the job id, the folder Bedrock writes the outputs
to), ``status`` (``Submitted``, ``Validating``, ``Scheduled``, ``InProgress``, ``Completed``,
``PartiallyCompleted``, ``Failed``, ``Stopping``, ``Stopped``, ``Expired``), ``submitTime``
and ``endTime`` (ISO strings in JSON, ``datetime`` objects from boto3), ``message`` (why it
failed), ``modelId``, ``timeoutDurationInHours``. Its tags are not in the response. Newer
responses also carry the record counts that the manifest holds.

The manifest: ``totalRecordCount``, ``processedRecordCount``, ``successRecordCount``,
``errorRecordCount``, ``inputTokenCount``, ``outputTokenCount`` for the whole job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchtrace.lifecycle.model import BatchLifecycle, Outcome, Phase, count, figures, last_segment, text, timeline

PROVIDER = "aws.bedrock"
MANIFEST = "manifest.json.out"

TIMELINE = (
    ("submitTime", "submitted", Phase.CREATED),
    ("endTime", "ended", Phase.ENDED),
)
_OUTCOMES = {
    "completed": Outcome.COMPLETED,
    "partiallycompleted": Outcome.PARTIALLY_COMPLETED,
    "failed": Outcome.FAILED,
    "stopped": Outcome.CANCELLED,
    "expired": Outcome.EXPIRED,
}
_COUNTS = {
    "totalRecordCount": "total",
    "processedRecordCount": "processed",
    "successRecordCount": "succeeded",
    "errorRecordCount": "failed",
    "inputTokenCount": "input_tokens",
    "outputTokenCount": "output_tokens",
}


def is_job(obj: Mapping[str, Any]) -> bool:
    return "jobArn" in obj or "submitTime" in obj


def is_manifest(obj: Mapping[str, Any]) -> bool:
    return "totalRecordCount" in obj and not is_job(obj)


def _window(obj: Mapping[str, Any]) -> str | None:
    hours = count(obj.get("timeoutDurationInHours"))
    return f"{hours}h" if hours else None


def parse_job(obj: Mapping[str, Any]) -> BatchLifecycle:
    status = text(obj, "status")
    counts = figures(obj, _COUNTS)
    return BatchLifecycle(
        id=last_segment(text(obj, "jobArn")),
        provider=PROVIDER,
        status=status,
        outcome=_OUTCOMES.get((status or "").lower()),
        events=timeline(obj, TIMELINE),
        completion_window=_window(obj),
        model=last_segment(text(obj, "modelId")),
        counts=counts,
        counts_source="GetModelInvocationJob" if counts else None,
        reason=text(obj, "message"),
    )


def parse_manifest(obj: Mapping[str, Any]) -> BatchLifecycle:
    """Counts only: the manifest says nothing of the job's times or state."""
    return BatchLifecycle(provider=PROVIDER, counts=figures(obj, _COUNTS), counts_source=MANIFEST)
