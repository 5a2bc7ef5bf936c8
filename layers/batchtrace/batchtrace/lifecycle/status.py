"""A batch with no result files still gets its ``batch_results`` span: one that failed validation,
expired with nothing done, or was cancelled.

Such a batch is the one a submitter most needs to see in the trace, and it has nothing for the
file pipeline to read. :func:`log_batch_status` sends the span from the batch object alone: its
lifecycle as events, in ERROR with the provider's reason and validation errors.
:func:`log_s3_batch_status` does the same for a Step Functions payload, finding the trace the
batch was submitted from in ``trace.json`` (or the input's metadata) in the batch's S3 folder.
"""

from __future__ import annotations

import posixpath
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from batchtrace.errors import InputError
from batchtrace.lifecycle.detect import require_lifecycle
from batchtrace.lifecycle.link import hint_with_stored_traceparent
from batchtrace.lifecycle.model import BatchLifecycle
from batchtrace.run import OnTrace, batch_counts
from batchtrace.s3_batch import BatchLocation, FileNames, read_trace_json, trace_hint_for
from batchtrace.send.delivery import DeliveryPolicy, OtlpSender
from batchtrace.send.otlp_config import OtlpConfig
from batchtrace.tally import Summary, Tally
from batchtrace.timestamps import TimestampPolicy
from batchtrace.trace_link import TraceHint, TraceLink, resolve_hint, resolve_link
from batchtrace.write.spans import SpanFactory

_TRACE_FIELDS = ("traceparent", "trace_id", "span_id")
_DEFAULT_NAMES = FileNames()


def _link(hint: TraceHint, batch_id: str) -> tuple[TraceLink, str | None]:
    """The trace link, with a live context made the parent of ``batch_results``: there are no completions to nest."""
    link, warning = resolve_hint(hint, batch_id)
    if link.batch_span_id is None:
        link = resolve_link(batch_id, trace_id=link.trace_id, parent_span_id=link.completion_parent)
    return link, warning


def _send_batch_span(
    factory: SpanFactory, link_warning: str | None, otlp: OtlpConfig, delivery: DeliveryPolicy
) -> Tally:
    """Build and send the one span; the tally of it (built, delivered or failed)."""
    tally = Tally()
    span = factory.batch_span(batch_counts(tally, link_warning), factory.batch_window(None, None))
    assert span is not None, "a link resolved for a batch span always has one"
    tally.spans_built += 1
    OtlpSender(otlp, delivery).send([span], tally)
    return tally


def log_batch_status(
    batch: Mapping[str, Any] | BatchLifecycle,
    *,
    hint: TraceHint | None = None,
    batch_id: str | None = None,
    otlp: OtlpConfig | None = None,
    delivery: DeliveryPolicy | None = None,
    timestamps: TimestampPolicy | None = None,
    on_trace: OnTrace | None = None,
    **span_options: Any,
) -> Summary:
    """Send only the ``batch_results`` span of a batch, from its object or job; the summary.

    For a batch that has no result files (it failed, expired or was cancelled before any ran):
    the span runs from its creation to its final state with an event per timestamp, in ERROR
    with the provider's reason. It goes in the trace ``hint`` names (a caller's ``traceparent``
    becomes its parent), else the one in the batch's metadata, else a new trace derived from the
    batch id. ``span_options`` go to :class:`SpanFactory` (``resource``, ``now_ns``). Raises
    :class:`InputError` when ``batch`` is of no known provider or has no id and none is given.
    Delivery failures are counted in the summary, never raised.
    """
    started = time.monotonic()
    lifecycle = require_lifecycle(batch, "the batch")
    key = batch_id or lifecycle.id
    if not key:
        raise InputError("the batch object has no id; name the batch with batch_id")
    link, link_warning = _link(hint_with_stored_traceparent(hint or TraceHint(), lifecycle), key)
    if on_trace is not None:
        on_trace(key, link.trace_id_hex)
    policy = timestamps or TimestampPolicy.from_env()
    factory = SpanFactory(link, batch_id=key, lifecycle=lifecycle, timestamps=policy, **span_options)
    tally = _send_batch_span(factory, link_warning, otlp or OtlpConfig.resolve(), delivery or DeliveryPolicy())
    return Summary.of(
        tally,
        batch_id=key,
        trace_id=link.trace_id_hex,
        provider=lifecycle.provider,
        duration_ms=int((time.monotonic() - started) * 1000),
    )


