"""Finished spans to OTLP protobuf bytes, written straight in the wire format.

The stock ``encode_spans`` builds every attribute through generic ``isinstance`` chains and
protobuf message objects; at 50,000 spans of ~35 attributes each that was most of a batch's CPU
time, and filling upb messages in place (the previous encoder here) still paid for a message
object and a copy per attribute, and for ``SerializeToString`` copying every text once more.
Here each span is written as bytes: a span's attributes are mostly the same from span to span
(operation, provider, models, kinds, flags), so their whole encoded entries are cached, and the
large texts (messages as JSON) are encoded to UTF-8 once and copied once, into the final join.

The request is equal to the stock encoder's (a unit test holds it to that). Spans with events or
links, which completions never have, go through the stock encoder with the whole request.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.trace.v1.trace_pb2 import SpanFlags
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind

from batchtrace.write.attributes import JsonText, wire_items

_KIND = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}
_HAS_IS_REMOTE = int(SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK)
_IS_REMOTE = int(SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK)

# Field tags (field number << 3 | wire type) of the messages written by hand.
_REQUEST_RESOURCE_SPANS = b"\x0a"  # ExportTraceServiceRequest.resource_spans = 1
_SCOPE_SPANS = b"\x12"  # ResourceSpans.scope_spans = 2
_SPAN = b"\x12"  # ScopeSpans.spans = 2
_TRACE_ID = b"\x0a\x10"  # Span.trace_id = 1, 16 bytes
_SPAN_ID = b"\x12\x08"  # Span.span_id = 2, 8 bytes
_TRACE_STATE = b"\x1a"  # Span.trace_state = 3
_PARENT_SPAN_ID = b"\x22\x08"  # Span.parent_span_id = 4, 8 bytes
_NAME = b"\x2a"  # Span.name = 5
_SPAN_KIND = b"\x30"  # Span.kind = 6
_TIMES = struct.Struct("<BQBQ")  # Span.start_time_unix_nano = 7, end_time_unix_nano = 8 (fixed64)
_ATTRIBUTE = b"\x4a"  # Span.attributes = 9 (KeyValue)
_DROPPED_ATTRIBUTES = b"\x50"  # Span.dropped_attributes_count = 10
_STATUS = b"\x7a"  # Span.status = 15 (message = 2, code = 3)
_FLAGS = struct.Struct("<2sI")  # Span.flags = 16 (fixed32)
_KEY = b"\x0a"  # KeyValue.key = 1
_VALUE = b"\x12"  # KeyValue.value = 2 (AnyValue)
_STRING, _BOOL, _INT, _DOUBLE = b"\x0a", b"\x10", b"\x18", b"\x21"  # AnyValue's scalars
_ARRAY, _KVLIST, _BYTES = b"\x2a", b"\x32", b"\x3a"  # AnyValue's others
_ITEM = b"\x0a"  # ArrayValue.values = 1, KeyValueList.values = 1

#: Texts up to this many characters have their whole attribute entry cached by value.
SHORT_TEXT = 80
#: The caches are cleared when they reach this size.
MAX_CACHED_ENTRIES = 16_384
#: A key whose texts missed the cache this often (ids: every time) is no longer cached.
MISSES_BEFORE_VOLATILE = 256

#: Varints of one and two bytes, precomputed: every length of a short text or id is one of them.
_TWO_BYTES = 1 << 14
_VARINTS = [bytes((n,)) for n in range(128)] + [bytes(((n & 0x7F) | 0x80, n >> 7)) for n in range(128, _TWO_BYTES)]
_DOUBLE_BITS = struct.Struct("<d")


def varint(n: int) -> bytes:
    """``n`` (non-negative) as a protobuf varint."""
    if n < _TWO_BYTES:
        return _VARINTS[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


# --------------------------------------------------------------------------- AnyValue


def _any_value(value: Any) -> bytes:
    """An ``AnyValue``'s encoded body (what the stock ``_encode_value`` sets, same order of tests)."""
    kind = type(value)
    if kind is str:
        return _field(_STRING, value.encode())
    if kind is bool:
        return _BOOL + (b"\x01" if value else b"\x00")
    if kind is int:
        return _INT + varint(value & 0xFFFFFFFFFFFFFFFF)  # int64: two's complement, ten bytes when negative
    if kind is float:
        return _DOUBLE + _DOUBLE_BITS.pack(value)
    return _other_value(value)


def _other_value(value: Any) -> bytes:
    """The rarer values: ``None``, bytes, subclasses of the scalars, sequences and mappings."""
    if value is None:
        return b""
    for base in (bool, str, int, float):
        if isinstance(value, base):
            return _any_value(base(value))
    if isinstance(value, bytes):
        return _field(_BYTES, value)
    if isinstance(value, Sequence):
        return _field(_ARRAY, b"".join(_field(_ITEM, _any_value(item)) for item in value))
    if isinstance(value, Mapping):
        pairs = b"".join(_field(_ITEM, _key_value(str(key), item)) for key, item in value.items())
        return _field(_KVLIST, pairs)
    raise TypeError(f"cannot encode attribute value of type {type(value).__name__}")


