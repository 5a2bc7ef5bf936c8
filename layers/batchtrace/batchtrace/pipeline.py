"""One batch, end to end: index the input, stream the results, match, build, deliver, count.

This is the core every entry point calls (library, CLI, Lambda handler). It takes open
streams, not paths or S3 keys, so where the bytes come from is the caller's business, and it
returns the :class:`Summary` whatever happened; deciding what a failure means (an exit code,
a raised error) is the caller's business too.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource

from batchtrace.delivery import DeliveryPolicy, DeliveryReport, OtlpSender
from batchtrace.errors import InvalidTraceContextError
from batchtrace.genai_attributes import ContentPolicy
from batchtrace.jsonl import MalformedLines, Readable, iter_raw_lines, parse_object
from batchtrace.openai_format import parse_result
from batchtrace.otlp_config import OtlpConfig
from batchtrace.request_index import RequestIndex, request_from_line
from batchtrace.span_workers import ChunkWorker, ForkPool, InlinePool, WorkItem
from batchtrace.spans import BatchTimes, SpanFactory
from batchtrace.summary import Summary
from batchtrace.trace_link import (
    TraceLink,
    active_span_ids,
    parse_span_id,
    parse_trace_id,
    parse_traceparent,
    resolve_link,
)

logger = logging.getLogger(__name__)

#: Below this many requests, forking workers costs more than it saves.
PARALLEL_MIN_REQUESTS = 2_000
MAX_AUTO_WORKERS = 4
LAMBDA_MB_PER_VCPU = 1_769


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


def _resolve(hint: TraceHint, batch_key: str) -> tuple[TraceLink, str | None]:
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


def usable_cores(env: Mapping[str, str] | None = None) -> int:
    """Cores this process may really use, which is often fewer than ``os.cpu_count()``.

    Lambda shows two CPUs at any memory size but grants CPU time in proportion to memory (one
    vCPU per 1,769 MB); containers cap it with a cgroup quota; both are taken into account.
    """
    env = os.environ if env is None else env
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, round(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    memory = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    if memory.isdigit():
        cores = min(cores, max(1, int(memory) // LAMBDA_MB_PER_VCPU))
    return max(cores, 1)


def _auto_workers(requests: int) -> int:
    """Worker processes for a batch: ``BATCHTRACE_WORKERS``, else one per usable core for big batches."""
    configured = os.environ.get("BATCHTRACE_WORKERS", "").strip()
    if configured.isdigit():
        return int(configured)
    cores = usable_cores()
    return min(cores, MAX_AUTO_WORKERS) if cores > 1 and requests >= PARALLEL_MIN_REQUESTS else 0


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
    resolved = _resolve(hint, batch_id) if batch_id else None
    if resolved and on_trace:
        on_trace(batch_id, resolved[0].trace_id_hex)
    stage = time.perf_counter()
    with RequestIndex.from_stream(input_stream, input_name, digest=batch_id is None) as index:
        summary.stage_ms["read_input"] = _ms_since(stage)
        summary.requests = index.requests
        summary.duplicate_ids = index.duplicate_ids
        if resolved is None:
            resolved = _resolve(hint, f"input:{index.content_digest}")
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
        processes = _auto_workers(index.requests) if workers is None else workers

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
