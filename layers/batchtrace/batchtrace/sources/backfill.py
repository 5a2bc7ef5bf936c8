"""Backfill: a provider's past batches, listed through its official SDK, each one sent as spans once.

``batchtrace backfill`` hands :func:`select` and :func:`run_backfill` a :class:`BatchSource` (one
per provider API: :mod:`~batchtrace.sources.openai_batches`,
:mod:`~batchtrace.sources.anthropic_batches`). What is provider-neutral lives here:

* **Selection.** Both APIs list batches newest first, so a batch created before ``--since`` ends
  the listing: a backfill of last week does not page through years of batches.
* **Resumption.** A :class:`BackfillState` file records every batch whose spans were all
  delivered, rewritten atomically after each one. A run that stopped half-way (Ctrl-C, a crash,
  a receiver that refused some spans) is simply run again: what was delivered is skipped, the
  rest is tried. Span ids are deterministic, so even a batch sent twice lands as the same spans.
* **One outcome per batch** (:class:`BatchOutcome`), yielded as it happens, for the progress
  display and the final table.

A batch still running is reported and left for a later run. A batch that fails is reported with
its reason and the run goes on with the others. A refused API key stops the run: every batch
would fail the same way.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, time
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import orjson

from batchtrace.content import ContentPolicy
from batchtrace.errors import BatchtraceError, InputError, OpenAIAuthError
from batchtrace.lifecycle.model import BatchLifecycle
from batchtrace.send.otlp_config import OtlpConfig
from batchtrace.tally import Summary
from batchtrace.timestamps import TimestampPolicy

logger = logging.getLogger(__name__)

#: The state file's format; a file of another version is refused rather than misread.
STATE_VERSION = 1
_DETAIL_LIMIT = 300


# --------------------------------------------------------------------------- errors


class BackfillAuthError(InputError):
    """The provider refused the API key (401) or its permissions (403): no batch can be read. Never holds the key."""

    def __init__(self, provider: str, what: str, status: int) -> None:
        super().__init__(f"{provider} refused the API key while {what} (HTTP {status})")


class BackfillNotFoundError(InputError):
    """The provider has no such object (any more): a batch's results past their retention, for instance."""


class BackfillRequestError(InputError):
    """The provider refused a request with a 4xx answer that a retry does not change."""


class BackfillUnavailableError(BatchtraceError):
    """The provider could not be reached or kept failing after the SDK's retries: a later run may succeed."""


#: Errors that stop the whole run: with the key refused, every other batch would fail the same way.
FATAL_ERRORS: tuple[type[BaseException], ...] = (BackfillAuthError, OpenAIAuthError)


class SdkErrors(NamedTuple):
    """An official SDK's error classes (the openai and anthropic SDKs share their shape)."""

    base: type[Exception]
    connection: type[Exception]


def one_line(text: object, secret: str = "") -> str:
    """``text`` on one line, at most a few hundred characters, with ``secret`` masked."""
    line = " ".join(str(text).split())[:_DETAIL_LIMIT]
    return line.replace(secret, "***") if secret else line


def _detail(err: Exception, secret: str) -> str:
    """The provider's own message from an error answer (``{"error": {"message"}}`` for both APIs)."""
    body = getattr(err, "body", None)
    inner = body.get("error", body) if isinstance(body, Mapping) else body
    message = inner.get("message") if isinstance(inner, Mapping) else inner
    return one_line(message or "", secret)


def typed_sdk_error(err: Exception, provider: str, what: str, secret: str = "") -> BatchtraceError:
    """The backfill error for an SDK error that is left after the SDK's own retries."""
    status = getattr(err, "status_code", None)
    if status in (401, 403):
        return BackfillAuthError(provider, what, status)
    if status == 404:
        return BackfillNotFoundError(f"{provider}: nothing found while {what} (HTTP 404)")
    if isinstance(status, int) and status < 500 and status not in (408, 409, 429):
        detail = _detail(err, secret)
        return BackfillRequestError(f"{provider} refused the request while {what} (HTTP {status}: {detail})")
    reason = f"HTTP {status}" if status else type(err).__name__
    return BackfillUnavailableError(f"could not reach {provider} while {what} ({reason})")