# --------------------------------------------------------------------------- a Step Functions payload


def _optional_string(payload: Mapping[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InputError(f"payload field {name!r} must be a string, got {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class StatusRequest:
    """A batch to log from its object alone: ``{"batch": {...}, "bucket"?, "prefix"?, "batch_id"?, trace ids?}``.

    ``batch`` is the provider's batch object, or the batch lifecycle state machine's
    ``{"status", "object"}`` around it. ``bucket`` and ``prefix`` say where the batch's folder
    (``<prefix><batch_id>/``) is, for its ``trace.json``.
    """

    batch: Mapping[str, Any]
    bucket: str | None = None
    prefix: str = ""
    batch_id: str | None = None
    traceparent: str | None = None
    trace_id: str | None = None
    span_id: str | None = None

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> StatusRequest:
        """The request in a payload; :class:`InputError` in one line when a field is unusable."""
        batch = payload.get("batch")
        if isinstance(batch, Mapping) and isinstance(batch.get("object"), Mapping):
            batch = batch["object"]
        if not isinstance(batch, Mapping):
            raise InputError("the payload's 'batch' must be the provider's batch object")
        fields = {name: _optional_string(payload, name) for name in ("bucket", "batch_id", *_TRACE_FIELDS)}
        return cls(batch=batch, prefix=_optional_string(payload, "prefix") or "", **fields)

    def hint(self) -> TraceHint | None:
        """The caller's own trace context, when the payload carries one (strict: the caller's error if bad)."""
        if not (self.traceparent or self.trace_id):
            return None
        return TraceHint(traceparent=self.traceparent, trace_id=self.trace_id, span_id=self.span_id)


def _is_missing(err: Exception) -> bool:
    response = getattr(err, "response", None)
    code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, Mapping) else ""
    return code in ("NoSuchKey", "404", "NotFound")


def _metadata(s3: Any, bucket: str, key: str | None) -> Mapping[str, str]:
    """The input object's user metadata (``trace-id``, ``span-id``); empty when there is no input."""
    try:
        return s3.head_object(Bucket=bucket, Key=key or "").get("Metadata") or {}
    except Exception as err:
        if _is_missing(err):
            return {}
        raise


def stored_hint(s3: Any, request: StatusRequest, batch_id: str, names: FileNames = _DEFAULT_NAMES) -> TraceHint:
    """The trace hint for a request: its own trace ids, else those stored in the batch's S3 folder."""
    own = request.hint()
    if own is not None or not request.bucket:
        return own or TraceHint()
    folder = f"{request.prefix}{batch_id}"
    location = BatchLocation(bucket=request.bucket, output_key=posixpath.join(folder, "output.jsonl"))
    location = location.with_defaults(names)
    trace_doc = read_trace_json(s3, location)
    return trace_hint_for(location, trace_doc, _metadata(s3, request.bucket, location.input_key))


def log_s3_batch_status(
    s3: Any, request: StatusRequest, *, names: FileNames = _DEFAULT_NAMES, **options: Any
) -> Summary:
    """:func:`log_batch_status` for a payload, in the trace stored with the batch in S3 when the payload names none."""
    lifecycle = require_lifecycle(request.batch, "the payload's batch")
    batch_id = request.batch_id or lifecycle.id
    if not batch_id:
        raise InputError("the payload's batch has no id; add 'batch_id'")
    hint = stored_hint(s3, request, batch_id, names)
    return log_batch_status(lifecycle, hint=hint, batch_id=batch_id, **options)
