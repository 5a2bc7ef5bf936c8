"""The benchmark: batchtrace against the seed's ``log_batch_results``, shape by shape, in one run.

``make bench`` (``BENCH_ARGS="--shapes ascii --repeat 1"`` for a quick one; ``--help``). For each
shape of batch users have (:data:`tests.support.batches.SHAPES`: ASCII and multilingual text,
escaped and raw UTF-8 JSON, short and long conversations, tool-heavy requests, large completions,
many errors) and each size, it generates the batch, then times whole processes, in turn and
``--repeat`` times, against one OTLP receiver in a process of its own that reads each request
fully and answers at once:

- ``cli``: ``batchtrace replay`` on input, output and error files;
- ``handler``: the Lambda handler reading the batch from a local S3 API (moto, its own process);
- ``seed``: respan-ai 4.2.4's ``log_batch_results`` on input, output and the error lines it can
  take (it crashes on ``response: null``), queue raised so it delivers everything; where
  respan-ai is not installed, a naive in-memory baseline on the stock OTel pipeline stands in.

Each ratio to the seed is taken within one repeat (the three runs follow each other, so a busy
moment on a shared machine weighs on all three) and the median over repeats is reported, with
median wall times, CPU seconds of the process tree, peak memory of the process tree (PSS), spans
delivered, and where batchtrace's time went. ``--growth`` sizes show memory staying flat.
``--seed-receivers`` times the seed against receivers that answer at different speeds, which is
why its time depends on the receiver (see :func:`seed_receivers`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tests.bench.process_stats import ProcessRun, run_measured
from tests.bench.receiver_process import ReceiverProcess
from tests.support.batches import SHAPES, BatchFiles, large_batch
from tests.support.moto_s3 import MotoServer
from tests.support.otlp_receiver import OtlpReceiver

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_DIR = ROOT / "functions" / "log_batch_results"
BENCH = Path(__file__).resolve().parent
BUCKET = "batchtrace-bench"
RUNNERS = ("cli", "handler", "seed")
#: What issue #13 asks of each shape at 50,000 requests, against the seed in the same run.
TARGET_RATIO = {"cli": 5.0, "handler": 4.0}
TARGET_PSS_MB = {"cli": 150, "handler": 250}


class Receiver(Protocol):
    @property
    def endpoint(self) -> str: ...

    @property
    def base_url(self) -> str: ...

    @property
    def span_count(self) -> int: ...


@dataclass(frozen=True)
class Row:
    shape: str
    size: int
    runner: str
    wall_s: float
    cpu_s: float
    peak_mb: float
    peak_rss_mb: float
    delivered: int
    expected: int
    stages: dict[str, int] = field(default_factory=dict)


@dataclass
class Setup:
    """What every measurement needs: the receiver, S3, the seed's interpreter, the settings."""

    receiver: Receiver
    moto: MotoServer | None
    seed_python: Path | None
    rows: list[Row] = field(default_factory=list)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AWS_", "BATCHTRACE_"))}
    env.update(extra)
    return env


def machine() -> str:
    """The CPU model (``lscpu``), the cores, the OS and Python: the line every table is quoted with."""
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    system = f"{platform.system()} {platform.release()}"
    return f"{model}, {os.cpu_count()} cores, {system}, Python {platform.python_version()}"


def _measure(setup: Setup, key: tuple[str, int, str], cmd: list[str], env: dict[str, str], expected: int) -> Row:
    shape, size, runner = key
    before = setup.receiver.span_count
    cpu_before = os.times()
    run: ProcessRun = run_measured(cmd, env, timeout_s=1800, cwd=str(ROOT))
    cpu_after = os.times()
    if run.returncode != 0:
        print(f"  {runner} exited {run.returncode}: {run.stderr.strip()[-600:]}", file=sys.stderr)
    time.sleep(0.2)  # the last answer may reach the runner before the receiver has counted it
    delivered = setup.receiver.span_count - before
    cpu = _children_cpu(cpu_after) - _children_cpu(cpu_before)
    stages: dict[str, int] = {}
    if runner != "seed":
        with contextlib.suppress(json.JSONDecodeError):
            stages = json.loads(run.stdout).get("stage_ms", {})
    row = Row(shape, size, runner, run.wall_s, cpu, run.peak_mb, run.peak_rss_mb, delivered, expected, stages)
    print(
        f"  {runner:8s} {row.wall_s:6.2f} s  CPU {cpu:6.2f} s  PSS {row.peak_mb:5.0f} MB  RSS {row.peak_rss_mb:5.0f} MB"
        f"  {delivered:>6d}/{expected} spans",
        flush=True,
    )
    setup.rows.append(row)
    return row


