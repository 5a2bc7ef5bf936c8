"""Tally: the one counter of a run, and the summary every entry point returns, logs or prints.

Read-and-match counts lines, ids and pairs; each chunk of records counts results, failures and token
totals from the records themselves (never from attributes) and what delivery made of its
spans. Chunks are tallied where they are built (a forked worker, or inline) and merged here,
so the :class:`Summary`, the log lines and the metrics all derive from the same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from batchtrace.breakdown import ModelUsage, UsageKey, add_cost, cost_known, count_usage, merge_usage, usage_rows
from batchtrace.lifecycle.bedrock import MANIFEST, parse_manifest
from batchtrace.lifecycle.reconcile import reconcile
from batchtrace.record import Record

#: Distinct failure reasons kept per run: enough to explain, never a flood.
MAX_REASONS = 20


@dataclass(slots=True)
class Tally:
    """Counts that add up across chunks and processes (:meth:`merge`)."""

    requests: int = 0
    results: int = 0
    errors: int = 0
    expired: int = 0
    no_result: int = 0
    orphan_results: int = 0
    duplicate_ids: int = 0
    malformed_lines: int = 0
    spans_built: int = 0
    spans_exported: int = 0
    spans_failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0
    #: USD at the rate charged and at realtime rates, over the ``priced`` records (``record.cost``).
    cost_usd: float = 0.0
    cost_realtime_usd: float = 0.0
    priced: int = 0
    #: Records with usage but no known price: counted, never priced at zero.
    unpriced: int = 0
    malformed_by_file: dict[str, int] = field(default_factory=dict)
    failure_reasons: list[str] = field(default_factory=list)
    #: Seconds per stage (build, encode, send are summed over workers).
    seconds: dict[str, float] = field(default_factory=dict)
    earliest_ns: int | None = None
    latest_ns: int | None = None
    #: Completions by (provider, model, operation): outcomes, token histograms, cost (``breakdown``).
    by_model: dict[UsageKey, ModelUsage] = field(default_factory=dict)

    def count_record(self, record: Record, at_ns: int) -> None:
        """One record's share: its failure, its tokens and its time (pairing is counted by the matcher)."""
        self.spans_built += 1
        if record.failure is not None and not record.no_result:
            self.errors += 1
            self.expired += record.failure.expired
        usage = record.usage
        self.input_tokens += usage.input_tokens or 0
        self.output_tokens += usage.output_tokens or 0
        self.cache_read_tokens += usage.cache_read_tokens or 0
        self.cache_creation_tokens += usage.cache_creation_tokens or 0
        self.reasoning_tokens += usage.reasoning_tokens or 0
        count_usage(self.by_model, record)
        add_cost(self, record)
        self.observe_time(at_ns)

    def cost_totals(self) -> dict[str, float | int | None]:
        """``cost_usd`` (the batch rate), ``cost_realtime_usd``, ``saving_usd`` and ``unpriced``.

        The USD figures are ``None`` unless :func:`~batchtrace.breakdown.cost_known`: an unknown
        cost is never shown as zero.
        """
        known = cost_known(self)

        def usd(value: float) -> float | None:
            return round(value, 10) if known else None

        return {
            "cost_usd": usd(self.cost_usd),
            "cost_realtime_usd": usd(self.cost_realtime_usd),
            "saving_usd": usd(self.cost_realtime_usd - self.cost_usd),
            "unpriced": self.unpriced,
        }

    def observe_time(self, at_ns: int | None) -> None:
        if at_ns is None:
            return
        if self.earliest_ns is None or at_ns < self.earliest_ns:
            self.earliest_ns = at_ns
        if self.latest_ns is None or at_ns > self.latest_ns:
            self.latest_ns = at_ns

    def delivered(self, exported: int, failed: int = 0, reason: str | None = None) -> None:
        """What delivery made of some spans (a chunk, or part of one)."""
        self.spans_exported += exported
        self.spans_failed += failed
        if reason:
            self.add_reason(reason)

    def lost(self, spans: int, reason: str) -> None:
        """Spans that were never built or sent (a worker died, a chunk raised): counted as failed."""
        self.spans_built += spans
        self.delivered(0, spans, reason)

    def add_reason(self, reason: str) -> None:
        if reason not in self.failure_reasons and len(self.failure_reasons) < MAX_REASONS:
            self.failure_reasons.append(reason)

    def add_seconds(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def merge(self, other: Tally) -> None:
        """Add ``other`` (a chunk's tally) into this one."""
        for item in fields(self):
            mine, theirs = getattr(self, item.name), getattr(other, item.name)
            if (
                isinstance(mine, int | float)
                and not isinstance(mine, bool)
                and item.name not in ("earliest_ns", "latest_ns")
            ):
                setattr(self, item.name, mine + theirs)
        for name, count in other.malformed_by_file.items():
            self.malformed_by_file[name] = self.malformed_by_file.get(name, 0) + count
        for reason in other.failure_reasons:
            self.add_reason(reason)
        for stage, seconds in other.seconds.items():
            self.add_seconds(stage, seconds)
        self.observe_time(other.earliest_ns)
        self.observe_time(other.latest_ns)
        merge_usage(self.by_model, other.by_model)


@dataclass(slots=True)
class Summary:
    """The run's summary: the documented fields first, then the breakdowns.

    ``errors`` counts results that failed, of which ``expired`` ran out of time;
    ``spans_built`` includes the ``batch_results`` span when there is one. ``malformed_by_file``,
    ``failure_reasons`` and ``stage_ms`` say which file, why and where the time went.
    """

    batch_id: str | None = None
    trace_id: str | None = None
    requests: int = 0
    results: int = 0
    errors: int = 0
    expired: int = 0
    no_result: int = 0
    orphan_results: int = 0
    duplicate_ids: int = 0
    malformed_lines: int = 0
    spans_built: int = 0
    spans_exported: int = 0
    spans_failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    duration_ms: int = 0
    provider: str | None = None
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0
    #: USD: at the batch rate charged, at realtime rates, and the difference; ``None`` if nothing was priced.
    cost_usd: float | None = None
    cost_realtime_usd: float | None = None
    saving_usd: float | None = None
    #: Records with usage whose model has no known price (left out of the USD figures).
    unpriced: int = 0
    malformed_by_file: dict[str, int] = field(default_factory=dict)
    failure_reasons: list[str] = field(default_factory=list)
    stage_ms: dict[str, int] = field(default_factory=dict)
    #: The provider's own counts beside what the files held: ``{source, provider, seen, agree}``.
    reconciliation: dict[str, Any] | None = None
    #: Completions, outcomes, tokens and cost per (provider, model, operation): ``breakdown.usage_rows``.
    by_model: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, tally: Tally, **identity: Any) -> Summary:
        """The summary of a finished run: the tally's counts plus ``batch_id``, ``trace_id``, ..."""
        names = {item.name for item in fields(cls)}
        counts = {name: value for name, value in asdict(tally).items() if name in names}
        counts["stage_ms"] = {stage: int(seconds * 1000) for stage, seconds in tally.seconds.items()}
        counts["by_model"] = usage_rows(tally.by_model)
        counts.update(tally.cost_totals())
        return cls(**counts, **identity)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def delivered_all(self) -> bool:
        return self.spans_failed == 0 and self.spans_exported == self.spans_built

    def failure_reason(self) -> str:
        """One line on what was not delivered and why, for errors and exit messages."""
        why = "; ".join(self.failure_reasons) or "see the log"
        return f"{self.spans_failed} of {self.spans_built} spans not delivered ({why})"


def reconcile_manifest(manifest: dict[str, Any] | None, summary: Summary) -> dict[str, Any] | None:
    """Bedrock's manifest counts against the summary's; ``None`` without a manifest.

    Kept for callers of the manifest alone: the general form is
    :func:`batchtrace.lifecycle.reconcile`, which every run applies to the lifecycle's counts.
    """
    if manifest is None:
        return None
    found = reconcile(parse_manifest(manifest).counts, summary, MANIFEST)
    return found.as_dict() if found else None
