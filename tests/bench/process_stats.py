"""Wall time and peak memory of a whole process tree (the CLI forks span workers).

Peak memory is sampled from ``/proc`` every 20 ms and summed over the process and
its descendants, so forked workers count against the figure as they would against a Lambda's
memory limit. Two sums: the proportional set size (PSS), where a page shared copy-on-write by
a parent and its forked workers counts once, and RSS, which counts it once per process (an
upper bound).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")
#: Reading smaps_rollup walks page tables: sampled every 5 ms it stole a noticeable share of the
#: two cores from the runs it measured. 20 ms still sees every phase of a multi-second run.
SAMPLE_INTERVAL_S = 0.02


@dataclass(frozen=True)
class ProcessRun:
    returncode: int
    wall_s: float
    peak_mb: float
    peak_rss_mb: float
    stdout: str
    stderr: str


def _descendants(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                stack.extend(int(child) for child in task.read_text().split())
            except OSError:
                continue
    return found


def _pss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE


def _tree_memory_bytes(pid: int) -> tuple[int, int]:
    """(PSS, RSS) summed over the process tree."""
    pss = rss = 0
    for member in _descendants(pid):
        try:
            pss += _pss_bytes(member)
            rss += int(Path(f"/proc/{member}/statm").read_text().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            continue
    return pss, rss


def run_measured(
    cmd: list[str],
    env: dict[str, str],
    timeout_s: float,
    cwd: str | None = None,
    interval_s: float = SAMPLE_INTERVAL_S,
) -> ProcessRun:
    """Run ``cmd`` to completion, sampling the tree's memory every ``interval_s``.

    A short run needs a short interval, or its peak falls between two samples.
    """
    started = time.perf_counter()
    process = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = peak_rss = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_rss
        while not done.is_set():
            pss, rss = _tree_memory_bytes(process.pid)
            peak, peak_rss = max(peak, pss), max(peak_rss, rss)
            done.wait(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    wall = time.perf_counter() - started
    done.set()
    sampler.join()
    return ProcessRun(process.returncode, wall, peak / (1 << 20), peak_rss / (1 << 20), stdout, stderr)
