"""Where a batch's spans go in a trace, and the deterministic ids that make reruns idempotent.

Priority (the seed's): an active OTel context (or a ``traceparent`` handed in by the caller)
nests completions directly under that span; else an explicit trace id gets a ``batch_results``
task span (under the stored span id when there is one); else a new trace derived from the
batch. Every id is a hash of (trace id, batch, custom id), so a redelivered event re-sends the
same spans and parallel workers agree on the parent without talking.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from batchtrace.errors import InvalidTraceContextError

logger = logging.getLogger(__name__)

_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX16 = re.compile(r"[0-9a-f]{16}")


class LinkMode(StrEnum):
    ACTIVE = "active"
    EXPLICIT = "explicit"
    NEW = "new"


@dataclass(slots=True, frozen=True)
class TraceLink:
    """The resolved placement of a batch's spans.

    ``completion_parent`` is the span id completions nest under; ``batch_span_id`` and
    ``batch_parent`` describe the ``batch_results`` span, which exists unless ``mode`` is ACTIVE.
    """

    mode: LinkMode
    trace_id: int
    completion_parent: int
    batch_span_id: int | None
    batch_parent: int | None
    batch_key: str

    @property
    def trace_id_hex(self) -> str:
        return f"{self.trace_id:032x}"

    def completion_span_id(self, custom_id: str, occurrence: int = 0) -> int:
        """The span id of the ``occurrence``-th result for ``custom_id`` (0 for the usual one).

        Equal to ``derive_id(8, trace_id_hex, batch_key, custom_id[, occurrence])``; the hash of
        the shared prefix is computed once per batch, as this runs for every span.
        """
        digest = _prefix_digest(8, self.trace_id_hex, self.batch_key).copy()
        _feed(digest, custom_id)
        if occurrence:
            _feed(digest, str(occurrence))
        return int.from_bytes(digest.digest(), "big") or 1


def _feed(digest: hashlib.blake2b, part: str) -> None:
    encoded = part.encode("utf-8", "surrogatepass")
    digest.update(len(encoded).to_bytes(4, "big") + encoded)


@functools.lru_cache(maxsize=8)
def _prefix_digest(size: int, *parts: str) -> hashlib.blake2b:
    digest = hashlib.blake2b(digest_size=size, person=b"batchtrace")
    for part in parts:
        _feed(digest, part)
    return digest


def derive_id(size: int, *parts: str) -> int:
    """A non-zero id of ``size`` bytes from a hash of ``parts`` (length-prefixed: no ambiguity)."""
    digest = hashlib.blake2b(digest_size=size, person=b"batchtrace")
    for part in parts:
        _feed(digest, part)
    return int.from_bytes(digest.digest(), "big") or 1


def parse_trace_id(value: str) -> int:
    """A W3C trace id (32 hex digits, not all zero); a UUID's dashes are tolerated."""
    text = value.strip().lower()
    if len(text) == 36 and text.count("-") == 4:
        text = text.replace("-", "")
    if not _HEX32.fullmatch(text) or int(text, 16) == 0:
        raise InvalidTraceContextError(f"invalid trace id {value!r}: expected 32 hex digits, not all zero")
    return int(text, 16)


def parse_span_id(value: str) -> int:
    """A W3C span id (16 hex digits, not all zero)."""
    text = value.strip().lower()
    if not _HEX16.fullmatch(text) or int(text, 16) == 0:
        raise InvalidTraceContextError(f"invalid span id {value!r}: expected 16 hex digits, not all zero")
    return int(text, 16)


def parse_traceparent(value: str) -> tuple[int, int]:
    """``(trace_id, span_id)`` from a W3C ``traceparent`` header value, via OTel's propagator."""
    context = TraceContextTextMapPropagator().extract({"traceparent": value.strip()})
    span_context = trace.get_current_span(context).get_span_context()
    if not span_context.is_valid:
        raise InvalidTraceContextError(f"invalid traceparent {value!r}: expected 00-<32 hex>-<16 hex>-<2 hex>")
    return span_context.trace_id, span_context.span_id


