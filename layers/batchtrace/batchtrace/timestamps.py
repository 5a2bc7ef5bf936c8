"""Where the spans go in time: at the provider's times (the default), or at the time of processing.

A batch's spans carry the times the provider ran its requests, often many hours before the results
are processed. Some trace backends reject spans that old: Datadog LLM Observability and Sumo Logic
spans older than a day, Dynatrace older than an hour. ``BATCHTRACE_TIMESTAMPS=processing`` (CLI:
``--timestamps processing``) places every completion at the time of processing and the
``batch_results`` span from then to the end of the run, and keeps the provider's times as
attributes (``batchtrace.response.created`` on each completion, ``batchtrace.original_start`` and
``batchtrace.original_end`` on ``batch_results``). Prices and the tally still use the provider's
times. In the default mode a batch whose spans are older than a day logs a one-line hint.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from batchtrace import semconv as sc
from batchtrace.errors import InputError
from batchtrace.record import AttributeValue

logger = logging.getLogger(__name__)

TIMESTAMPS_ENV: Final = "BATCHTRACE_TIMESTAMPS"
ORIGINAL: Final = "original"
PROCESSING: Final = "processing"
MODES: Final = (ORIGINAL, PROCESSING)
#: Spans older than this get the hint: the strictest limit of a day (Datadog, Sumo Logic).
HINT_AGE_NS: Final = 24 * 3600 * 1_000_000_000

_NS = 1_000_000_000
Window = tuple[int, int]


@dataclass(slots=True, frozen=True)
class TimestampPolicy:
    """Whether spans keep the provider's times (``original``) or move to processing time."""

    mode: str = ORIGINAL

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"timestamps must be one of {', '.join(MODES)}, got {self.mode!r}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TimestampPolicy:
        """``BATCHTRACE_TIMESTAMPS`` (``original`` when unset); any other value is one clear error."""
        env = os.environ if env is None else env
        mode = (env.get(TIMESTAMPS_ENV) or ORIGINAL).strip().lower()
        if mode not in MODES:
            raise InputError(f"{TIMESTAMPS_ENV} must be one of {', '.join(MODES)}, got {mode!r}")
        return cls(mode)

    @property
    def processing(self) -> bool:
        return self.mode == PROCESSING

    def place(self, at_ns: int, now_ns: int) -> int:
        """A completion's time: the provider's (``at_ns``), or the time of processing."""
        return now_ns if self.processing else at_ns

    def place_window(self, window: Window, now_ns: int) -> tuple[Window, dict[str, AttributeValue]]:
        """The ``batch_results`` span's window, and the provider's window as attributes when it moved.

        At processing time the span runs from the start of processing to now (the run's own length).
        """
        if not self.processing:
            return window, {}
        originals: dict[str, AttributeValue] = {sc.ORIGINAL_START: window[0] // _NS, sc.ORIGINAL_END: window[1] // _NS}
        return (now_ns, max(now_ns, time.time_ns())), originals

    def hint_if_old(self, oldest_ns: int | None, now_ns: int, batch_id: str | None) -> str | None:
        """Log (and return) the one-line hint when spans at their original times are over a day old."""
        if self.processing or oldest_ns is None or now_ns - oldest_ns <= HINT_AGE_NS:
            return None
        hours = (now_ns - oldest_ns) / (3600 * _NS)
        hint = (
            f"spans of batch {batch_id or '(no id)'} are up to {hours:.0f} h old, and some backends reject old spans"
            f" (Datadog LLM Observability, Sumo Logic: a day; Dynatrace: an hour); {TIMESTAMPS_ENV}=processing"
            " (CLI: --timestamps processing) places them at processing time and keeps these times as attributes"
        )
        logger.warning("%s", hint)
        return hint


#: The default policy, for signatures (a frozen, shared instance).
AT_ORIGINAL_TIMES: Final = TimestampPolicy()
