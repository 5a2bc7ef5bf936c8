"""The benchmark: batchtrace against the seed's ``log_batch_results`` on the same large batches.

``make bench`` (or ``python -m tests.bench.run --help``). For each size it generates a batch,
then times whole processes against one local OTLP receiver that only counts spans (so it
answers at once and does not measure itself):

- ``cli``: ``batchtrace replay`` on input, output and error files;
- ``handler``: the Lambda handler reading the batch from a local S3 API (moto, its own process);
- ``seed``: respan-ai 4.2.4's ``log_batch_results`` on input and output (it crashes on the error
  file's ``response: null`` lines), queue raised so it delivers everything; where respan-ai is
  not installed, a naive in-memory baseline on the stock OTel pipeline stands in.

It prints wall time, peak memory of the process tree (PSS), spans delivered, where batchtrace's time
went, the ratio to the baseline, and how time and memory grow with the batch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.bench.process_stats import ProcessRun, run_measured
from tests.support.batches import large_batch
from tests.support.moto_s3 import MotoServer
from tests.support.otlp_receiver import OtlpReceiver

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_DIR = ROOT / "functions" / "log_batch_results"
BENCH = Path(__file__).resolve().parent
BUCKET = "batchtrace-bench"


@dataclass(frozen=True)
class Row:
    size: int
    runner: str
    wall_s: float
    peak_mb: float
    peak_rss_mb: float
    delivered: int
    expected: int
    stages: dict[str, int]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AWS_", "BATCHTRACE_"))}
    env.update(extra)
    return env


def _measure(rx: OtlpReceiver, size: int, runner: str, cmd: list[str], env: dict[str, str], expected: int) -> Row:
    before = rx.span_count
    run: ProcessRun = run_measured(cmd, env, timeout_s=1800, cwd=str(ROOT))
    if run.returncode != 0:
        print(f"  {runner} exited {run.returncode}: {run.stderr.strip()[-600:]}", file=sys.stderr)
    time.sleep(0.2)
    delivered = rx.span_count - before
    stages: dict[str, int] = {}
    if runner != "seed":
        with contextlib.suppress(json.JSONDecodeError):
            stages = json.loads(run.stdout).get("stage_ms", {})
    row = Row(size, runner, run.wall_s, run.peak_mb, run.peak_rss_mb, delivered, expected, stages)
    print(
        f"  {runner:8s} {row.wall_s:7.2f} s  PSS {row.peak_mb:6.0f} MB  RSS {row.peak_rss_mb:6.0f} MB"
        f"  {delivered:>7d}/{expected} spans",
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="5000,20000,50000", help="comma-separated request counts")
    parser.add_argument(
        "--content-bytes", type=int, default=3600, help="prompt text per request (3,600: ~180 MB at 50,000)"
    )
    parser.add_argument("--seed-python", default=str(ROOT / ".venv-seed" / "bin" / "python"))
    parser.add_argument("--skip-handler", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None, help="keep generated batches here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="batchtrace-bench-"))
    seed_ok = Path(args.seed_python).exists()
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"baseline: {'respan-ai 4.2.4 log_batch_results' if seed_ok else 'naive in-memory OTel pipeline'}")
    rows: list[Row] = []
    # moto in its own process, so serving 200 MB does not share the runners' cores.
    moto = None if args.skip_handler else MotoServer(own_process=True).start()
    try:
        with OtlpReceiver(count_only=True, max_requests=10_000_000) as rx:
            for size in sizes:
                batch = large_batch(workdir / str(size), size, content_bytes=args.content_bytes)
                mb = batch.input.stat().st_size / (1 << 20)
                print(f"\n{size} requests, input {mb:.0f} MB, {batch.results} results", flush=True)
                expected = batch.requests + 1  # a span per request (result or none) + batch_results
                otel = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": rx.endpoint}
                cli = [str(Path(sys.executable).with_name("batchtrace")), "replay", *batch.cli_args()]
                cli += ["--batch-id", f"bench-{size}"]
                rows.append(_measure(rx, size, "cli", cli, _env(**otel), expected))
                if moto is not None:
                    s3 = moto.client("s3")
                    s3.create_bucket(Bucket=BUCKET)
                    folder = f"batches/bench-{size}"
                    for path in (batch.input, batch.errors, batch.output):
                        s3.upload_file(str(path), BUCKET, f"{folder}/{path.name}")
                    env = _env(**otel, **moto.env(), PYTHONPATH=str(FUNCTION_DIR))
                    env.update(POWERTOOLS_LOG_LEVEL="WARNING", POWERTOOLS_METRICS_DISABLED="true")
                    cmd = [sys.executable, "-m", "tests.bench.invoke_handler", BUCKET, f"{folder}/output.jsonl"]
                    rows.append(_measure(rx, size, "handler", cmd, env, expected))
                seed_expected = batch.results - sum(1 for _ in batch.errors.open("rb")) + 1
                if seed_ok:
                    cmd = [args.seed_python, str(BENCH / "seed_baseline.py"), f"{rx.base_url}/api"]
                    cmd += [str(batch.input), str(batch.output)]
                    env = _env(OTEL_BSP_MAX_QUEUE_SIZE=str(2 * size + 10))
                else:
                    cmd = [sys.executable, "-m", "tests.bench.naive_baseline", rx.endpoint]
                    cmd += [str(batch.input), str(batch.output)]
                    env = _env()
                rows.append(_measure(rx, size, "seed", cmd, env, seed_expected))
    finally:
        if moto is not None:
            moto.stop()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    _report(rows, sizes)
    return 0


def _report(rows: list[Row], sizes: list[int]) -> None:
    by = {(r.size, r.runner): r for r in rows}
    print("\n| requests | runner | wall s | peak PSS MB | peak RSS MB | spans delivered | vs seed |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for size in sizes:
        seed = by.get((size, "seed"))
        for runner in ("cli", "handler", "seed"):
            row = by.get((size, runner))
            if row is None:
                continue
            ratio = f"{seed.wall_s / row.wall_s:.1f}x faster" if seed and runner != "seed" else ""
            print(
                f"| {size} | {runner} | {row.wall_s:.2f} | {row.peak_mb:.0f} | {row.peak_rss_mb:.0f} |"
                f" {row.delivered}/{row.expected} | {ratio} |"
            )
    print("\nwhere the time went (cli, ms; build/encode/send summed over worker processes):")
    for size in sizes:
        row = by.get((size, "cli"))
        if row:
            print(f"  {size}: " + ", ".join(f"{k} {v}" for k, v in row.stages.items()))
    print("\ngrowth (cli): ms per 1,000 requests, and peak memory")
    for size in sizes:
        row = by.get((size, "cli"))
        if row:
            print(f"  {size:>6}: {1000 * row.wall_s / size * 1000:7.1f} ms/1k, {row.peak_mb:6.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