def _key_value(key: str, value: Any) -> bytes:
    return _field(_KEY, key.encode()) + _field(_VALUE, _any_value(value))


# --------------------------------------------------------------------------- attributes


class _Cache:
    """Encoded attribute keys, and whole entries of the values that repeat from span to span.

    A span's short values are mostly the same as the last span's (operation, provider, models,
    kinds, flags, often its token counts); the few that never repeat (ids) stop being cached once
    their key has missed often, so they do not churn the cache. The value's type is part of the
    cache key: ``1 == 1.0 == True``, and each is encoded differently.
    """

    def __init__(self) -> None:
        self.entries: dict[tuple[str, type, Any], bytes] = {}
        self.keys: dict[str, bytes] = {}
        self.misses: dict[str, int] = {}
        self.volatile: set[str] = set()

    def head(self, key: str, value_size: int) -> bytes:
        """A ``Span.attributes`` entry up to its ``AnyValue`` of ``value_size`` bytes: tag, length, key."""
        prefix = self.keys.get(key)
        if prefix is None:
            if len(self.keys) >= MAX_CACHED_ENTRIES:
                self.keys.clear()
            prefix = self.keys[key] = _field(_KEY, key.encode()) + _VALUE
        size = _VARINTS[value_size] if value_size < _TWO_BYTES else varint(value_size)
        kv_size = len(prefix) + len(size) + value_size
        return b"".join((_ATTRIBUTE, _VARINTS[kv_size] if kv_size < _TWO_BYTES else varint(kv_size), prefix, size))

    def entry(self, key: str, any_value: bytes) -> bytes:
        """A whole ``Span.attributes`` entry."""
        return self.head(key, len(any_value)) + any_value

    def scalar(self, key: str, kind: type, value: Any) -> bytes:
        """A short text's or a number's entry, on a miss."""
        return self._remember(key, (key, kind, value), self.entry(key, _any_value(value)))

    def texts(self, key: str, value: list[Any]) -> bytes:
        """A list's entry, cached when it holds only texts (finish reasons, stop sequences)."""
        if not all(type(item) is str for item in value):
            return self.entry(key, _any_value(value))
        cache_key = (key, list, tuple(value))
        return self.entries.get(cache_key) or self._remember(key, cache_key, self.entry(key, _any_value(value)))

    def _remember(self, key: str, cache_key: tuple[str, type, Any], entry: bytes) -> bytes:
        """Cache ``entry`` unless ``key``'s values rarely repeat."""
        if key in self.volatile:
            return entry
        misses = self.misses[key] = self.misses.get(key, 0) + 1
        if misses > MISSES_BEFORE_VOLATILE:
            self.volatile.add(key)
        if len(self.entries) >= MAX_CACHED_ENTRIES:
            self.entries.clear()
            self.misses.clear()
        self.entries[cache_key] = entry
        return entry

    def long_text_head(self, key: str, size: int) -> bytes:
        """Everything of a long text's entry before its ``size`` bytes of UTF-8."""
        length = _VARINTS[size] if size < _TWO_BYTES else varint(size)
        return self.head(key, 1 + len(length) + size) + _STRING + length


_CACHE = _Cache()
_SCALARS = frozenset({str, int, float, bool})


def encode_attributes(attributes: Iterable[tuple[str, Any]], body: list[bytes]) -> int:
    """Append the ``Span.attributes`` entries to ``body``; their size.

    The one loop every attribute of every span goes through, so it calls out only on a cache
    miss, a long text (added as a head and its UTF-8 bytes, copied once by the final join; a
    :class:`JsonText` is UTF-8 already) or a value other than a text or a number.
    """
    size = 0
    cached = _CACHE.entries
    for key, value in attributes:
        kind = type(value)
        if kind is JsonText or (kind is str and len(value) > SHORT_TEXT):
            data = value.utf8 if kind is JsonText else value.encode()
            entry = _CACHE.long_text_head(key, len(data))
            body.append(entry)
            entry, size = data, size + len(entry)
        elif kind in _SCALARS:
            entry = cached.get((key, kind, value)) or _CACHE.scalar(key, kind, value)
        elif kind is list:
            entry = _CACHE.texts(key, value)
        else:
            entry = _CACHE.entry(key, _any_value(value))
        body.append(entry)
        size += len(entry)
    return size


# --------------------------------------------------------------------------- spans


