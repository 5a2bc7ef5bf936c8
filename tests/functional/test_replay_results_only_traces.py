"""Two batches replayed from their output files alone are two traces, not one.

Bedrock and Vertex AI output files carry their requests, so ``batchtrace replay --results FILE``
needs nothing else. With no batch id and no trace id, the trace id is derived from the batch
(README, "Submitting a batch"). Today the batch key is the digest of the *input* file, which is
empty here, so every such replay derives the same trace id and the same ``batch_results`` span
id: in a backend, the second job's spans join the first job's trace (Phoenix files them under the
first job's project) and one of the two ``batch_results`` spans overwrites the other.
tests/e2e/test_phoenix.py names its traces to stay clear of this until it is fixed.
"""

from __future__ import annotations

import pytest

from tests.support.cli import replay
from tests.support.fixtures import FORMATS
from tests.support.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.timeout(60)

BEDROCK = FORMATS / "bedrock"


def test_two_bedrock_jobs_from_output_alone_are_two_traces(receiver: OtlpReceiver) -> None:
    _, nova = replay("--results", BEDROCK / "nova.jsonl.out")
    _, llama = replay("--results", BEDROCK / "llama.jsonl.out")
    assert nova["trace_id"] != llama["trace_id"]
    batch_spans = {(s.trace_id, s.span_id) for s in receiver.spans if s.name == "batch_results"}
    assert len(batch_spans) == 2


def test_the_same_output_file_replayed_twice_is_the_same_trace(receiver: OtlpReceiver) -> None:
    """Whatever the fix, a rerun of one job must re-send identical ids (idempotent redelivery)."""
    _, first = replay("--results", BEDROCK / "nova.jsonl.out")
    _, again = replay("--results", BEDROCK / "nova.jsonl.out")
    assert first["trace_id"] == again["trace_id"]
    ids = [(s.trace_id, s.span_id) for s in receiver.spans]
    assert len(ids) == 2 * first["spans_exported"]
    assert len(set(ids)) == first["spans_exported"]
