"""Finished OTel spans for a batch: one CLIENT span per result, one ``batch_results`` task span.

Spans are built directly as :class:`ReadableSpan` objects with their real times, which a live
tracer cannot do (it would stamp "now" and run every span through processors the work does not
need). Times come from the response's ``created``, clamped so no span ends in the future or
before it starts; the batch's own timestamps are the fallback, then the time of processing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from batchtrace import __version__
from batchtrace.genai_attributes import (
    Attributes,
    ContentPolicy,
    operation_name,
    request_attributes,
    response_attributes,
)
from batchtrace.openai_format import BatchRequest, BatchResult
from batchtrace.trace_link import TraceLink

_NS = 1_000_000_000
_SCOPE = InstrumentationScope("batchtrace", __version__)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)

#: Batch object fields that mark the end of its lifecycle, most specific first.
_BATCH_END_FIELDS = ("completed_at", "expired_at", "failed_at", "cancelled_at", "finalizing_at")


def default_resource() -> Resource:
    """The SDK's resource (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``), named batchtrace by default."""
    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "batchtrace"}))
    return resource


def _seconds(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


@dataclass(slots=True, frozen=True)
class BatchTimes:
    """The batch's lifecycle in epoch nanoseconds, from OpenAI's batch object when known."""

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
    """Builds a batch's spans with the ids, resource and attributes they share."""

    def __init__(
        self,
        link: TraceLink,
        *,
        batch_id: str | None,
        policy: ContentPolicy,
        times: BatchTimes,
        resource: Resource | None = None,
        now_ns: int | None = None,
    ) -> None:
        self.link = link
        self.batch_id = batch_id
        self.policy = policy
        self.times = times
        self.resource = resource or default_resource()
        self.now_ns = now_ns if now_ns is not None else time.time_ns()
        self.earliest_ns: int | None = None
        self.latest_ns: int | None = None
        self._parent = SpanContext(link.trace_id, link.completion_parent, is_remote=False, trace_flags=_SAMPLED)

    def _fallback_ns(self) -> int:
        return min(self.times.ended_ns or self.times.started_ns or self.now_ns, self.now_ns)

    def _time_of(self, body: Mapping[str, Any] | None) -> int:
        created = _seconds(body.get("created") or body.get("created_at")) if body else None
        if created is None:
            return self._fallback_ns()
        return min(int(created * _NS), self.now_ns)

    def completion(
        self,
        request: BatchRequest | None,
        result: BatchResult | None,
        *,
        occurrence: int = 0,
        line_length: int | None = None,
    ) -> ReadableSpan:
        """The span of one request/result pair; either side may be missing (flagged).

        ``line_length``, the longer of the two raw lines when known, lets short lines skip
        truncation (see :meth:`ContentPolicy.for_line`).
        """
        policy = self.policy if line_length is None else self.policy.for_line(line_length)
        custom_id = request.custom_id if request else result.custom_id if result else ""
        url = request.url if request else "/v1/chat/completions"
        operation = operation_name(url)
        attrs: Attributes = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": "openai",
            "gen_ai.system": "openai",
            "llm.request.type": operation,
            "traceloop.span.kind": "task",
            "traceloop.entity.path": "batch_results",
            "respan.entity.log_type": operation,
            "batchtrace.custom_id": custom_id,
            "batchtrace.endpoint": url,
        }
        if self.batch_id:
            attrs["batchtrace.batch_id"] = self.batch_id
        if occurrence:
            attrs["batchtrace.duplicate_custom_id"] = True
        if request is not None:
            attrs.update(request_attributes(url, request.body, policy))
        body = result.body if result else None
        status = Status(StatusCode.UNSET)
        if result is None:
            attrs["batchtrace.no_result"] = True
            attrs["error.type"] = "no_result"
            status = Status(StatusCode.ERROR, "the batch returned no result for this request")
        else:
            if request is None:
                attrs["batchtrace.orphan_result"] = True
            if result.line_id:
                attrs["batchtrace.batch_request_id"] = result.line_id
            if result.request_id:
                attrs["openai.request.id"] = result.request_id
            if result.status_code is not None:
                attrs["http.response.status_code"] = result.status_code
            if body is not None and not isinstance(body.get("error"), dict):
                attrs.update(response_attributes(url, body, policy))
            if result.failed:
                error_type, message = result.error_type_and_message()
                attrs["error.type"] = error_type
                status = Status(StatusCode.ERROR, message)
        model = attrs.get("gen_ai.request.model") or attrs.get("gen_ai.response.model")
        if model and "gen_ai.request.model" not in attrs:
            attrs["gen_ai.request.model"] = model
        at_ns = self._time_of(body)
        self._observe(at_ns)
        span_id = self.link.completion_span_id(custom_id, occurrence)
        return ReadableSpan(
            name=f"{operation} {model}" if model else operation,
            context=SpanContext(self.link.trace_id, span_id, is_remote=False, trace_flags=_SAMPLED),
            parent=self._parent,
            resource=self.resource,
            attributes=attrs,
            kind=SpanKind.CLIENT,
            status=status,
            start_time=at_ns,
            end_time=at_ns,
            instrumentation_scope=_SCOPE,
        )

    def _observe(self, at_ns: int) -> None:
        if self.earliest_ns is None or at_ns < self.earliest_ns:
            self.earliest_ns = at_ns
        if self.latest_ns is None or at_ns > self.latest_ns:
            self.latest_ns = at_ns

    def observe_range(self, earliest_ns: int | None, latest_ns: int | None) -> None:
        """Widen the completions' time range with one observed elsewhere (a worker process)."""
        for at_ns in (earliest_ns, latest_ns):
            if at_ns is not None:
                self._observe(at_ns)

    def batch_span(self, counts: Mapping[str, int]) -> ReadableSpan | None:
        """The ``batch_results`` task span, or ``None`` when completions nest under a caller's span."""
        link = self.link
        if link.batch_span_id is None:
            return None
        start = self.times.started_ns or self.earliest_ns or self._fallback_ns()
        end = self.times.ended_ns or self.latest_ns or start
        if self.earliest_ns is not None:
            start = min(start, self.earliest_ns)
        if self.latest_ns is not None:
            end = max(end, self.latest_ns)
        end = min(end, self.now_ns)
        start = min(start, end)
        attrs: Attributes = {
            "traceloop.span.kind": "task",
            "traceloop.entity.name": "batch_results",
            "traceloop.entity.path": "",
            "respan.entity.log_type": "task",
            "openinference.span.kind": "CHAIN",
            "batchtrace.trace_link": link.mode.value,
        }
        if self.batch_id:
            attrs["batchtrace.batch_id"] = self.batch_id
        for key, value in counts.items():
            attrs[f"batchtrace.{key}"] = value
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
            start_time=start,
            end_time=end,
            instrumentation_scope=_SCOPE,
        )
