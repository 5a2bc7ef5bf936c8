"""Memory stays flat as the batch grows: 10x the requests must not mean 10x the memory.

The CLI runs as a real process (with its forked span workers) against a counting receiver;
its whole process tree's peak memory (PSS) is sampled from /proc. Holding the input (68 MB at 20,000
requests) or the spans would show up here as growth far beyond the index's few MB.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bench.process_stats import run_measured
from tests.support.batches import large_batch
from tests.support.otlp_receiver import OtlpReceiver

BATCHTRACE = str(Path(sys.executable).with_name("batchtrace"))

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def counting_receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver(count_only=True, max_requests=100_000) as rx:
        yield rx


def _peak_memory_mb(rx: OtlpReceiver, batch_dir: Path, requests: int, workers: str) -> float:
    batch = large_batch(batch_dir, requests, content_bytes=3400)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "BATCHTRACE_"))}
    env.update(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=rx.endpoint, BATCHTRACE_WORKERS=workers)
    before = rx.span_count
    cmd = [BATCHTRACE, "replay", *batch.cli_args(), "--batch-id", f"memory-{requests}"]
    # Sampled every 2 ms: the 2,000-request run lasts a fraction of a second.
    run = run_measured(cmd, env, timeout_s=240, interval_s=0.002)
    assert run.returncode == 0, run.stderr[-2000:]
    assert rx.span_count - before == requests + 1, "every request's span and batch_results arrive"
    return run.peak_mb


@pytest.mark.parametrize("workers", ["0", "2"])
def test_peak_memory_does_not_grow_with_the_batch(
    counting_receiver: OtlpReceiver, tmp_path: Path, workers: str
) -> None:
    small = _peak_memory_mb(counting_receiver, tmp_path / "small", 2_000, workers)
    large = _peak_memory_mb(counting_receiver, tmp_path / "large", 20_000, workers)
    # Allowed: the index, ~0.5 KB per extra request at most (it is ~0.2 KB), and 4 MB of noise.
    # Holding the input would add its 61 MB; holding the spans, far more.
    allowance_mb = 18_000 * 512 / (1 << 20) + 4
    assert large - small <= allowance_mb, f"peak memory grew from {small:.0f} MB to {large:.0f} MB"
