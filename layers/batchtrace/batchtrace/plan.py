"""Plan: everything decided before a line is read: the format, the trace link, the settings.

A plan is built once per batch from what the caller knows (arguments, ``trace.json``, a batch
object, function settings) and handed to the stages; no stage re-derives any of it. The format
is the one thing that may be settled by the lines themselves, at most twice: detected from the
first lines of the input (or of the results, for formats without an input file), then refined
within its family by the first result (OpenAI's lines, and Azure's with content filters).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.resources import Resource

from batchtrace.content import ContentPolicy
from batchtrace.errors import InputError
from batchtrace.extract import FormatAdapter, adapter_named, detect
from batchtrace.lifecycle import BatchLifecycle, lifecycle_of, lifecycle_or_warn
from batchtrace.lifecycle.link import hint_with_stored_traceparent
from batchtrace.read.jsonl import Readable, parse_object
from batchtrace.send.delivery import DeliveryPolicy
from batchtrace.send.otlp_config import OtlpConfig
from batchtrace.timestamps import TimestampPolicy
from batchtrace.trace_link import TraceHint
from batchtrace.write.spans import WriterSet

#: How much of a file detection looks at: enough lines to get past a few malformed ones.
PEEK_BYTES = 1 << 20
PEEK_LINES = 20


def peek_head(stream: Readable) -> tuple[Readable, bytes]:
    """The first bytes of ``stream``, and a stream that still starts at the top."""
    if getattr(stream, "seekable", lambda: False)():
        start = stream.tell()  # type: ignore[attr-defined]
        head = stream.read(PEEK_BYTES)
        stream.seek(start)  # type: ignore[attr-defined]
        return stream, head
    head = stream.read(PEEK_BYTES)
    return _Prepended(head, stream), head


def peek_objects(stream: Readable) -> tuple[Readable, list[tuple[int, dict[str, Any]]]]:
    """The first JSON objects of ``stream`` (with line numbers), and a stream that still starts at the top."""
    rest, head = peek_head(stream)
    found: list[tuple[int, dict[str, Any]]] = []
    for line_no, line in enumerate(head.split(b"\n")[:-1] or [head], start=1):
        obj, _ = parse_object(line)
        if obj is not None:
            found.append((line_no, obj))
        if len(found) >= PEEK_LINES:
            break
    return rest, found


class _Prepended:
    """``head`` then the rest of ``stream``: a peeked, unseekable stream, whole again."""

    def __init__(self, head: bytes, stream: Readable) -> None:
        self._head: bytes | None = head
        self._stream = stream

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            head, self._head = self._head, None
            return head
        return self._stream.read(size)

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


@dataclass(slots=True)
class FormatChoice:
    """The batch's format: named by the caller, or detected from its lines."""

    adapter: FormatAdapter | None = None
    explicit: bool = False
    refined: bool = False

    @classmethod
    def named(cls, provider: str | None) -> FormatChoice:
        return cls(adapter_named(provider), explicit=True) if provider else cls()

    def detect_in(self, stream: Readable, name: str, *, request: bool) -> Readable:
        """Settle the format from ``stream``'s first lines unless it is settled; the stream, intact."""
        if self.adapter is not None:
            return stream
        stream, objects = peek_objects(stream)
        for _, obj in objects:
            self.adapter = detect(obj, request=request)
            if self.adapter is not None:
                return stream
        if objects:
            line_no = objects[0][0]
            raise InputError(f"{name}: line {line_no} matches no known batch format; name the provider with --provider")
        return stream

    def refine(self, result: dict[str, Any]) -> None:
        """Let the first result pick a more specific member of a detected family (Azure among OpenAI's)."""
        if self.explicit or self.refined or self.adapter is None:
            return
        self.refined = True
        found = detect(result, request=False)
        if found is not None and found.family and found.family == self.adapter.family:
            self.adapter = found

    @property
    def current(self) -> FormatAdapter:
        if self.adapter is None:
            raise InputError("no line of the batch matches a known format; name the provider with --provider")
        return self.adapter


@dataclass(slots=True)
class BatchPlan:
    """One batch's settings, resolved once: see :func:`batchtrace.run.run_batch` for each."""

    batch_id: str | None = None
    batch: Mapping[str, Any] | BatchLifecycle | None = None
    hint: TraceHint = field(default_factory=TraceHint)
    format: FormatChoice = field(default_factory=FormatChoice)
    model: str | None = None
    content: ContentPolicy = field(default_factory=ContentPolicy.from_env)
    writers: WriterSet = field(default_factory=WriterSet.from_env)
    timestamps: TimestampPolicy = field(default_factory=TimestampPolicy.from_env)
    otlp: OtlpConfig = field(default_factory=OtlpConfig.resolve)
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    resource: Resource | None = None
    workers: int | None = None
    input_name: str = "input"

    #: The batch's lifecycle, from ``batch`` (a provider's object or job) unless given.
    lifecycle: BatchLifecycle = field(default_factory=BatchLifecycle)

    def __post_init__(self) -> None:
        if self.batch is not None and not self.lifecycle.known:
            self.lifecycle = lifecycle_or_warn(self.batch)
        # Where the caller and trace.json name no trace, the batch's own metadata may.
        self.hint = hint_with_stored_traceparent(self.hint, self.lifecycle)


def batch_id_of(batch_id: str | None, batch: Mapping[str, Any] | BatchLifecycle | None) -> str | None:
    """The batch's id: the caller's, else the batch object's (whatever its provider calls it)."""
    if batch_id:
        return batch_id
    lifecycle = lifecycle_of(batch)
    found = lifecycle.id if lifecycle is not None else batch.get("id") if isinstance(batch, Mapping) else None
    return found if isinstance(found, str) and found else None


EMPTY_INPUT: Readable = io.BytesIO(b"")
