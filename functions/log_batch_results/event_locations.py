"""Event shapes in, batch locations out: the only place that knows how each trigger looks.

Three callers reach the function: an S3 notification (``Records``, URL-encoded keys, maybe
several objects), an EventBridge "Object Created" event (keys not encoded), and a Step
Functions task payload (``bucket``/``output_key`` plus optional keys and trace context; or,
for a batch that failed or was cancelled and has no files, ``batch`` and no ``output_key``).
A fourth names a whole Bedrock batch inference job: EventBridge's "Batch Inference Job State
Change" (source ``aws.bedrock``, ``detail.batchJobArn``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event, S3EventBridgeNotificationEvent
from batchtrace import BatchLocation, InputError
from batchtrace.lifecycle.status import StatusRequest
from batchtrace.s3_batch import BEDROCK_SUFFIX
from batchtrace.sources.bedrock_job import JobSignal

_PAYLOAD_FIELDS = ("input_key", "errors_key", "trace_key", "batch_id", "traceparent", "trace_id", "span_id")
#: A payload's ``object_version`` (the copied output's S3 version id) keys idempotency like an S3
#: event for the same upload does, so a Step Functions run and the S3 trigger export once.
_PAYLOAD_TAG = "object_version"


def _payload_location(event: Mapping[str, Any]) -> BatchLocation:
    bucket, key = event.get("bucket"), event.get("output_key")
    if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
        raise InputError("the payload needs string fields 'bucket' and 'output_key'")
    extra = {name: event[name] for name in (*_PAYLOAD_FIELDS, _PAYLOAD_TAG) if event.get(name) is not None}
    for name, value in extra.items():
        if not isinstance(value, str):
            raise InputError(f"payload field {name!r} must be a string, got {type(value).__name__}")
    tag = extra.pop(_PAYLOAD_TAG, None)
    return BatchLocation(bucket=bucket, output_key=key, object_tag=tag, **extra)


def _s3_records(event: Mapping[str, Any]) -> list[BatchLocation]:
    return [
        BatchLocation(
            bucket=record.s3.bucket.name,
            # S3 notifications URL-encode keys; Powertools' record object does not decode them.
            output_key=unquote_plus(record.s3.get_object.key),
            object_tag=record.s3.get_object.version_id or record.s3.get_object.sequencer,
        )
        for record in S3Event(dict(event)).records
        if record.event_source == "aws:s3" and record.event_name.startswith("ObjectCreated")
    ]


def _eventbridge_object(event: Mapping[str, Any]) -> BatchLocation:
    detail = S3EventBridgeNotificationEvent(dict(event)).detail  # its .key is already decoded
    tag = detail.object.get("version-id") or detail.object.get("sequencer")
    return BatchLocation(bucket=detail.bucket.name, output_key=detail.object.key, object_tag=tag)


def bedrock_job_from_event(event: Any) -> JobSignal | None:
    """The job a Bedrock ``Batch Inference Job State Change`` event names, or ``None`` for any other event."""
    return JobSignal.from_event(event)


def status_request_from_event(event: Any) -> StatusRequest | None:
    """A payload naming a batch by its object alone (``batch``, no ``output_key``), or ``None``."""
    if isinstance(event, Mapping) and "batch" in event and "output_key" not in event:
        return StatusRequest.from_payload(event)
    return None


def locations_from_event(event: Any, output_name: str) -> list[BatchLocation]:
    """Every batch an event points at; objects not named ``output_name`` are left out.

    Raises :class:`InputError` for an event of no known shape, so a wiring mistake is loud.
    """
    if not isinstance(event, Mapping):
        raise InputError(f"unrecognised event: expected a JSON object, got {type(event).__name__}")
    if event.get("Event") == "s3:TestEvent":
        return []  # S3 sends one when a notification is configured: nothing to process
    if "Records" in event:
        found = _s3_records(event)
    elif event.get("source") == "aws.s3" and event.get("detail-type") == "Object Created":
        found = [_eventbridge_object(event)]
    elif "output_key" in event or "bucket" in event:
        return [_payload_location(event)]
    else:
        raise InputError(
            "unrecognised event: expected an S3 notification, an EventBridge 'Object Created' event"
            " or a payload with 'bucket' and 'output_key'"
        )
    return [loc for loc in found if _is_output(loc.output_key, output_name)]


def _is_output(key: str, output_name: str) -> bool:
    """An OpenAI-style output file, or any Bedrock ``*.jsonl.out`` (whatever its prefix)."""
    return posixpath.basename(key) == output_name or key.endswith(BEDROCK_SUFFIX)
