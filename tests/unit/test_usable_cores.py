"""How many span workers a run forks: as many cores as it may really use, no more."""

from __future__ import annotations

import pytest
from batchtrace.send import workers as span_workers


def test_lambda_memory_caps_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lambda shows two CPUs at any size but grants one vCPU per 1,769 MB."""
    monkeypatch.setattr(span_workers.os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    assert span_workers.usable_cores({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}) == 1
    assert span_workers.usable_cores({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769"}) == 1
    assert span_workers.usable_cores({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3538"}) == 2
    assert span_workers.usable_cores({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "10240"}) == 2


def test_small_batches_and_single_cores_stay_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BATCHTRACE_WORKERS", raising=False)
    monkeypatch.setattr(span_workers, "usable_cores", lambda: 2)
    assert span_workers.worker_count(span_workers.PARALLEL_MIN_REQUESTS - 1) == 0
    assert span_workers.worker_count(50_000) == 2
    monkeypatch.setattr(span_workers, "usable_cores", lambda: 1)
    assert span_workers.worker_count(50_000) == 0


def test_the_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHTRACE_WORKERS", "3")
    assert span_workers.worker_count(10) == 3
    monkeypatch.setenv("BATCHTRACE_WORKERS", "0")
    assert span_workers.worker_count(50_000) == 0
