"""One batch, end to end: index the input, stream the results, match, build, deliver, count.

This is the core every entry point calls (library, CLI, Lambda handler). It takes open
streams, not paths or S3 keys, so where the bytes come from is the caller's business, and it
returns the :class:`Summary` whatever happened; deciding what a failure means (an exit code,
a raised error) is the caller's business too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.resources import Resource

from batchtrace.delivery import DeliveryPolicy, DeliveryReport, OtlpSender
from batchtrace.genai_attributes import ContentPolicy
from batchtrace.jsonl import MalformedLines, Readable, iter_raw_lines, parse_object
from batchtrace.openai_format import parse_result
from batchtrace.otlp_config import OtlpConfig
from batchtrace.request_index import RequestIndex, request_from_line
from batchtrace.span_workers import ChunkWorker, ForkPool, InlinePool, WorkItem, worker_count
from batchtrace.spans import BatchTimes, SpanFactory
from batchtrace.summary import Summary
from batchtrace.trace_link import TraceHint, resolve_hint

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Chunker:
    """Cuts work items into chunks bounded by count and (estimated) encoded size."""

    pool: InlinePool | ForkPool
    max_items: int
    max_bytes: int
    items: list[WorkItem] = field(default_factory=list)
    size: int = 0

    def add(self, request_entry: int | None, result_line: bytes | None, occurrence: int) -> None:
        self.items.append((request_entry, result_line, occurrence))
        # Content is carried by two attribute sets, so a span is about twice its raw lines.
        request_length = request_entry & 0xFFFFFFFF if request_entry is not None else 0
        self.size += 2 * (request_length + len(result_line or b"")) + 400
        if len(self.items) >= self.max_items or self.size >= self.max_bytes:
            self.flush()

    def flush(self) -> None:
        if self.items:
            self.pool.submit(self.items)
            self.items, self.size = [], 0


def run_batch(
    input_stream: Readable,
    result_streams: Sequence[tuple[str, Readable]],
    *,
    batch_id: str | None = None,
    batch: Mapping[str, Any] | None = None,
    hint: TraceHint | None = None,
    otlp: OtlpConfig | None = None,
    delivery: DeliveryPolicy | None = None,
    content: ContentPolicy | None = None,
    resource: Resource | None = None,
    input_name: str = "input",
    workers: int | None = None,
    on_trace: Callable[[str | None, str], None] | None = None,
) -> Summary:
    """Turn one batch into spans and deliver them; returns the summary (never raises on delivery).

    ``result_streams`` are ``(name, stream)`` pairs: the output file, then the error file if
    any. ``batch`` is OpenAI's batch object when known (its timestamps bound the batch span).
    ``workers`` is the number of forked span-building processes (0: in this process; ``None``:
    ``BATCHTRACE_WORKERS``, else one per core for large batches). ``on_trace`` is told the
    batch id and trace id as soon as the trace id is known (before the input is read when the batch id is given), so
    a caller can put it on every log line.
    Raises :class:`InvalidTraceContextError` for an invalid strict hint, before sending anything.
    """
    started = time.monotonic()
    hint = hint or TraceHint()
    delivery = delivery or DeliveryPolicy()
    otlp = otlp or OtlpConfig.resolve()
    batch_id = batch_id or (str(batch["id"]) if batch and isinstance(batch.get("id"), str) else None)
    summary = Summary(batch_id=batch_id)
    resolved = resolve_hint(hint, batch_id) if batch_id else None
    if resolved and on_trace:
        on_trace(batch_id, resolved[0].trace_id_hex)
    stage = time.perf_counter()
    with RequestIndex.from_stream(input_stream, input_name, digest=batch_id is None) as index:
        summary.stage_ms["read_input"] = _ms_since(stage)
        summary.requests = index.requests
        summary.duplicate_ids = index.duplicate_ids
        if resolved is None:
            resolved = resolve_hint(hint, f"input:{index.content_digest}")
            if on_trace:
                on_trace(batch_id, resolved[0].trace_id_hex)
        link, link_warning = resolved
        summary.trace_id = link.trace_id_hex
        factory = SpanFactory(
            link,
            batch_id=batch_id,
            policy=content or ContentPolicy.from_env(),
            times=BatchTimes.from_batch(batch),
            resource=resource,
        )
        processes = worker_count(index.requests) if workers is None else workers

        def make_worker() -> ChunkWorker:
            return ChunkWorker(factory, OtlpSender(otlp, delivery), index.read)

        pool: InlinePool | ForkPool = ForkPool(make_worker, processes) if processes > 0 else InlinePool(make_worker())
        chunker = _Chunker(pool, delivery.max_spans_per_request, delivery.max_request_bytes // 2)
        seen: dict[str, int] = {}
        malformed_files = [index.malformed]
        stage = time.perf_counter()
        try:
            for name, stream in result_streams:
                malformed = MalformedLines(name)
                malformed_files.append(malformed)
                for line_no, _, line in iter_raw_lines(stream):
                    obj, reason = parse_object(line)
                    result = None
                    if obj is not None:
                        result, reason = parse_result(obj)
                    if result is None:
                        malformed.add(line_no, reason)
                        continue
                    occurrence = seen.get(result.custom_id, 0)
                    seen[result.custom_id] = occurrence + 1
                    if occurrence:
                        summary.duplicate_ids += 1
                    request_entry = index.take_entry(result.custom_id)
                    summary.results += 1
                    if request_entry is None:
                        summary.orphan_results += 1
                    if result.failed:
                        summary.errors += 1
                        if result.expired:
                            summary.expired += 1
                    chunker.add(request_entry, line, occurrence)
            for request_entry in index.remaining_entries():
                summary.no_result += 1
                custom_id = request_from_line(index.read(request_entry)).custom_id
                occurrence = seen.get(custom_id, 0)
                seen[custom_id] = occurrence + 1
                chunker.add(request_entry, None, occurrence)
            chunker.flush()
        finally:
            outcomes = pool.close()
    summary.stage_ms["read_results_and_match"] = _ms_since(stage)
    summary.malformed_lines = sum(m.count for m in malformed_files)
    summary.malformed_by_file = {m.file: m.count for m in malformed_files if m.count}
    report = DeliveryReport()
    for outcome in outcomes:
        summary.spans_built += outcome.spans
        summary.input_tokens += outcome.input_tokens
        summary.output_tokens += outcome.output_tokens
        report.exported += outcome.exported
        report.failed += outcome.failed
        for reason in outcome.reasons:
            report.record(0, 0, reason)
        factory.observe_range(outcome.earliest_ns, outcome.latest_ns)
        for key, seconds in outcome.seconds.items():
            summary.stage_ms[key] = summary.stage_ms.get(key, 0) + int(seconds * 1000)
    batch_span = factory.batch_span(_span_counts(summary, link_warning))
    if batch_span is not None:
        summary.spans_built += 1
        receiver_failing = report.failed > 0 and report.exported == 0
        OtlpSender(otlp, delivery, receiver_failing=receiver_failing).send([batch_span], report)
    _finish(summary, report, started)
    return summary


def _ms_since(start: float) -> int:
    return int((time.perf_counter() - start) * 1000)


def _span_counts(summary: Summary, link_warning: str | None) -> dict[str, Any]:
    counts: dict[str, Any] = {
        key: getattr(summary, key)
        for key in (
            "requests",
            "results",
            "errors",
            "expired",
            "no_result",
            "orphan_results",
            "duplicate_ids",
            "malformed_lines",
            "input_tokens",
            "output_tokens",
        )
    }
    counts["completions"] = summary.spans_built
    if link_warning:
        counts["trace_link_warning"] = link_warning
    return counts


def _finish(summary: Summary, report: DeliveryReport, started: float) -> None:
    summary.spans_exported = report.exported
    summary.spans_failed = summary.spans_built - report.exported
    summary.duration_ms = int((time.monotonic() - started) * 1000)
    summary.failure_reasons = list(report.reasons)
    if summary.spans_failed:
        logger.error(
            "%d of %d spans not delivered: %s",
            summary.spans_failed,
            summary.spans_built,
            "; ".join(report.reasons) or "unknown",
        )
