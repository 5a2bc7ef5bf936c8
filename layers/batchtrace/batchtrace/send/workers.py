"""Turning matched lines into delivered spans, chunk by chunk, on one or several cores.

The main process streams, matches and cuts chunks of raw lines; a :class:`ChunkWorker` parses,
builds, encodes and sends each chunk. With ``processes >= 1`` the workers are forked processes
fed through pipes (``multiprocessing`` queues need ``/dev/shm``, which Lambda lacks), so
building and encoding use every core while the main process keeps reading; with 0 they run
inline, which is what a library call inside someone else's process wants. Every chunk comes
back with its counts, so a worker that fails or dies still leaves no span unaccounted for.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection, wait
from pathlib import Path

import orjson
from opentelemetry.sdk.trace import ReadableSpan

from batchtrace.content import ContentPolicy
from batchtrace.extract.base import ExtractContext, FormatAdapter
from batchtrace.read.match import WorkItem
from batchtrace.read.request_index import parse_request
from batchtrace.send.delivery import OtlpSender
from batchtrace.tally import Tally
from batchtrace.write.cost import price_record
from batchtrace.write.spans import SpanFactory

logger = logging.getLogger(__name__)


class ChunkWorker:
    """Extracts, builds, encodes and sends chunks of work items (one instance per process).

    Each line is parsed here, once; a line no longer than the content limit skips truncation
    (a JSON string never decodes to more characters than its line has bytes).
    """

    def __init__(
        self,
        adapter: FormatAdapter,
        factory: SpanFactory,
        sender: OtlpSender,
        read_request: Callable[[int], bytes],
        content: ContentPolicy,
        model: str | None = None,
        *,
        input_name: str = "input",
    ) -> None:
        self.adapter = adapter
        self.input_name = input_name
        self.factory = factory
        self.sender = sender
        self.read_request = read_request
        self.max_length = content.max_length
        self._short = ExtractContext(cut=content.for_line(0).cutter(), model=model)
        self._long = ExtractContext(cut=content.cutter(), model=model)

    def build(self, item: WorkItem, tally: Tally) -> ReadableSpan | None:
        request_entry, result_line, custom_id, occurrence = item
        request_line = self.read_request(request_entry) if request_entry is not None else b""
        request = None
        if request_entry is not None:
            answered = result_line is not None
            request = parse_request(request_line, request_entry, self.input_name, answered, tally)
            if request is None and not answered:
                return None  # a malformed line, counted as such: no request, no result, no span
        result = orjson.loads(result_line) if result_line is not None else None
        longest = max(len(request_line), len(result_line or b""))
        ctx = self._short if longest <= self.max_length else self._long
        record = self.adapter.extract(custom_id, request, result, ctx)
        record.occurrence = occurrence
        # Priced once, at the provider's time for it, whatever the span's placement: the span and
        # the tally read the same figure.
        at_ns = self.factory.time_of(record)
        record.cost = price_record(record, at_ns)
        span = self.factory.completion(record)
        tally.count_record(record, at_ns)
        return span

    def __call__(self, items: list[WorkItem]) -> Tally:
        started = time.perf_counter()
        cpu_started = time.process_time()
        tally = Tally()
        spans = [span for item in items if (span := self.build(item, tally)) is not None]
        built = time.perf_counter()
        self.sender.send(spans, tally)
        encode = tally.seconds.get("encode", 0.0)
        tally.add_seconds("build", built - started)
        tally.add_seconds("send", time.perf_counter() - built - encode)
        tally.add_seconds("worker_cpu", time.process_time() - cpu_started)
        return tally


def _lost(spans: int, reason: str) -> Tally:
    tally = Tally()
    tally.lost(spans, reason)
    return tally


def _run_chunk(worker: Callable[[list[WorkItem]], Tally], items: list[WorkItem]) -> Tally:
    """``worker(items)``, or a chunk counted as lost if it raises: never lose the count."""
    try:
        return worker(items)
    except Exception as err:
        logger.exception("unexpected error while processing %d spans", len(items))
        return _lost(len(items), f"unexpected {type(err).__name__}")


class InlinePool:
    """Runs chunks in this process, one after the other."""

    def __init__(self, worker: Callable[[list[WorkItem]], Tally]) -> None:
        self._worker = worker
        self.outcomes: list[Tally] = []

    def submit(self, items: list[WorkItem]) -> None:
        self.outcomes.append(_run_chunk(self._worker, items))

    def close(self) -> list[Tally]:
        return self.outcomes


def _serve(conn: Connection, make_worker: Callable[[], Callable[[list[WorkItem]], Tally]]) -> None:
    """A worker process: chunks in, outcomes out, until it receives ``None``."""
    worker = make_worker()
    while True:
        items = conn.recv()
        if items is None:
            break
        conn.send(_run_chunk(worker, items))
    conn.close()


class ForkPool:
    """``processes`` forked workers, each with at most ``depth`` chunks outstanding.

    ``make_worker`` runs in the child after the fork, so each worker gets its own HTTP pool.
    """

    def __init__(
        self,
        make_worker: Callable[[], Callable[[list[WorkItem]], Tally]],
        processes: int,
        depth: int = 2,
    ) -> None:
        context = multiprocessing.get_context("fork")
        # Keep the parent's objects (the request index above all) out of the children's garbage
        # collector, so forked workers share those pages instead of copying them.
        gc.freeze()
        self.depth = depth
        self.outcomes: list[Tally] = []
        self._conns: list[Connection] = []
        self._procs: list[multiprocessing.process.BaseProcess] = []
        self._outstanding: list[deque[int]] = []
        #: Workers whose pipe broke: never chosen again, even while is_alive() still says True.
        self._dead: set[int] = set()
        for _ in range(processes):
            parent, child = context.Pipe(duplex=True)
            process = context.Process(target=_serve, args=(child, make_worker), daemon=True)
            process.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(process)
            self._outstanding.append(deque())
        gc.unfreeze()

    def _collect(self, index: int) -> None:
        conn, pending = self._conns[index], self._outstanding[index]
        try:
            self.outcomes.append(conn.recv())
            pending.popleft()
        except (EOFError, OSError):
            self._dead.add(index)
            lost = sum(pending)
            pending.clear()
            logger.error("a span worker died with %d spans in hand", lost)
            self.outcomes.append(_lost(lost, "span worker process died"))

    def _wait_any(self) -> None:
        busy = [conn for conn, pending in zip(self._conns, self._outstanding, strict=True) if pending]
        for conn in wait(busy):
            self._collect(self._conns.index(conn))  # type: ignore[arg-type]

    def submit(self, items: list[WorkItem]) -> None:
        """Hand ``items`` to the least busy live worker, waiting while every one is ``depth`` deep.

        When no worker is left alive the chunk is counted as lost, never raised out of the run.
        """
        while True:
            alive = [i for i, process in enumerate(self._procs) if i not in self._dead and process.is_alive()]
            if not alive:
                while any(self._outstanding):
                    self._wait_any()
                logger.error("no span worker process is alive; %d spans not sent", len(items))
                self.outcomes.append(_lost(len(items), "span worker process died"))
                return
            index = min(alive, key=lambda i: len(self._outstanding[i]))
            if len(self._outstanding[index]) < self.depth:
                break
            self._wait_any()
        try:
            self._conns[index].send(items)
            self._outstanding[index].append(len(items))
        except OSError:
            self._dead.add(index)
            self.outcomes.append(_lost(len(items), "span worker process died"))

    def close(self) -> list[Tally]:
        while any(self._outstanding):
            self._wait_any()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.send(None)
            conn.close()
        for process in self._procs:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
        return self.outcomes


#: Below this many requests, forking workers costs more than it saves.
PARALLEL_MIN_REQUESTS = 2_000
MAX_AUTO_WORKERS = 4
#: Lambda grants CPU in proportion to memory: one vCPU per 1,769 MB.
LAMBDA_MB_PER_VCPU = 1_769


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


def configured_workers() -> int | None:
    """``BATCHTRACE_WORKERS`` as a number of worker processes, or ``None`` when it does not name one."""
    configured = os.environ.get("BATCHTRACE_WORKERS", "").strip()
    return int(configured) if configured.isdigit() else None


def may_fork(workers: int | None) -> bool:
    """Whether a run with this ``workers`` setting may use processes besides its own (see :func:`worker_count`).

    Decided before the input is indexed, so that a large local input can be indexed on two cores.
    """
    if workers is None:
        workers = configured_workers()
    return workers > 0 if workers is not None else usable_cores() > 1


def worker_count(requests: int) -> int:
    """Worker processes for a batch: ``BATCHTRACE_WORKERS``, else one per usable core for big batches."""
    configured = configured_workers()
    if configured is not None:
        return configured
    cores = usable_cores()
    return min(cores, MAX_AUTO_WORKERS) if cores > 1 and requests >= PARALLEL_MIN_REQUESTS else 0