@contextmanager
def sdk_errors(sdk: SdkErrors, provider: str, what: str, secret: str = "") -> Iterator[None]:
    """Turn the SDK's errors into batchtrace's typed ones (one line each, the key never in them)."""
    try:
        yield
    except sdk.base as err:
        if not isinstance(err, sdk.connection) and getattr(err, "status_code", None) is None:
            raise BackfillRequestError(f"{provider}: {what}: {one_line(err, secret)}") from None
        raise typed_sdk_error(err, provider, what, secret) from None


# --------------------------------------------------------------------------- what is listed, and which


@dataclass(frozen=True, slots=True)
class ListedBatch:
    """One batch as the provider lists it: enough to filter, to show and to send it."""

    id: str
    status: str
    created_at: float | None
    requests: int | None
    #: The batch reached a final state: its results (or its object alone) can be sent.
    finished: bool
    #: The provider's batch object, JSON-ready: the spans' lifecycle and trace context.
    obj: Mapping[str, Any]
    #: How it ended, when the status does not say (Anthropic's ``ended``): ``--status`` matches it too.
    outcome: str | None = None

    @classmethod
    def of(cls, obj: Mapping[str, Any], lifecycle: BatchLifecycle) -> ListedBatch:
        """The listing entry of a batch object, from its parsed lifecycle."""
        created = lifecycle.created_ns
        outcome = lifecycle.outcome.value if lifecycle.outcome else None
        return cls(
            id=lifecycle.id or str(obj.get("id")),
            status=lifecycle.status or "unknown",
            created_at=created / 1e9 if created is not None else None,
            requests=lifecycle.counts.get("total"),
            finished=outcome is not None,
            obj=obj,
            outcome=outcome if outcome != lifecycle.status else None,
        )

    @property
    def label(self) -> str:
        """The status as shown: ``completed``, or ``ended (cancelled)``."""
        return f"{self.status} ({self.outcome})" if self.outcome else self.status

    def has_status(self, names: frozenset[str]) -> bool:
        return self.status in names or self.outcome in names


@dataclass(frozen=True, slots=True)
class BatchFilter:
    """``--since``, ``--until`` (epoch seconds, both inclusive), ``--status`` and ``--limit``."""

    since: float | None = None
    until: float | None = None
    statuses: frozenset[str] = frozenset()
    limit: int | None = None

    def before_window(self, batch: ListedBatch) -> bool:
        """Created before ``since``: listed newest first, nothing after it can match."""
        return self.since is not None and batch.created_at is not None and batch.created_at < self.since

    def in_window(self, batch: ListedBatch) -> bool:
        created = batch.created_at
        if created is None:
            return self.since is None and self.until is None
        return not (self.before_window(batch) or (self.until is not None and created > self.until))

    def matches(self, batch: ListedBatch) -> bool:
        return self.in_window(batch) and (not self.statuses or batch.has_status(self.statuses))

    def full(self, picked: int) -> bool:
        return self.limit is not None and picked >= self.limit


def select(
    listed: Iterable[ListedBatch], chosen: BatchFilter, on_seen: Callable[[int, int], None] | None = None
) -> list[ListedBatch]:
    """The listed batches that match, newest first, at most ``chosen.limit`` of them.

    ``on_seen(seen, picked)`` is told after each listed batch (a progress line while pages load).
    """
    picked: list[ListedBatch] = []
    ids: set[str] = set()
    for seen, batch in enumerate(listed, start=1):
        if chosen.before_window(batch):
            break
        if batch.id not in ids and chosen.matches(batch):
            ids.add(batch.id)
            picked.append(batch)
        if on_seen is not None:
            on_seen(seen, len(picked))
        if chosen.full(len(picked)):
            break
    return picked


