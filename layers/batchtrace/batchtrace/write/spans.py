"""Finished OTel spans from records: one CLIENT span per record, one ``batch_results`` task span.

Spans are built directly as :class:`ReadableSpan` objects with their real times, which a live
tracer cannot do (it would stamp "now" and run every span through processors the work does not
need). A completion's time is the provider's (``Record.created_s``), clamped so no span ends in
the future; the batch's own timestamps are the fallback, then the time of processing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from batchtrace import __version__
from batchtrace import semconv as sc
from batchtrace.record import AttributeValue, Record
from batchtrace.trace_link import TraceLink
from batchtrace.write.compat import write_compat
from batchtrace.write.genai import write_genai
from batchtrace.write.identity import write_identity

Attributes = dict[str, AttributeValue]

_NS = 1_000_000_000
_SCOPE = InstrumentationScope("batchtrace", __version__)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_OFF = frozenset({"false", "0", "no", "off"})

#: Batch object fields that mark the end of its lifecycle, most specific first.
_BATCH_END_FIELDS = ("completed_at", "expired_at", "failed_at", "cancelled_at", "finalizing_at")


def default_resource() -> Resource:
    """The SDK's resource (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``), named batchtrace by default."""
    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "batchtrace"}))
    return resource


@dataclass(slots=True, frozen=True)
class WriterSet:
    """Which attribute dialects go on the spans besides the GenAI conventions (always on)."""

    compat: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WriterSet:
        """``BATCHTRACE_COMPAT_ATTRIBUTES=false`` leaves out the Respan/Traceloop set."""
        env = os.environ if env is None else env
        return cls(compat=(env.get("BATCHTRACE_COMPAT_ATTRIBUTES") or "true").strip().lower() not in _OFF)


def _seconds(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


@dataclass(slots=True, frozen=True)
class BatchTimes:
    """The batch's lifecycle in epoch nanoseconds, from the provider's batch object when known."""

    started_ns: int | None = None
    ended_ns: int | None = None

    @classmethod
    def from_batch(cls, batch: Mapping[str, Any] | None) -> BatchTimes:
        if not batch:
            return cls()
        start = _seconds(batch.get("created_at"))
        end = next((s for f in _BATCH_END_FIELDS if (s := _seconds(batch.get(f))) is not None), None)
        return cls(
            int(start * _NS) if start is not None else None,
            int(end * _NS) if end is not None else None,
        )


class SpanFactory:
    """Builds a batch's spans with the ids, resource and writers they share."""

    def __init__(
        self,
        link: TraceLink,
        *,
        batch_id: str | None,
        capture: bool = True,
        writers: WriterSet = WriterSet(),
        times: BatchTimes = BatchTimes(),
        resource: Resource | None = None,
        now_ns: int | None = None,
    ) -> None:
        self.link = link
        self.batch_id = batch_id
        self.capture = capture
        self.writers = writers
        self.times = times
        self.resource = resource or default_resource()
        self.now_ns = now_ns if now_ns is not None else time.time_ns()
        self._parent = SpanContext(link.trace_id, link.completion_parent, is_remote=False, trace_flags=_SAMPLED)

    def fallback_ns(self) -> int:
        return min(self.times.ended_ns or self.times.started_ns or self.now_ns, self.now_ns)

    def time_of(self, record: Record) -> int:
        created = _seconds(record.created_s)
        if created is None:
            return self.fallback_ns()
        return min(int(created * _NS), self.now_ns)

    def attributes(self, record: Record) -> Attributes:
        attrs: Attributes = {}
        write_genai(record, attrs, self.capture)
        write_identity(record, attrs, self.batch_id)
        if self.writers.compat:
            write_compat(record, attrs, self.capture)
        return attrs

    def completion(self, record: Record) -> ReadableSpan:
        """The span of one record, at the provider's time for it."""
        at_ns = self.time_of(record)
        failure = record.failure
        status = Status(StatusCode.ERROR, failure.message) if failure else Status(StatusCode.UNSET)
        model = record.model
        span_id = self.link.completion_span_id(record.custom_id, record.occurrence)
        return ReadableSpan(
            name=f"{record.operation} {model}" if model else record.operation,
            context=SpanContext(self.link.trace_id, span_id, is_remote=False, trace_flags=_SAMPLED),
            parent=self._parent,
            resource=self.resource,
            attributes=self.attributes(record),
            kind=SpanKind.CLIENT,
            status=status,
            start_time=at_ns,
            end_time=at_ns,
            instrumentation_scope=_SCOPE,
        )

    def batch_window(self, earliest_ns: int | None, latest_ns: int | None) -> tuple[int, int]:
        """The batch span's start and end: the lifecycle when known, widened to the completions."""
        start = self.times.started_ns or earliest_ns or self.fallback_ns()
        end = self.times.ended_ns or latest_ns or start
        if earliest_ns is not None:
            start = min(start, earliest_ns)
        if latest_ns is not None:
            end = max(end, latest_ns)
        end = min(end, self.now_ns)
        return min(start, end), end

    def batch_span(
        self, counts: Mapping[str, AttributeValue], window: tuple[int, int], error: str | None = None
    ) -> ReadableSpan | None:
        """The ``batch_results`` task span, or ``None`` when completions nest under a caller's span."""
        link = self.link
        if link.batch_span_id is None:
            return None
        attrs: Attributes = {
            sc.TRACELOOP_SPAN_KIND: "task",
            sc.TRACELOOP_ENTITY_NAME: "batch_results",
            sc.TRACELOOP_ENTITY_PATH: "",
            sc.RESPAN_LOG_TYPE: "task",
            sc.OPENINFERENCE_SPAN_KIND: "CHAIN",
            sc.TRACE_LINK: link.mode.value,
        }
        if self.batch_id:
            attrs[sc.BATCH_ID] = self.batch_id
        for key, value in counts.items():
            attrs[f"{sc.BATCH_COUNT_PREFIX}{key}"] = value
        parent = (
            SpanContext(link.trace_id, link.batch_parent, is_remote=True, trace_flags=_SAMPLED)
            if link.batch_parent
            else None
        )
        return ReadableSpan(
            name="batch_results",
            context=SpanContext(link.trace_id, link.batch_span_id, is_remote=False, trace_flags=_SAMPLED),
            parent=parent,
            resource=self.resource,
            attributes=attrs,
            kind=SpanKind.INTERNAL,
            status=Status(StatusCode.ERROR, error) if error else Status(StatusCode.UNSET),
            start_time=window[0],
            end_time=window[1],
            instrumentation_scope=_SCOPE,
        )
