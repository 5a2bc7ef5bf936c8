"""One batch through the stages: plan, read and match, extract and write (in the span workers), send, tally.

This is the core every entry point calls (library, CLI, Lambda handlers). It takes open
streams, not paths or S3 keys, so where the bytes come from is the caller's business, and it
returns the :class:`Summary` whatever happened to delivery; deciding what a failure means (an
exit code, a raised error) is the caller's business too.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from batchtrace.lifecycle import BatchLifecycle, Reconciliation, check_counts
from batchtrace.plan import EMPTY_INPUT, BatchPlan, FormatChoice, batch_id_of, peek_head
from batchtrace.pricing import prepare_prices
from batchtrace.read.jsonl import Readable
from batchtrace.read.match import Matcher, WorkItem
from batchtrace.read.request_index import RequestIndex
from batchtrace.send.delivery import OtlpSender
from batchtrace.send.metrics import send_run_metrics
from batchtrace.send.workers import ChunkWorker, ForkPool, InlinePool, may_fork, worker_count
from batchtrace.tally import Summary, Tally
from batchtrace.trace_link import TraceHint, TraceLink, resolve_hint
from batchtrace.write.spans import SpanFactory

logger = logging.getLogger(__name__)

OnTrace = Callable[[str | None, str], None]


@dataclass(slots=True)
class _Chunker:
    """Cuts work items into chunks bounded by count and (estimated) encoded size.

    The pool is made on the first chunk, so the first result line has settled the format
    (:meth:`FormatChoice.refine`) before any worker is forked with it.
    """

    make_pool: Callable[[], InlinePool | ForkPool]
    max_items: int
    max_bytes: int
    pool: InlinePool | ForkPool | None = None
    items: list[WorkItem] = field(default_factory=list)
    size: int = 0

    def add(self, item: WorkItem) -> None:
        self.items.append(item)
        # Content is carried by two attribute sets, so a span is about twice its raw lines.
        request_length = RequestIndex.length(item[0]) if item[0] is not None else 0
        self.size += 2 * (request_length + len(item[1] or b"")) + 400
        if len(self.items) >= self.max_items or self.size >= self.max_bytes:
            self.flush()

    def flush(self) -> None:
        if self.items:
            if self.pool is None:
                self.pool = self.make_pool()
            self.pool.submit(self.items)
            self.items, self.size = [], 0

    def close(self) -> list[Tally]:
        self.flush()
        return self.pool.close() if self.pool is not None else []


def _index(plan: BatchPlan, stream: Readable, tally: Tally) -> RequestIndex:
    """Read stage, first half: settle the format from the input and index its requests."""
    choice = plan.format
    stream = choice.detect_in(stream, plan.input_name, request=True)

    def request_id(obj: dict[str, Any], line_no: int) -> tuple[str | None, str]:
        adapter = choice.current
        custom_id = adapter.request_id(obj)
        return custom_id, "" if custom_id else f"not a request line of the {adapter.name} format"

    if choice.adapter is not None and choice.adapter.self_contained:
        stream = EMPTY_INPUT
    index = RequestIndex.from_stream(
        stream,
        request_id,
        plan.input_name,
        digest=plan.batch_id is None,
        parallel=may_fork(plan.workers),
        meanwhile=prepare_prices,  # once a run, before any worker forks (BATCHTRACE_PRICES_UPDATE)
    )
    tally.requests, tally.duplicate_ids = index.requests, index.duplicate_ids
    return index


def _batch_key(plan: BatchPlan, index: RequestIndex, results: list[tuple[str, Readable]]) -> str:
    """What seeds the batch's ids: its id, else a digest of its input, else of its first results.

    A results-only file (Bedrock, Vertex AI) replayed without a batch id gets a trace of its own,
    the same one on every rerun of the same file.
    """
    if plan.batch_id:
        return plan.batch_id
    if index.requests or not results:
        return f"input:{index.content_digest}"
    name, stream = results[0]
    stream, head = peek_head(stream)
    results[0] = (name, stream)
    return f"results:{hashlib.blake2b(head, digest_size=16).hexdigest()}"


def _link(plan: BatchPlan, key: str, on_trace: OnTrace | None) -> tuple[TraceLink, str | None]:
    link, warning = resolve_hint(plan.hint, key)
    if on_trace is not None:
        on_trace(plan.batch_id, link.trace_id_hex)
    return link, warning


def _deliver_completions(
    plan: BatchPlan, index: RequestIndex, factory: SpanFactory, results: Sequence[tuple[str, Readable]], tally: Tally
) -> None:
    """Match, then extract, write and send chunk by chunk (in forked workers for large batches)."""
    processes = worker_count(index.requests) if plan.workers is None else plan.workers

    def make_worker() -> ChunkWorker:
        return ChunkWorker(
            plan.format.current,
            factory,
            OtlpSender(plan.otlp, plan.delivery),
            index.read,
            plan.content,
            plan.model,
            input_name=index.source_name,
        )

    def make_pool() -> InlinePool | ForkPool:
        return ForkPool(make_worker, processes) if processes > 0 else InlinePool(make_worker())

    chunker = _Chunker(make_pool, plan.delivery.max_spans_per_request, plan.delivery.max_request_bytes // 2)
    matcher = Matcher(index, plan.format, tally)
    stage = time.perf_counter()
    try:
        for item in matcher.items(results):
            chunker.add(item)
    finally:
        for chunk in chunker.close():
            tally.merge(chunk)
        matcher.count_malformed()
        tally.add_seconds("read_results_and_match", time.perf_counter() - stage)


def batch_counts(tally: Tally, link_warning: str | None) -> dict[str, Any]:
    """The ``batch_results`` span's counts, from the tally."""
    names = ("requests", "results", "errors", "expired", "no_result", "orphan_results", "duplicate_ids")
    counts: dict[str, Any] = {name: getattr(tally, name) for name in names}
    counts["malformed_lines"] = tally.malformed_lines
    counts["input_tokens"], counts["output_tokens"] = tally.input_tokens, tally.output_tokens
    counts["completions"] = tally.spans_built
    counts.update({name: value for name, value in tally.cost_totals().items() if value is not None})
    if link_warning:
        counts["trace_link_warning"] = link_warning
    return counts