def _span_head(span: ReadableSpan) -> bytes:
    """A span's fields before its attributes: ids, name, kind and times."""
    context = span.context
    assert context is not None, "finished spans always have a context"
    head = [_TRACE_ID, context.trace_id.to_bytes(16, "big"), _SPAN_ID, context.span_id.to_bytes(8, "big")]
    if context.trace_state:
        head.append(_field(_TRACE_STATE, context.trace_state.to_header().encode()))
    parent = span.parent
    if parent is not None:
        head += (_PARENT_SPAN_ID, parent.span_id.to_bytes(8, "big"))
    head.append(_field(_NAME, span.name.encode()))
    kind = _KIND.get(span.kind, 0)
    if kind:
        head += (_SPAN_KIND, varint(kind))
    head.append(_TIMES.pack(0x39, span.start_time or 0, 0x41, span.end_time or 0))
    return b"".join(head)


def _span_tail(span: ReadableSpan) -> bytes:
    """A span's fields after its attributes: dropped count, status and flags."""
    tail: list[bytes] = []
    if span.dropped_attributes:
        tail += (_DROPPED_ATTRIBUTES, varint(span.dropped_attributes))
    status = span.status
    body = _field(b"\x12", status.description.encode()) if status.description else b""
    code = status.status_code.value
    if code:
        body += b"\x18" + varint(code)
    tail.append(_field(_STATUS, body))
    parent = span.parent
    flags = _HAS_IS_REMOTE | (_IS_REMOTE if parent is not None and parent.is_remote else 0)
    tail.append(_FLAGS.pack(b"\x85\x01", flags))
    return b"".join(tail)


def encode_span(span: ReadableSpan, parts: list[bytes]) -> int:
    """Append ``span`` as one ``ScopeSpans.spans`` entry (tag, length, body) to ``parts``; its size."""
    head, tail = _span_head(span), _span_tail(span)
    body: list[bytes] = [head]
    # The mapping the span was built with, not its read-only view: JSON texts are read as stored.
    attributes = getattr(span, "_attributes", None) or span.attributes or {}
    size = len(head) + len(tail) + encode_attributes(wire_items(attributes), body)
    body.append(tail)
    prefix = _SPAN + varint(size)
    parts.append(prefix)
    parts.extend(body)
    return len(prefix) + size


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    return b"".join(_field(tag, _key_value(key, value)) for key, value in (attributes or {}).items())


def _resource_head(resource: Resource) -> bytes:
    """``ResourceSpans.resource`` (always set, as the stock encoder sets it) and ``schema_url``."""
    head = _field(b"\x0a", _attributes(b"\x0a", resource.attributes))
    return head + (_field(b"\x1a", resource.schema_url.encode()) if resource.schema_url else b"")


def _scope_head(scope: InstrumentationScope | None) -> bytes:
    """``ScopeSpans.scope`` (always set, empty without a scope) and ``schema_url``."""
    if scope is None:
        return b"\x0a\x00"
    fields = [_field(b"\x0a", scope.name.encode()) if scope.name else b""]
    fields.append(_field(b"\x12", scope.version.encode()) if scope.version else b"")
    fields.append(_attributes(b"\x1a", scope.attributes))
    head = _field(b"\x0a", b"".join(fields))
    return head + (_field(b"\x1a", scope.schema_url.encode()) if scope.schema_url else b"")


#: Spans by resource, then by scope, in order of first appearance (as the stock encoder groups them).
_Groups = dict[int, tuple[Resource, dict[int, tuple[InstrumentationScope | None, list[ReadableSpan]]]]]


def _grouped(spans: Sequence[ReadableSpan]) -> _Groups:
    groups: _Groups = {}
    for span in spans:
        resource, scope = span.resource, span.instrumentation_scope
        scopes = groups.setdefault(id(resource), (resource, {}))[1]
        scopes.setdefault(id(scope), (scope, []))[1].append(span)
    return groups


def encode_request(spans: Sequence[ReadableSpan]) -> bytes:
    """Serialized ``ExportTraceServiceRequest`` for ``spans``, grouped by resource and scope.

    Every length is computed, not measured on a copy, so each text is copied once, by the join.
    """
    if any(span.events or span.links for span in spans):
        return bytes(encode_spans(spans).SerializeToString())
    out: list[bytes] = []
    for resource, scopes in _grouped(spans).values():
        resource_head = _resource_head(resource)
        size = len(resource_head)
        encoded = []
        for scope, members in scopes.values():
            scope_head, parts = _scope_head(scope), list[bytes]()
            scope_size = len(scope_head) + sum([encode_span(span, parts) for span in members])
            size += 1 + len(varint(scope_size)) + scope_size
            encoded.append((scope_head, scope_size, parts))
        out += (_REQUEST_RESOURCE_SPANS, varint(size), resource_head)
        for scope_head, scope_size, parts in encoded:
            out += (_SCOPE_SPANS, varint(scope_size), scope_head)
            out += parts
    return b"".join(out)