def active_span_ids() -> tuple[int, int] | None:
    """The current OTel span's ``(trace_id, span_id)`` when one is active and valid."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        return span_context.trace_id, span_context.span_id
    return None


def resolve_link(
    batch_key: str,
    *,
    active: tuple[int, int] | None = None,
    trace_id: int | None = None,
    parent_span_id: int | None = None,
) -> TraceLink:
    """Place a batch in a trace, in the seed's priority order (see the module docstring).

    ``active`` is an (already validated) active context or caller ``traceparent``;
    ``trace_id``/``parent_span_id`` are stored ids. ``batch_key`` (the batch id, or a digest
    of the input when none is known) seeds every derived id.
    """
    if active is not None:
        active_trace, active_span = active
        return TraceLink(LinkMode.ACTIVE, active_trace, active_span, None, None, batch_key)
    if trace_id is not None:
        mode = LinkMode.EXPLICIT
    else:
        mode = LinkMode.NEW
        trace_id = derive_id(16, "trace", batch_key)
        parent_span_id = None
    batch_span_id = derive_id(8, f"{trace_id:032x}", batch_key, "batch_results")
    return TraceLink(mode, trace_id, batch_span_id, batch_span_id, parent_span_id, batch_key)


@dataclass(slots=True, frozen=True)
class TraceHint:
    """What the caller knows about the submitting trace, strongest first.

    ``traceparent`` (a caller's live context) and ``use_active_context`` (the current OTel
    span) nest completions directly under that span; ``trace_id``/``span_id`` are stored ids.
    With ``strict`` an invalid id raises :class:`InvalidTraceContextError`; without it (ids read
    from ``trace.json`` or object metadata) the batch falls back to a new trace and says so.
    """

    traceparent: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    use_active_context: bool = False
    strict: bool = True


def hint_from_trace_json(doc: Mapping[str, Any]) -> TraceHint | None:
    """The (non-strict) hint stored in a ``trace.json``: ``trace_id``/``span_id`` or ``traceparent``."""
    trace_id, span_id, traceparent = doc.get("trace_id"), doc.get("span_id"), doc.get("traceparent")
    if trace_id is None and isinstance(traceparent, str):
        parts = traceparent.strip().split("-")
        trace_id, span_id = (parts[1], parts[2]) if len(parts) == 4 else (traceparent, None)
    if trace_id is None:
        return None
    return TraceHint(trace_id=str(trace_id), span_id=str(span_id) if span_id else None, strict=False)


def resolve_hint(hint: TraceHint, batch_key: str) -> tuple[TraceLink, str | None]:
    """The trace link for ``hint``, and a warning when a non-strict part of it had to be ignored.

    Strict hints raise :class:`InvalidTraceContextError`. Non-strict ones lose only what is
    invalid: a bad stored trace id means a new trace, a bad stored span id means the
    ``batch_results`` span becomes a root of the (still linked) stored trace.
    """
    warnings: list[str] = []

    def parsed(parse: Callable[[str], Any], value: str | None, fallback: str) -> Any:
        if not value:
            return None
        try:
            return parse(value)
        except InvalidTraceContextError as err:
            if hint.strict:
                raise
            warnings.append(f"{err}; {fallback}")
            logger.warning("%s; %s", err, fallback)
            return None

    active = parsed(parse_traceparent, hint.traceparent, "ignoring it")
    if active is None and hint.use_active_context:
        active = active_span_ids()
    trace_id = parsed(parse_trace_id, hint.trace_id, "the batch goes to a new trace instead")
    span_id = None
    if trace_id is not None:
        span_id = parsed(parse_span_id, hint.span_id, "batch_results becomes a root span of that trace")
    link = resolve_link(batch_key, active=active, trace_id=trace_id, parent_span_id=span_id)
    return link, "; ".join(warnings) or None