def _seed_expected(batch: BatchFiles) -> int:
    """The seed's spans: one per output line and per error line with a response, and its batch span."""
    with batch.errors.open("rb") as fh:
        answered = sum(1 for line in fh if line.strip() and json.loads(line).get("response") is not None)
    with batch.output.open("rb") as fh:
        return sum(1 for line in fh if line.strip()) + answered + 1


def seed_command(setup: Setup, receiver: Receiver, batch: BatchFiles) -> tuple[list[str], dict[str, str]]:
    if setup.seed_python is None:
        cmd = [sys.executable, "-m", "tests.bench.naive_baseline", receiver.endpoint]
        return [*cmd, str(batch.input), str(batch.output)], _env()
    cmd = [str(setup.seed_python), str(BENCH / "seed_baseline.py"), f"{receiver.base_url}/api"]
    cmd += [str(batch.input), str(batch.output), str(batch.errors)]
    return cmd, _env(OTEL_BSP_MAX_QUEUE_SIZE=str(2 * batch.requests + 10))


@contextlib.contextmanager
def _uploaded(setup: Setup, batch: BatchFiles, folder: str) -> Iterator[str | None]:
    """The batch in S3 under ``folder`` (output last, as it arrives), removed afterwards; its output key."""
    if setup.moto is None:
        yield None
        return
    s3 = setup.moto.client("s3")
    keys = [f"{folder}/{path.name}" for path in (batch.input, batch.errors, batch.output)]
    for path, key in zip((batch.input, batch.errors, batch.output), keys, strict=True):
        s3.upload_file(str(path), BUCKET, key)
    try:
        yield keys[-1]
    finally:
        for key in keys:
            s3.delete_object(Bucket=BUCKET, Key=key)


def measure_batch(setup: Setup, shape: str, size: int, batch: BatchFiles, repeat: int) -> None:
    """Every runner on one batch, ``repeat`` times in turn."""
    label = f"bench-{shape}-{size}"
    with _uploaded(setup, batch, f"batches/{label}") as output_key:
        for rep in range(repeat):
            print(f" repeat {rep + 1}/{repeat}", flush=True)
            otel = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": setup.receiver.endpoint}
            cli = [str(Path(sys.executable).with_name("batchtrace")), "replay", *batch.cli_args(), "--batch-id", label]
            _measure(setup, (shape, size, "cli"), cli, _env(**otel), batch.requests + 1)
            if setup.moto is not None and output_key is not None:
                env = _env(**otel, **setup.moto.env(), PYTHONPATH=str(FUNCTION_DIR))
                env.update(POWERTOOLS_LOG_LEVEL="WARNING", POWERTOOLS_METRICS_DISABLED="true")
                cmd = [sys.executable, "-m", "tests.bench.invoke_handler", BUCKET, output_key]
                _measure(setup, (shape, size, "handler"), cmd, env, batch.requests + 1)
            cmd, env = seed_command(setup, setup.receiver, batch)
            _measure(setup, (shape, size, "seed"), cmd, env, _seed_expected(batch))


# --------------------------------------------------------------------------- why the seed depends on the receiver


def seed_receivers(setup: Setup, batch: BatchFiles, repeat: int) -> None:
    """The seed against four receivers: how long each takes to answer shows in the seed's time.

    The seed exports from one thread, synchronously: a request of 512 spans (2 MB of JSON) is
    serialised, posted, and the next waits for the answer; its final flush waits for them all.
    So the receiver's time to answer each of its ~100 requests adds to its wall time, while its
    CPU time stays the same. The largest such time is not the receiver's work but TCP: a server
    that writes its answer in two sends (headers, then body) with Nagle's algorithm on, as
    Python's ``http.server`` does by default, holds the body until the client acknowledges the
    headers, and Linux delays that acknowledgement by ~40 ms: 4 s over the seed's ~100 requests.
    batchtrace's workers send bounded chunks as well, but the main process keeps reading while
    they wait.
    """
    print("\nthe seed against four receivers (median wall s / CPU s of the seed's process):")
    labels = (
        "reads each request and answers at once (its own process)",
        "parses each request in full before answering, as a collector does (its own process)",
        "reads and answers in the benchmark's process, beside the thread sampling memory",
        "reads and answers at once, but in two sends with Nagle's algorithm on (http.server's default)",
    )
    with (
        ReceiverProcess(parse_bodies=True) as parsing,
        OtlpReceiver(count_only=True, max_requests=10_000_000) as inner,
        ReceiverProcess(nagle=True) as nagle,
    ):
        for label, receiver in zip(labels, (setup.receiver, parsing, inner, nagle), strict=True):
            walls, cpus = [], []
            for _ in range(repeat):
                cmd, env = seed_command(setup, receiver, batch)
                cpu_before = os.times()
                run = run_measured(cmd, env, timeout_s=1800, cwd=str(ROOT))
                cpu_after = os.times()
                walls.append(run.wall_s)
                cpus.append(_children_cpu(cpu_after) - _children_cpu(cpu_before))
            print(f"  {statistics.median(walls):6.2f} / {statistics.median(cpus):5.2f}  {label}", flush=True)


