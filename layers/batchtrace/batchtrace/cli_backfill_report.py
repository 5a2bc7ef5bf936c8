"""What ``batchtrace backfill`` shows: progress on stderr while it runs, a table on stdout at the end.

On a terminal the progress is one line rewritten in place (a bar, the batch at hand, the spans
sent so far), and log lines are written above it rather than through it. Anywhere else (a pipe, a
CI log) it is plain lines: one when the listing is done, one per batch.

Written by hand rather than with ``rich`` or ``tqdm``: it is one rewritten line and one table,
about a hundred lines, and either library would be a run-time dependency of every install of
batchtrace (``rich`` brings ``pygments`` and ``markdown-it-py``) for that.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

from batchtrace.sources.backfill import Action, BatchOutcome, ListedBatch, format_when

#: Rewind to the start of the line and clear it.
_CLEAR = "\r\x1b[K"
_BAR_WIDTH = 24
_HEADERS = ("BATCH", "STATUS", "CREATED", "REQUESTS", "SENT", "FAILED", "COST", "RESULT")
#: Columns aligned right (numbers).
_RIGHT = frozenset({3, 4, 5, 6})


def _spans(outcomes: Sequence[BatchOutcome]) -> tuple[int, int]:
    """Spans delivered and not delivered, over the batches this run sent (not the skipped ones)."""
    sent = [o.delivery for o in outcomes if o.delivery is not None and o.action is not Action.SKIPPED]
    return sum(d.spans_exported for d in sent), sum(d.spans_failed for d in sent)


@dataclass(slots=True)
class Progress:
    """Progress on ``stream``: a rewritten line on a terminal (``live``), plain lines otherwise."""

    stream: TextIO
    provider: str
    live: bool
    total: int = 0
    done: list[BatchOutcome] = field(default_factory=list)
    _line: str = ""

    @classmethod
    def on(cls, stream: TextIO, provider: str) -> Progress:
        isatty = getattr(stream, "isatty", None)
        progress = cls(stream, provider, live=bool(isatty and isatty()))
        if progress.live:
            progress._route_logging()
        return progress

    # ------------------------------------------------------------------ a file-like for log handlers

    def write(self, text: str) -> int:
        """Write ``text`` above the progress line (log handlers write here on a terminal)."""
        self.stream.write(_CLEAR + text if self._line else text)
        if self._line and text.endswith("\n"):
            self.stream.write(self._line)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def _route_logging(self) -> None:
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is self.stream:
                handler.setStream(self)

    # ------------------------------------------------------------------ the run

    def _show(self, line: str) -> None:
        width = max(shutil.get_terminal_size((100, 20)).columns - 1, 20)
        self._line = line[:width]
        self.stream.write(_CLEAR + self._line)
        self.stream.flush()

    def _say(self, line: str) -> None:
        self.stream.write(f"batchtrace: {line}\n")
        self.stream.flush()

    def listing(self, seen: int, picked: int) -> None:
        if self.live:
            self._show(f"listing {self.provider} batches: {seen} seen, {picked} selected")
        elif seen % 500 == 0:
            self._say(f"listing {self.provider} batches: {seen} seen, {picked} selected")

    def listed(self, batches: Sequence[ListedBatch]) -> None:
        self.total = len(batches)
        if not self.live:
            self._say(f"{self.total} {self.provider} batches selected (newest first)")

    def start(self, index: int, batch: ListedBatch) -> None:
        if self.live:
            self._show(f"{self._bar(index)} {batch.id} ({batch.label})")

    def finished(self, outcome: BatchOutcome) -> None:
        self.done.append(outcome)
        line = f"[{len(self.done)}/{self.total}] {outcome.batch.id} ({outcome.batch.label}): {describe(outcome)}"
        if not self.live:
            self._say(line)
        elif outcome.action is Action.FAILED:
            self.write(f"batchtrace: {line}\n")

    def _bar(self, index: int) -> str:
        filled = _BAR_WIDTH * index // max(self.total, 1)
        delivered, _ = _spans(self.done)
        bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
        return f"backfill {self.provider} [{bar}] {index}/{self.total}, {delivered} spans sent"

    def close(self) -> None:
        """Clear the progress line (the table comes next)."""
        if self.live and self._line:
            self.stream.write(_CLEAR)
            self.stream.flush()
        self._line = ""


# --------------------------------------------------------------------------- the table


def describe(outcome: BatchOutcome) -> str:
    """What happened, in a few words: ``sent``, ``skipped (already delivered)``, ``failed: ...``."""
    if outcome.action is Action.FAILED:
        return f"failed: {outcome.note}"
    if outcome.action is Action.SENT and outcome.delivery is not None and not outcome.note:
        return f"sent ({outcome.delivery.spans_exported} spans)"
    return f"{outcome.action.value} ({outcome.note})" if outcome.note else outcome.action.value


def _cost(value: float | None) -> str:
    return "-" if value is None else f"${value:,.4f}"


def _row(outcome: BatchOutcome) -> tuple[str, ...]:
    batch, delivery = outcome.batch, outcome.delivery
    requests = delivery.requests if delivery is not None and delivery.requests else batch.requests
    numbers = ("-", "-", "-")
    if delivery is not None:
        numbers = (str(delivery.spans_exported), str(delivery.spans_failed), _cost(delivery.cost_usd))
    count = "-" if requests is None else str(requests)
    return (batch.id, batch.label, format_when(batch.created_at), count, *numbers, describe(outcome))


def _cells(row: Sequence[str], widths: Sequence[int]) -> str:
    cells = [
        cell.rjust(w) if i in _RIGHT else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
    ]
    return "  ".join(cells).rstrip()


def table(outcomes: Sequence[BatchOutcome]) -> str:
    """The batches, one row each, in columns sized to their content."""
    rows = [_HEADERS, *(_row(outcome) for outcome in outcomes)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADERS))]
    return "\n".join(_cells(row, widths) for row in rows)


def _delivered(outcomes: Sequence[BatchOutcome], *, pending: bool) -> str:
    delivered, failed = _spans(outcomes)
    line = f"; {delivered} spans delivered" + (f", {failed} not delivered" if failed else "")
    return line + ("; run again once the unfinished batches have ended" if pending else "")


def totals(outcomes: Sequence[BatchOutcome], *, dry_run: bool) -> str:
    """One line: how many batches had which fate, and the spans delivered by this run."""
    counts = Counter(outcome.action for outcome in outcomes)
    parts = ", ".join(f"{counts[action]} {action.value}" for action in Action if counts[action])
    line = f"{len(outcomes)} batches" + (f": {parts}" if parts else "")
    if dry_run:
        return f"{line}; dry run: nothing sent, no state written"
    return line + _delivered(outcomes, pending=counts[Action.PENDING] > 0)