def _deliver_batch_span(
    plan: BatchPlan, factory: SpanFactory, tally: Tally, link_warning: str | None
) -> Reconciliation | None:
    """Send ``batch_results``; the reconciliation of the provider's counts, which goes on it and in the summary."""
    reconciliation = check_counts(plan.lifecycle, tally, plan.batch_id)
    window = factory.batch_window(tally.earliest_ns, tally.latest_ns)
    span = factory.batch_span(batch_counts(tally, link_warning), window, reconciliation=reconciliation)
    plan.timestamps.hint_if_old(span.start_time if span else tally.earliest_ns, factory.now_ns, plan.batch_id)
    if span is None:
        return reconciliation
    tally.spans_built += 1
    receiver_failing = tally.spans_failed > 0 and tally.spans_exported == 0
    OtlpSender(plan.otlp, plan.delivery, receiver_failing=receiver_failing).send([span], tally)
    return reconciliation


def execute(
    plan: BatchPlan,
    input_stream: Readable | None,
    result_streams: Sequence[tuple[str, Readable]],
    on_trace: OnTrace | None = None,
) -> Summary:
    """Run a planned batch; the summary whatever became of delivery (failures are counted in it)."""
    started = time.monotonic()
    tally = Tally()
    if plan.batch_id and on_trace is not None:
        on_trace(plan.batch_id, resolve_hint(plan.hint, plan.batch_id)[0].trace_id_hex)
    results = list(result_streams)
    stage = time.perf_counter()
    with _index(plan, input_stream or EMPTY_INPUT, tally) as index:
        tally.add_seconds("read_input", time.perf_counter() - stage)
        if plan.format.adapter is None and results:
            name, stream = results[0]
            results[0] = (name, plan.format.detect_in(stream, name, request=False))
        link, link_warning = _link(plan, _batch_key(plan, index, results), on_trace)
        factory = SpanFactory(
            link,
            batch_id=plan.batch_id,
            capture=plan.content.capture,
            writers=plan.writers,
            lifecycle=plan.lifecycle,
            resource=plan.resource,
            timestamps=plan.timestamps,
        )
        _deliver_completions(plan, index, factory, results, tally)
    reconciliation = _deliver_batch_span(plan, factory, tally, link_warning)
    summary = Summary.of(
        tally,
        batch_id=plan.batch_id,
        trace_id=link.trace_id_hex,
        provider=plan.format.adapter.provider if plan.format.adapter else None,
        duration_ms=int((time.monotonic() - started) * 1000),
        reconciliation=reconciliation.as_dict() if reconciliation else None,
    )
    if summary.spans_failed:
        logger.error("%s", summary.failure_reason())
    send_run_metrics(plan, tally, factory.resource, summary.duration_ms / 1000)  # best effort, never raises
    return summary


def run_batch(
    input_stream: Readable | None,
    result_streams: Sequence[tuple[str, Readable]],
    *,
    batch_id: str | None = None,
    batch: Mapping[str, Any] | BatchLifecycle | None = None,
    hint: TraceHint | None = None,
    provider: str | None = None,
    model: str | None = None,
    on_trace: OnTrace | None = None,
    **settings: Any,
) -> Summary:
    """Turn one batch into spans and deliver them; returns the summary (never raises on delivery).

    ``input_stream`` is the batch's input file (``None`` for formats whose results carry their
    requests); ``result_streams`` are ``(name, stream)`` pairs: the output file, then the error
    file if any. ``batch`` is the provider's batch object or job when known, of any provider, or
    its :class:`BatchLifecycle`: ``batch_results`` then runs from its creation to its final state
    with an event per timestamp, and its request counts are reconciled with the files (the
    summary's ``reconciliation``; a disagreement is a warning). ``provider`` names the format
    (detected from the lines otherwise) and ``model`` the model where the lines name none.
    ``settings`` are :class:`BatchPlan` fields (``otlp``, ``delivery``, ``content``, ``writers``,
    ``timestamps``, ``resource``, ``workers``: the number of forked span processes, 0 for this
    process, ``None`` for ``BATCHTRACE_WORKERS`` or one per core on large batches; ``input_name``).
    ``on_trace`` is told the batch id and trace id as soon as the trace id is known, so a caller
    can put it on every log line.
    Raises :class:`InvalidTraceContextError` for an invalid strict hint and :class:`InputError`
    for a file of no known format, before sending anything.
    """
    given = {name: value for name, value in settings.items() if value is not None}
    plan = BatchPlan(
        batch_id=batch_id_of(batch_id, batch),
        batch=batch,
        hint=hint or TraceHint(),
        format=FormatChoice.named(provider),
        model=model,
        **given,
    )
    return execute(plan, input_stream, result_streams, on_trace)