def parse_when(text: str, *, end_of_day: bool = False) -> float:
    """``2026-03-01`` or ``2026-03-01T12:00[:00][Z|+02:00]`` as epoch seconds (UTC unless an offset is given).

    A date alone is its whole day: its start, or with ``end_of_day`` its last microsecond, so that
    ``--since D --until D`` is the batches of day D.
    """
    value = text.strip()
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 date and time") from None
    if end_of_day and len(value) == 10:
        when = datetime.combine(when.date(), time.max)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def format_when(epoch_s: float | None) -> str:
    """``2026-03-01 12:00`` (UTC), or ``-``."""
    if epoch_s is None:
        return "-"
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M")


# --------------------------------------------------------------------------- sending, and what came of it


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What every batch of a backfill is sent with (the replay command's settings)."""

    otlp: OtlpConfig | None = None
    timestamps: TimestampPolicy | None = None
    content: ContentPolicy | None = None

    def for_files(self) -> dict[str, Any]:
        """Keyword arguments for :func:`~batchtrace.run.run_batch` (and ``run_s3_batch``)."""
        return {"otlp": self.otlp, "timestamps": self.timestamps, "content": self.content}

    def for_status(self) -> dict[str, Any]:
        """Keyword arguments for :func:`~batchtrace.lifecycle.status.log_batch_status`."""
        return {"otlp": self.otlp, "timestamps": self.timestamps}


@dataclass(frozen=True, slots=True)
class Sent:
    """What a source made of one batch: the run's summary, and a note on anything short of the whole batch."""

    summary: Summary
    note: str = ""


class BatchSource(Protocol):
    """One provider's API: lists its batches newest first, and sends one batch's spans."""

    provider: str
    #: The statuses ``--status`` accepts for this provider.
    statuses: tuple[str, ...]

    def list_batches(self) -> Iterator[ListedBatch]: ...

    def deliver(self, batch: ListedBatch) -> Sent: ...


class Action(StrEnum):
    """What a backfill did with a batch."""

    SENT = "sent"
    SKIPPED = "skipped"
    LISTED = "listed"
    PENDING = "not finished"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a batch's run delivered: the figures of its summary that the table shows and the state keeps."""

    trace_id: str | None = None
    requests: int = 0
    spans_built: int = 0
    spans_exported: int = 0
    spans_failed: int = 0
    cost_usd: float | None = None

    @classmethod
    def of(cls, summary: Summary) -> Delivery:
        return cls(
            trace_id=summary.trace_id,
            requests=summary.requests,
            spans_built=summary.spans_built,
            spans_exported=summary.spans_exported,
            spans_failed=summary.spans_failed,
            cost_usd=summary.cost_usd,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Delivery:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """One batch's line in the final table."""

    batch: ListedBatch
    action: Action
    note: str = ""
    delivery: Delivery | None = None

    @property
    def undelivered(self) -> bool:
        """Spans of this batch were not delivered: the run's exit code is 1."""
        return self.action is Action.FAILED


# --------------------------------------------------------------------------- the state file


def default_state_path(provider: str, env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/batchtrace/backfill-<provider>.json``, by default ``~/.cache/batchtrace/...``."""
    env = os.environ if env is None else env
    cache = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "batchtrace" / f"backfill-{provider}.json"


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename it: a reader (or a crash) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_state(path: Path, provider: str) -> dict[str, Any]:
    """The state file's batches; none when it does not exist; :class:`InputError` when it is not ours."""
    try:
        doc = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, orjson.JSONDecodeError) as err:
        what = f"state file {path} is unreadable ({one_line(err)})"
        raise InputError(f"{what}: remove it or name another with --state") from None
    fits = isinstance(doc, dict) and doc.get("version") == STATE_VERSION and isinstance(doc.get("batches"), dict)
    if not fits or doc.get("provider") != provider:
        what = f"state file {path} is not the state of a --provider {provider} backfill"
        raise InputError(f"{what}: remove it or name another with --state")
    return dict(doc["batches"])


@dataclass(slots=True)
class BackfillState:
    """The batches a backfill delivered, kept in a JSON file so that a later run skips them."""

    path: Path
    provider: str
    batches: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, provider: str) -> BackfillState:
        return cls(path, provider, _read_state(path, provider))

    def delivered(self, batch_id: str) -> Delivery | None:
        """What was delivered of the batch by an earlier run, or ``None`` when it was not (entirely)."""
        entry = self.batches.get(batch_id)
        return Delivery.from_dict(entry) if isinstance(entry, Mapping) else None

    def record(self, batch: ListedBatch, delivery: Delivery) -> None:
        """Remember a fully delivered batch, and rewrite the file at once."""
        delivered_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.batches[batch.id] = {"status": batch.label, "created_at": batch.created_at, **asdict(delivery)}
        self.batches[batch.id]["delivered_at"] = delivered_at
        self.save()

    def save(self) -> None:
        """Write the file (atomically); :class:`InputError` when its folder is not writable."""
        doc = {"version": STATE_VERSION, "provider": self.provider, "batches": self.batches}
        try:
            _write_atomically(self.path, orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
        except OSError as err:
            reason = one_line(err)
            raise InputError(f"cannot write the state file {self.path} ({reason}); name another with --state") from None


# --------------------------------------------------------------------------- the run


def _failed(batch: ListedBatch, err: Exception) -> BatchOutcome:
    if isinstance(err, BatchtraceError):
        return BatchOutcome(batch, Action.FAILED, one_line(err))
    # Not one of ours: a bug or an SDK surprise. One batch's is reported; the others still run.
    logger.debug("batch %s failed", batch.id, exc_info=True)
    return BatchOutcome(batch, Action.FAILED, f"{type(err).__name__}: {one_line(err)}")


def _deliver(source: BatchSource, batch: ListedBatch) -> BatchOutcome:
    try:
        sent = source.deliver(batch)
    except FATAL_ERRORS:
        raise
    except Exception as err:
        return _failed(batch, err)
    delivery = Delivery.of(sent.summary)
    if not sent.summary.delivered_all:
        return BatchOutcome(batch, Action.FAILED, one_line(sent.summary.failure_reason()), delivery)
    return BatchOutcome(batch, Action.SENT, sent.note, delivery)


def _without_sending(batch: ListedBatch, state: BackfillState, dry_run: bool) -> BatchOutcome | None:
    """The outcome of a batch that is not to be sent (delivered before, still running, a dry run), else ``None``."""
    done = state.delivered(batch.id)
    if done is not None:
        return BatchOutcome(batch, Action.SKIPPED, "already delivered", done)
    if not batch.finished:
        return BatchOutcome(batch, Action.PENDING, batch.status)
    if dry_run:
        return BatchOutcome(batch, Action.LISTED, "dry run")
    return None


def run_backfill(
    source: BatchSource,
    batches: Sequence[ListedBatch],
    state: BackfillState,
    *,
    dry_run: bool = False,
    on_start: Callable[[int, ListedBatch], None] | None = None,
) -> Iterator[BatchOutcome]:
    """Send each batch that needs it, in order; yield each one's outcome as soon as it is known.

    A fully delivered batch is recorded in ``state`` before its outcome is yielded, so whatever
    stops the run after that, the batch is not sent again. A dry run sends and records nothing.
    Raises what :data:`FATAL_ERRORS` names (the API key refused); every other failure of a batch
    is its outcome.
    """
    for index, batch in enumerate(batches):
        if on_start is not None:
            on_start(index, batch)
        outcome = _without_sending(batch, state, dry_run) or _deliver(source, batch)
        if outcome.action is Action.SENT and outcome.delivery is not None:
            state.record(batch, outcome.delivery)
        yield outcome