def _children_cpu(times: os.times_result) -> float:
    return times.children_user + times.children_system


# --------------------------------------------------------------------------- the report


def _median(rows: list[Row], attr: str) -> float:
    return statistics.median(getattr(row, attr) for row in rows)


def _ratio(rows: list[Row], runner: str) -> float | None:
    """Median over repeats of seed time / runner time, each pair from the same repeat."""
    mine = [row for row in rows if row.runner == runner]
    seed = [row for row in rows if row.runner == "seed"]
    if not mine or not seed:
        return None
    return statistics.median(s.wall_s / m.wall_s for m, s in zip(mine, seed, strict=False))


def _delivered(rows: list[Row]) -> str:
    worst = min(rows, key=lambda row: row.delivered - row.expected)
    return f"{worst.delivered}/{worst.expected}"


def _by_runner(rows: list[Row], key: tuple[str, int]) -> dict[str, list[Row]]:
    """One batch's rows by runner (runners that did not run are left out)."""
    mine = [row for row in rows if (row.shape, row.size) == key]
    by = {runner: [row for row in mine if row.runner == runner] for runner in RUNNERS}
    return {runner: found for runner, found in by.items() if found}


def _ratio_cell(rows: list[Row], runner: str) -> str:
    ratio = _ratio(rows, runner)
    return f"{ratio:.1f}x" if ratio is not None else ""


def _cells(by: dict[str, list[Row]]) -> list[str]:
    everyone = [row for found in by.values() for row in found]
    walls = [f"{_median(by[r], 'wall_s'):.2f}" if r in by else "" for r in RUNNERS]
    peaks = [f"{max(row.peak_mb for row in by[r]):.0f}" if r in by else "" for r in RUNNERS]
    ratios = [_ratio_cell(everyone, runner) for runner in TARGET_RATIO]
    return [*walls, *ratios, *peaks, ", ".join(_delivered(found) for found in by.values())]


