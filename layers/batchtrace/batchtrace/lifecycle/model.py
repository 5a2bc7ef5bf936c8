"""The provider-neutral batch lifecycle, and the helpers every provider's parser shares.

Every provider describes a batch job differently (epoch seconds or RFC 3339 with nanoseconds,
``completed``/``ended``/``BATCH_STATE_SUCCEEDED``/``Completed``, counts as numbers or as int64
strings), but a trace needs the same few things from each: when the batch was created, when it
started running, when it reached its final state and which state that was, why it failed, and
the provider's own request counts. :class:`BatchLifecycle` holds exactly that, so the span
writer and the reconciliation never look at a provider's raw object.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

_NS = 1_000_000_000
#: RFC 3339 / ISO 8601 instants as the providers write them; any number of fraction digits.
_INSTANT = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d+))?"
    r"(?P<zone>[Zz]|[+-]\d{2}:?\d{2})?"
)
#: Validation errors kept on the span: enough to act on, never a flood.
MAX_VALIDATION_ERRORS = 20


class Outcome(StrEnum):
    """How a batch ended, in one vocabulary for every provider (``None`` while it runs)."""

    COMPLETED = "completed"
    PARTIALLY_COMPLETED = "partially_completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


#: Outcomes that put ``batch_results`` in ERROR: the batch as a whole did not do its work.
ERROR_OUTCOMES = frozenset({Outcome.FAILED, Outcome.EXPIRED, Outcome.CANCELLED})

_DEFAULT_REASONS = {
    Outcome.FAILED: "the batch failed",
    Outcome.EXPIRED: "the batch expired before every request ran",
    Outcome.CANCELLED: "the batch was cancelled",
}


class Phase(StrEnum):
    """What a lifecycle timestamp marks, whatever the provider calls it."""

    CREATED = "created"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    ENDED = "ended"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """One lifecycle timestamp: the provider's word for it, when, and which field said so."""

    name: str
    time_ns: int
    field: str
    phase: Phase = Phase.OTHER


#: The neutral names of the provider's figures (see :mod:`batchtrace.lifecycle.reconcile`).
FIGURES = (
    "total",
    "processed",
    "succeeded",
    "failed",
    "canceled",
    "expired",
    "pending",
    "incomplete",
    "input_tokens",
    "output_tokens",
)


@dataclass(frozen=True, slots=True)
class BatchLifecycle:
    """A batch job as any provider reported it; the empty instance means "not known".

    ``status`` is the provider's own word (``completed``, ``ended``, ``Stopped``,
    ``BATCH_STATE_FAILED``); ``outcome`` is the neutral one, ``None`` while the batch runs.
    ``counts`` holds the provider's figures under :data:`FIGURES` names and ``counts_source``
    where they came from (``request_counts``, ``manifest.json.out``, ``batchStats``...).
    ``traceparent`` is one the submitter stored in the batch's metadata or labels.
    """

    id: str | None = None
    provider: str | None = None
    status: str | None = None
    outcome: Outcome | None = None
    events: tuple[LifecycleEvent, ...] = ()
    endpoint: str | None = None
    completion_window: str | None = None
    model: str | None = None
    counts: Mapping[str, int] = field(default_factory=dict)
    counts_source: str | None = None
    reason: str | None = None
    validation_errors: tuple[str, ...] = ()
    traceparent: str | None = None

    @property
    def known(self) -> bool:
        return self.provider is not None

    def _first(self, phase: Phase) -> int | None:
        return min((e.time_ns for e in self.events if e.phase is phase), default=None)

    @property
    def created_ns(self) -> int | None:
        return self._first(Phase.CREATED)

    @property
    def in_progress_ns(self) -> int | None:
        return self._first(Phase.IN_PROGRESS)

    @property
    def finalizing_ns(self) -> int | None:
        return self._first(Phase.FINALIZING)

    @property
    def ended_ns(self) -> int | None:
        """When the batch reached its final state (the latest such timestamp, should there be two)."""
        return max((e.time_ns for e in self.events if e.phase is Phase.ENDED), default=None)

    @property
    def end_ns(self) -> int | None:
        """The end of the batch's window: its final state (or the start of finalizing, while it runs).

        Should another timestamp come later (odd data), the window reaches it: a span contains its events.
        """
        if self.ended_ns is None and self.finalizing_ns is None:
            return None
        return max(event.time_ns for event in self.events)

    @property
    def queue_time_s(self) -> float | None:
        """Created to in progress: how long the batch waited before it ran."""
        return _seconds_between(self.created_ns, self.in_progress_ns)

    @property
    def run_time_s(self) -> float | None:
        """In progress to its final state: how long it ran."""
        return _seconds_between(self.in_progress_ns, self.ended_ns)

    @property
    def duration_s(self) -> float | None:
        """Created to its final state: what the submitter waited."""
        return _seconds_between(self.created_ns, self.ended_ns)

    @property
    def running(self) -> bool:
        """Whether the provider's object says the batch had not finished when it was read."""
        return self.status is not None and self.outcome is None

    @property
    def unsuccessful(self) -> bool:
        """Whether the batch as a whole failed, expired or was cancelled."""
        return self.outcome in ERROR_OUTCOMES

    @property
    def failure(self) -> str | None:
        """The provider's reason (or a plain one) when the batch was unsuccessful, else ``None``."""
        if self.outcome not in ERROR_OUTCOMES:
            return None
        return self.reason or _DEFAULT_REASONS[self.outcome]

    def with_counts(self, other: BatchLifecycle) -> BatchLifecycle:
        """This lifecycle with ``other``'s counts (a Bedrock job and its ``manifest.json.out``)."""
        if not other.counts:
            return self
        if not self.known:
            return other
        return replace(self, counts=dict(other.counts), counts_source=other.counts_source)


