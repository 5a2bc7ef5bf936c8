"""Finished spans to OTLP protobuf bytes, about three times faster than the stock encoder.

The stock ``encode_spans`` builds every attribute through generic ``isinstance`` chains and
constructor-style messages that upb copies on insertion; at 50,000 spans with ~30 attributes
each that is most of a batch's CPU time. This encoder fills the same messages in place
(``repeated.add()``) with a fast path for the attribute types batchtrace emits, and produces
a request equal to the stock one (a unit test holds it to that). Spans with events or links,
which batchtrace never builds, go through the stock encoder unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import SpanFlags
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

_KIND = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}
_HAS_IS_REMOTE = int(SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK)
_IS_REMOTE = int(SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK)


def _set_value(target: Any, value: Any) -> None:
    """Fill an ``AnyValue`` in place (same mapping as the stock ``_encode_value``)."""
    kind = type(value)
    if kind is str:
        target.string_value = value
    elif kind is bool:
        target.bool_value = value
    elif kind is int:
        target.int_value = value
    elif kind is float:
        target.double_value = value
    elif value is not None:
        _set_other(target, value)


def _set_other(target: Any, value: Any) -> None:
    """The rarer values: bytes, subclasses of the scalars, mappings and sequences."""
    if isinstance(value, bytes):
        target.bytes_value = value
    elif isinstance(value, str | bool | int | float):
        _set_value(target, type(value).__mro__[1](value))
    elif isinstance(value, Mapping):
        values = target.kvlist_value.values
        for key, item in value.items():
            entry = values.add()
            entry.key = str(key)
            _set_value(entry.value, item)
    elif isinstance(value, Sequence):
        target.array_value.SetInParent()  # an empty list is an empty array, not an unset value
        array = target.array_value.values
        for item in value:
            _set_value(array.add(), item)
    else:
        raise TypeError(f"cannot encode attribute value of type {type(value).__name__}")


def _set_attributes(repeated: Any, attributes: Mapping[str, Any] | None) -> None:
    if not attributes:
        return
    for key, value in attributes.items():
        entry = repeated.add()
        entry.key = key
        _set_value(entry.value, value)


def encode_request(spans: Sequence[ReadableSpan]) -> bytes:
    """Serialized ``ExportTraceServiceRequest`` for ``spans``, grouped by resource and scope."""
    if any(span.events or span.links for span in spans):
        return bytes(encode_spans(spans).SerializeToString())
    request = ExportTraceServiceRequest()
    groups = _Groups(request)
    for span in spans:
        _fill_span(groups.scope_spans(span).spans.add(), span)
    return bytes(request.SerializeToString())


class _Groups:
    """The request's ``ResourceSpans`` and ``ScopeSpans``, one per distinct resource and scope."""

    def __init__(self, request: Any) -> None:
        self.request = request
        self.resources: dict[int, Any] = {}
        self.scopes: dict[tuple[int, int], Any] = {}

    def scope_spans(self, span: ReadableSpan) -> Any:
        resource, scope = span.resource, span.instrumentation_scope
        key = (id(resource), id(scope))
        found = self.scopes.get(key)
        if found is None:
            found = self.scopes[key] = self._resource_spans(resource).scope_spans.add()
            if scope is not None:
                found.scope.name = scope.name
                found.scope.version = scope.version or ""
                _set_attributes(found.scope.attributes, scope.attributes)
                found.schema_url = scope.schema_url or ""
        return found

    def _resource_spans(self, resource: Any) -> Any:
        found = self.resources.get(id(resource))
        if found is None:
            found = self.resources[id(resource)] = self.request.resource_spans.add()
            _set_attributes(found.resource.attributes, resource.attributes)
            found.schema_url = resource.schema_url or ""
        return found


def _fill_span(out: Any, span: ReadableSpan) -> None:
    context = span.context
    assert context is not None, "finished spans always have a context"
    out.trace_id = context.trace_id.to_bytes(16, "big")
    out.span_id = context.span_id.to_bytes(8, "big")
    if context.trace_state:
        out.trace_state = context.trace_state.to_header()
    parent = span.parent
    flags = _HAS_IS_REMOTE
    if parent is not None:
        out.parent_span_id = parent.span_id.to_bytes(8, "big")
        if parent.is_remote:
            flags |= _IS_REMOTE
    out.flags = int(flags)
    out.name = span.name
    out.kind = _KIND.get(span.kind, 0)
    out.start_time_unix_nano = span.start_time or 0
    out.end_time_unix_nano = span.end_time or 0
    _set_attributes(out.attributes, span.attributes)
    out.dropped_attributes_count = span.dropped_attributes
    status = span.status
    out.status.code = status.status_code.value
    if status.description:
        out.status.message = status.description
