"""A run's completions by (provider, model, operation): outcomes, token sums and token histograms.

This is what the ``gen_ai.client.token.usage`` metric, the request-outcome metric and the
summary's ``by_model`` rows are made of. It lives in the :class:`~batchtrace.tally.Tally`, is
filled once per record where the record is built (a forked worker, or inline) and merged by
addition, like every other count of a run.

Why the token histogram is aggregated here rather than by the OpenTelemetry SDK: the conventions
define ``gen_ai.client.token.usage`` as a histogram with one measurement per request, so a batch
of 50,000 requests is 50,000 input and 50,000 output measurements, not one total. Those records
are built in forked worker processes, whose SDK instruments cannot be merged into the parent's;
and replaying every value into an SDK histogram at the end of the run was measured at ~11 µs a
value (1.1 s in the main process for a full 50,000-request batch), where counting here was
measured at 1.75 µs a request, both token types, spread over the workers (90 ms for 50,000).
So each :class:`TokenHistogram` aggregates exactly as the SDK's explicit-bucket aggregation
does (count, sum, min, max and a count per bucket, with the conventions' advised bucket
boundaries, upper bounds inclusive), and ``batchtrace.send.metrics`` hands it to the SDK's OTLP
exporter as an SDK ``HistogramDataPoint``: per-request values, honestly, at no cost that shows.

The model of a key is the request's, else the response's (a result whose request is not in the
input file can only be named after the model that answered it), as the spans are named.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from batchtrace.record import Record

#: The semantic conventions' advised bucket boundaries for ``gen_ai.client.token.usage``.
TOKEN_BUCKETS: Final[tuple[int, ...]] = (
    1,
    4,
    16,
    64,
    256,
    1_024,
    4_096,
    16_384,
    65_536,
    262_144,
    1_048_576,
    4_194_304,
    16_777_216,
    67_108_864,
)

#: ``(provider, model, operation)``; the model is ``None`` when neither request nor response names one.
UsageKey = tuple[str, str | None, str]


def _empty_buckets() -> list[int]:
    return [0] * (len(TOKEN_BUCKETS) + 1)


class CostSums(Protocol):
    """What sums costs: the run's :class:`~batchtrace.tally.Tally` and each :class:`ModelUsage`."""

    priced: int
    unpriced: int
    cost_usd: float
    cost_realtime_usd: float


def add_cost(sums: CostSums, record: Record) -> None:
    """The record's price, summed; or one more unpriced record if it reported usage but has no price."""
    cost = record.cost
    if cost is not None:
        sums.priced += 1
        sums.cost_usd += cost.batch_usd
        sums.cost_realtime_usd += cost.realtime_usd
    elif record.usage.reported:
        sums.unpriced += 1


def cost_known(sums: CostSums) -> bool:
    """Whether the summed USD figures are a cost: unknown (``None``) only when usage was reported and
    none of it could be priced; requests without usage (failed, expired, no result) cost nothing."""
    return sums.priced > 0 or sums.unpriced == 0


@dataclass(slots=True)
class TokenHistogram:
    """Token counts of individual requests, aggregated as an OTLP explicit-bucket histogram."""

    count: int = 0
    total: int = 0
    min: int | None = None
    max: int | None = None
    #: ``buckets[i]`` counts values in ``(TOKEN_BUCKETS[i-1], TOKEN_BUCKETS[i]]``; the last is the overflow.
    buckets: list[int] = field(default_factory=_empty_buckets)

    def record(self, value: int) -> None:
        self.count += 1
        self.total += value
        self.min = value if self.min is None else min(self.min, value)
        self.max = value if self.max is None else max(self.max, value)
        self.buckets[bisect_left(TOKEN_BUCKETS, value)] += 1

    def merge(self, other: TokenHistogram) -> None:
        if not other.count:
            return
        self.count += other.count
        self.total += other.total
        self.min = other.min if self.min is None else min(self.min, other.min or 0)
        self.max = other.max if self.max is None else max(self.max, other.max or 0)
        self.buckets = [mine + theirs for mine, theirs in zip(self.buckets, other.buckets, strict=True)]