#: The lifecycle of a batch whose object or job is not known (a shared, frozen instance).
NO_LIFECYCLE = BatchLifecycle()


def _seconds_between(start_ns: int | None, end_ns: int | None) -> float | None:
    if start_ns is None or end_ns is None or end_ns < start_ns:
        return None
    return (end_ns - start_ns) / _NS


# --------------------------------------------------------------------------- value helpers


def instant_ns(value: Any) -> int | None:
    """Epoch nanoseconds from epoch seconds, an RFC 3339 string or a ``datetime``; ``None`` otherwise.

    Zero and negative numbers are the providers' way of saying "not yet", not 1970.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _seconds_ns(value)
    if isinstance(value, datetime):
        return _datetime_ns(value)
    if isinstance(value, str):
        return _parse_instant(value.strip())
    return None


def _seconds_ns(value: float) -> int | None:
    if value <= 0:
        return None
    return value * _NS if isinstance(value, int) else int(value * _NS)


def _datetime_ns(value: datetime) -> int:
    """A ``datetime`` (boto3 gives them); a naive one is UTC, as AWS means it."""
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    return int(moment.timestamp()) * _NS + moment.microsecond * 1000


def _zone(text: str | None) -> str:
    """``Z``, ``+0200`` or ``+02:00`` as ``fromisoformat`` takes it; no zone is UTC."""
    if not text or text in ("Z", "z"):
        return "+00:00"
    return text if ":" in text else f"{text[:3]}:{text[3:]}"


def _parse_instant(text: str) -> int | None:
    match = _INSTANT.fullmatch(text)
    if match is None:
        return None
    try:
        whole = datetime.fromisoformat(f"{match['date']}T{match['time']}{_zone(match['zone'])}")
    except ValueError:
        return None
    fraction = int((match["fraction"] or "0")[:9].ljust(9, "0"))
    ns = int(whole.timestamp()) * _NS + fraction
    return ns if ns > 0 else None


def count(value: Any) -> int | None:
    """A non-negative count from a number or an int64 string (Google's JSON); ``None`` otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def text(obj: Mapping[str, Any] | None, *keys: str) -> str | None:
    """The first of ``keys`` holding a non-empty string."""
    for key in keys:
        value = obj.get(key) if obj else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def mapping(obj: Mapping[str, Any] | None, key: str) -> Mapping[str, Any]:
    """``obj[key]`` when it is an object, else an empty one (``null`` is common)."""
    value = obj.get(key) if obj else None
    return value if isinstance(value, Mapping) else {}


def figures(source: Any, names: Mapping[str, str], *, zero_when_absent: bool = False) -> dict[str, int]:
    """The provider's counts under neutral names: ``names`` maps its keys to :data:`FIGURES`.

    ``zero_when_absent`` is for proto3 JSON (Google's APIs), which leaves out fields that are 0.
    """
    if not isinstance(source, Mapping):
        return {}
    found: dict[str, int] = {}
    for key, name in names.items():
        value = count(source.get(key))
        if value is None and zero_when_absent:
            value = 0
        if value is not None:
            found[name] = value
    return found


def timeline(obj: Mapping[str, Any], fields: Iterable[tuple[str, str, Phase]]) -> tuple[LifecycleEvent, ...]:
    """The events of ``fields`` (``(field, event name, phase)``) that ``obj`` has a time for, oldest first."""
    events = [
        LifecycleEvent(name, ns, key, phase)
        for key, name, phase in fields
        if (ns := instant_ns(obj.get(key))) is not None
    ]
    return tuple(sorted(events, key=lambda e: e.time_ns))


def last_segment(name: str | None) -> str | None:
    """``abc`` of ``.../model-invocation-job/abc`` or ``models/abc``: the id inside a resource name."""
    return name.rsplit("/", 1)[-1] or None if name else None


def error_message(error: Any) -> str | None:
    """A ``google.rpc.Status``-like ``{code, message}``, an object with a message, or a bare string."""
    if isinstance(error, str):
        return error.strip() or None
    if isinstance(error, Mapping):
        return text(error, "message", "msg")
    return None


def summarise(lead: str, messages: tuple[str, ...]) -> str | None:
    """``lead: the first message (and N more)``: one line for a span's status; ``None`` without messages."""
    if not messages:
        return None
    more = f" (and {len(messages) - 1} more)" if len(messages) > 1 else ""
    return f"{lead}: {messages[0]}{more}"


def capped(messages: Iterable[str]) -> tuple[str, ...]:
    """At most :data:`MAX_VALIDATION_ERRORS` messages, the last one saying how many more there were."""
    found = list(messages)
    if len(found) <= MAX_VALIDATION_ERRORS:
        return tuple(found)
    kept = found[: MAX_VALIDATION_ERRORS - 1]
    return (*kept, f"... and {len(found) - len(kept)} more")