def table(rows: list[Row], inputs: dict[tuple[str, int], float]) -> list[str]:
    """The per-shape table (markdown): median times, ratios to the seed, peak memory, spans."""
    lines = [
        "| shape | requests | input MB | cli s | handler s | seed s | cli vs seed | handler vs seed "
        "| cli PSS MB | handler PSS MB | seed PSS MB | spans delivered (cli, handler, seed) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for (shape, size), input_mb in inputs.items():
        cells = [shape, str(size), f"{input_mb:.0f}", *_cells(_by_runner(rows, (shape, size)))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _verdict(by: dict[str, list[Row]], runner: str) -> str | None:
    if runner not in by or "seed" not in by:
        return None
    ratio = _ratio(by[runner] + by["seed"], runner)
    peak = max(row.peak_mb for row in by[runner])
    target = TARGET_RATIO[runner]
    met = ratio is not None and ratio >= target and peak <= TARGET_PSS_MB[runner]
    return f"{runner} {ratio or 0:.1f}x (>= {target:.0f}x), {peak:.0f} MB: {'met' if met else 'NOT met'}"


def verdicts(rows: list[Row], inputs: dict[tuple[str, int], float]) -> list[str]:
    """Which of issue #13's targets each shape meets (at its largest size)."""
    largest = max(size for _, size in inputs)
    out = []
    for shape, size in (key for key in inputs if key[1] == largest):
        by = _by_runner(rows, (shape, size))
        notes = [note for runner in TARGET_RATIO if (note := _verdict(by, runner))]
        out.append(f"  {shape}: " + "; ".join(notes))
    return out


def _stage_line(rows: list[Row]) -> str:
    stages = {name: statistics.median(row.stages.get(name, 0) for row in rows) for name in rows[0].stages}
    return ", ".join(f"{name} {value:.0f}" for name, value in stages.items())


def report(rows: list[Row], inputs: dict[tuple[str, int], float]) -> None:
    print("\n" + "\n".join(table(rows, inputs)))
    print("\ntargets at the largest size (median ratio to the seed; peak PSS):")
    print("\n".join(verdicts(rows, inputs)))
    print("\nwhere the CLI's time went (median ms; build, encode, send summed over worker processes):")
    for shape, size in inputs:
        cli = [row for row in _by_runner(rows, (shape, size)).get("cli", []) if row.stages]
        if cli:
            print(f"  {shape} {size}: {_stage_line(cli)}")
    print("\nCPU seconds of each process tree (median):")
    for shape, size in inputs:
        by = _by_runner(rows, (shape, size))
        print(f"  {shape} {size}: " + ", ".join(f"{r} {_median(found, 'cpu_s'):.2f}" for r, found in by.items()))


# --------------------------------------------------------------------------- main


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="all", help=f"comma-separated, of: {', '.join(SHAPES)} (default all)")
    parser.add_argument("--sizes", default="50000", help="comma-separated request counts, every shape")
    parser.add_argument("--growth", default="5000,20000", help="smaller sizes for the first shape only (flat memory)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each runner per batch (medians reported)")
    parser.add_argument("--content-bytes", type=int, default=3000, help="prompt text per request, UTF-8 bytes")
    parser.add_argument("--seed-python", default=str(ROOT / ".venv-seed" / "bin" / "python"))
    parser.add_argument("--skip-handler", action="store_true")
    parser.add_argument("--seed-receivers", action="store_true", help="also time the seed against four receivers")
    parser.add_argument("--workdir", type=Path, default=None, help="keep generated batches here")
    return parser.parse_args(argv)


def _numbers(text: str | None) -> list[int]:
    return [int(part) for part in (text or "").split(",") if part.strip()]


def _plan(args: argparse.Namespace) -> list[tuple[str, int]]:
    """``(shape, size)`` in the order measured: the first shape's growth sizes, then every shape."""
    shapes = list(SHAPES) if args.shapes == "all" else [s.strip() for s in args.shapes.split(",")]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        raise SystemExit(f"unknown shape(s) {', '.join(unknown)}; known: {', '.join(SHAPES)}")
    sizes = _numbers(args.sizes)
    growth = [(shapes[0], size) for size in _numbers(args.growth) if size not in sizes]
    return growth + [(shape, size) for shape in shapes for size in sizes]


def _run_plan(
    plan: list[tuple[str, int]], args: argparse.Namespace, setup: Setup, workdir: Path
) -> dict[tuple[str, int], float]:
    """Generate and measure every batch of the plan; the input size of each, in MB."""
    inputs: dict[tuple[str, int], float] = {}
    for shape, size in plan:
        batch = large_batch(workdir / shape / str(size), size, args.content_bytes, shape=shape)
        inputs[shape, size] = batch.input.stat().st_size / (1 << 20)
        print(f"\n{shape}, {size} requests: input {inputs[shape, size]:.0f} MB, {batch.results} results", flush=True)
        measure_batch(setup, shape, size, batch, args.repeat)
        if args.seed_receivers and (shape, size) == plan[-1]:
            seed_receivers(setup, batch, args.repeat)
        if args.workdir is None:
            shutil.rmtree(workdir / shape / str(size), ignore_errors=True)
    return inputs


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    plan = _plan(args)  # unknown shapes fail before anything starts
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="batchtrace-bench-"))
    seed_python = Path(args.seed_python) if Path(args.seed_python).exists() else None
    print(f"machine: {machine()}")
    print(f"baseline: {'respan-ai 4.2.4 log_batch_results' if seed_python else 'naive in-memory OTel pipeline'}")
    # moto in its own process, so serving 200 MB does not share the runners' interpreter.
    moto = None if args.skip_handler else MotoServer(own_process=True).start()
    try:
        with ReceiverProcess() as receiver:
            setup = Setup(receiver, moto, seed_python)
            if moto is not None:
                moto.client("s3").create_bucket(Bucket=BUCKET)
            inputs = _run_plan(plan, args, setup, workdir)
    finally:
        if moto is not None:
            moto.stop()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    report(setup.rows, inputs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