@dataclass(slots=True)
class ModelUsage:
    """One (provider, model, operation)'s completions: how they ended and the tokens they used.

    ``failed`` excludes the ``expired`` and ``no_result`` ones, so the four outcomes partition
    ``completions`` (``succeeded`` is what is left). The USD figures sum the ``priced`` records
    only (``record.cost``); records that reported usage but have no price are ``unpriced``, and
    when none was priced the cost is unknown (``None``), never zero, as in the run's totals.
    """

    completions: int = 0
    failed: int = 0
    expired: int = 0
    no_result: int = 0
    input: TokenHistogram = field(default_factory=TokenHistogram)
    output: TokenHistogram = field(default_factory=TokenHistogram)
    priced: int = 0
    unpriced: int = 0
    cost_usd: float = 0.0
    cost_realtime_usd: float = 0.0

    @property
    def succeeded(self) -> int:
        return self.completions - self.failed - self.expired - self.no_result

    def outcomes(self) -> dict[str, int]:
        """Completions by outcome: ``succeeded``, ``failed``, ``expired``, ``no_result``."""
        return {
            "succeeded": self.succeeded,
            "failed": self.failed,
            "expired": self.expired,
            "no_result": self.no_result,
        }

    def costs(self) -> dict[str, float | None]:
        """``cost_usd`` (the batch rate charged) and ``cost_realtime_usd``; ``None`` unless :func:`cost_known`."""
        if not cost_known(self):
            return {"cost_usd": None, "cost_realtime_usd": None}
        return {"cost_usd": round(self.cost_usd, 10), "cost_realtime_usd": round(self.cost_realtime_usd, 10)}

    def count(self, record: Record) -> None:
        self.completions += 1
        if record.no_result:
            self.no_result += 1
        elif record.failure is not None:
            self.expired += record.failure.expired
            self.failed += not record.failure.expired
        if record.usage.input_tokens is not None:
            self.input.record(record.usage.input_tokens)
        if record.usage.output_tokens is not None:
            self.output.record(record.usage.output_tokens)
        add_cost(self, record)

    def merge(self, other: ModelUsage) -> None:
        self.completions += other.completions
        self.failed += other.failed
        self.expired += other.expired
        self.no_result += other.no_result
        self.input.merge(other.input)
        self.output.merge(other.output)
        self.priced += other.priced
        self.unpriced += other.unpriced
        self.cost_usd += other.cost_usd
        self.cost_realtime_usd += other.cost_realtime_usd


def usage_key(record: Record) -> UsageKey:
    return record.provider, record.model, record.operation


def count_usage(by_model: dict[UsageKey, ModelUsage], record: Record) -> None:
    """Count ``record`` under its (provider, model, operation)."""
    key = usage_key(record)
    usage = by_model.get(key)
    if usage is None:
        usage = by_model[key] = ModelUsage()
    usage.count(record)


def merge_usage(into: dict[UsageKey, ModelUsage], other: dict[UsageKey, ModelUsage]) -> None:
    """Add ``other`` (a chunk's breakdown) into ``into``."""
    for key, usage in other.items():
        mine = into.get(key)
        if mine is None:
            mine = into[key] = ModelUsage()
        mine.merge(usage)


def usage_rows(by_model: dict[UsageKey, ModelUsage]) -> list[dict[str, Any]]:
    """The summary's ``by_model``: one JSON-ready row per (provider, model, operation), in a stable order."""
    rows: list[dict[str, Any]] = []
    for (provider, model, operation), usage in sorted(by_model.items(), key=lambda item: str(item[0])):
        row: dict[str, Any] = {"provider": provider, "model": model, "operation": operation}
        row["completions"] = usage.completions
        row.update(usage.outcomes())
        row["input_tokens"], row["output_tokens"] = usage.input.total, usage.output.total
        row.update(usage.costs())
        rows.append(row)
    return rows
