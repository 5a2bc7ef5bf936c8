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
from batchtrace.lifecycle import NO_LIFECYCLE, BatchLifecycle, Reconciliation
from batchtrace.lifecycle.span import batch_span_extras
from batchtrace.record import AttributeValue, Record
from batchtrace.timestamps import AT_ORIGINAL_TIMES, TimestampPolicy
from batchtrace.trace_link import TraceLink
from batchtrace.write.attributes import SpanAttributes
from batchtrace.write.compat import write_compat
from batchtrace.write.cost import write_cost
from batchtrace.write.genai import write_genai
from batchtrace.write.identity import write_identity

Attributes = dict[str, AttributeValue]

_NS = 1_000_000_000
_SCOPE = InstrumentationScope("batchtrace", __version__)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_OFF = frozenset({"false", "0", "no", "off"})


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
    cost: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WriterSet:
        """``BATCHTRACE_COMPAT_ATTRIBUTES=false`` leaves out the Respan/Traceloop set,
        ``BATCHTRACE_COST_ATTRIBUTES=false`` the cost attributes."""
        env = os.environ if env is None else env

        def on(name: str) -> bool:
            return (env.get(name) or "true").strip().lower() not in _OFF

        return cls(compat=on("BATCHTRACE_COMPAT_ATTRIBUTES"), cost=on("BATCHTRACE_COST_ATTRIBUTES"))


def _seconds(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


class SpanFactory:
    """Builds a batch's spans with the ids, resource and writers they share."""

    def __init__(
        self,
        link: TraceLink,
        *,
        batch_id: str | None,
        capture: bool = True,
        writers: WriterSet = WriterSet(),
        lifecycle: BatchLifecycle = NO_LIFECYCLE,
        resource: Resource | None = None,
        now_ns: int | None = None,
        timestamps: TimestampPolicy = AT_ORIGINAL_TIMES,
    ) -> None:
        self.link = link
        self.batch_id = batch_id
        self.capture = capture
        self.writers = writers
        self.lifecycle = lifecycle
        self.resource = resource or default_resource()
        self.now_ns = now_ns if now_ns is not None else time.time_ns()
        self.timestamps = timestamps
        self._parent = SpanContext(link.trace_id, link.completion_parent, is_remote=False, trace_flags=_SAMPLED)

    def fallback_ns(self) -> int:
        return min(self.lifecycle.end_ns or self.lifecycle.created_ns or self.now_ns, self.now_ns)

    def time_of(self, record: Record) -> int:
        created = _seconds(record.created_s)
        if created is None:
            return self.fallback_ns()
        return min(int(created * _NS), self.now_ns)

    def attributes(self, record: Record) -> Attributes:
        attrs: Attributes = SpanAttributes()  # JSON texts stay UTF-8 until encoded
        write_genai(record, attrs, self.capture)
        write_identity(record, attrs, self.batch_id)
        if self.writers.compat:
            write_compat(record, attrs, self.capture)
        if self.writers.cost:
            write_cost(record, attrs)
        return attrs

    def completion(self, record: Record) -> ReadableSpan:
        """The span of one record, at the provider's time for it (or at processing time: ``timestamps``)."""
        at_ns = self.timestamps.place(self.time_of(record), self.now_ns)
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

    def event_time(self, at_ns: int) -> int:
        """A lifecycle event's time: the provider's, never in the future (or processing time: ``timestamps``)."""
        return self.timestamps.place(min(at_ns, self.now_ns), self.now_ns)

    def batch_window(self, earliest_ns: int | None, latest_ns: int | None) -> tuple[int, int]:
        """The batch span's start and end: the lifecycle when known, widened to the completions."""
        start = self.lifecycle.created_ns or earliest_ns or self.fallback_ns()
        end = self.lifecycle.end_ns or latest_ns or start
        if earliest_ns is not None:
            start = min(start, earliest_ns)
        if latest_ns is not None:
            end = max(end, latest_ns)
        end = min(end, self.now_ns)
        return min(start, end), end

    def batch_span(
        self,
        counts: Mapping[str, AttributeValue],
        window: tuple[int, int],
        error: str | None = None,
        reconciliation: Reconciliation | None = None,
    ) -> ReadableSpan | None:
        """The ``batch_results`` task span, or ``None`` when completions nest under a caller's span.

        With the batch's lifecycle it carries one event per lifecycle timestamp, and is in ERROR
        (with the provider's reason) when the batch failed, expired or was cancelled.
        """
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
        window, originals = self.timestamps.place_window(window, self.now_ns)
        attrs.update(originals)
        extras = batch_span_extras(self.lifecycle, reconciliation, self.event_time)
        attrs.update(extras.attributes)
        error = error or extras.error
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
            events=extras.events,
            instrumentation_scope=_SCOPE,
        )
