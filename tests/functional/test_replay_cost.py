"""Cost at batch rates and span placement in time, through ``batchtrace replay`` and the real OTLP receiver.

A small gpt-4o-mini batch whose responses were created after genai-prices' OpenAI batch rates begin
(2026-10-14), plus one request to a model no price list knows and one expired request. Every expected
figure is computed here through ``genai_prices.calc_price`` directly (never copied from a price list),
so the test states what a user sees: each span shows what the batch was charged, half what realtime
would have cost; the ``batch_results`` span and the summary add them up; an unknown model is
unpriced, never free. With ``--timestamps processing`` the same spans sit at the time of the replay.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from genai_prices import Usage as LibUsage
from genai_prices import calc_price

from tests.functional.assertions import delivered
from tests.support.batches import completion_body, expired_line, request_line, success_line, usage
from tests.support.cli import assert_usage_error, replay, run_batchtrace
from tests.support.fixtures import by_id
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.timeout(60)

NS = 1_000_000_000
#: 2026-11-20 00:00 UTC and on: genai-prices has OpenAI batch rates from 2026-10-14.
CREATED = 1_795_132_800
MODEL, SNAPSHOT, UNKNOWN = "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "acme-llm-9000"
COST_KEYS = (
    "gen_ai.usage.cost",
    "llm.cost.prompt",
    "llm.cost.completion",
    "llm.cost.total",
    "batchtrace.cost.realtime",
    "batchtrace.cost.source",
)


@dataclass(frozen=True)
class Req:
    custom_id: str
    model: str
    prompt: int
    completion: int
    cached: int
    created: int


PRICED = (
    Req("plain-1", MODEL, 1_200, 300, 0, CREATED + 60),
    Req("plain-2", MODEL, 800, 45, 0, CREATED + 3_600),
    Req("cached-1", MODEL, 2_048, 120, 1_024, CREATED + 7_200),
)
UNPRICED = Req("mystery-1", UNKNOWN, 100, 10, 0, CREATED + 120)
EXPIRED_ID = "expired-1"


def _body(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "Classify this ticket."}]}


def _result(req: Req) -> dict[str, Any]:
    response_model = SNAPSHOT if req.model == MODEL else req.model
    message = {"role": "assistant", "content": "billing"}
    body = completion_body(
        f"chatcmpl-{req.custom_id}",
        req.created,
        response_model,
        message,
        "stop",
        usage(req.prompt, req.completion, req.cached),
    )
    return success_line(req.custom_id, f"batch_req_{req.custom_id}", f"req_{req.custom_id}", body)


def _jsonl(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    """``--requests --results --errors`` of the batch."""
    reqs = [*PRICED, UNPRICED]
    inputs = [request_line(r.custom_id, _body(r.model)) for r in reqs] + [request_line(EXPIRED_ID, _body(MODEL))]
    return [
        "--requests", str(_jsonl(tmp_path / "input.jsonl", inputs)),
        "--results", str(_jsonl(tmp_path / "output.jsonl", [_result(r) for r in reqs])),
        "--errors", str(_jsonl(tmp_path / "errors.jsonl", [expired_line(EXPIRED_ID, "batch_req_expired")])),
        "--batch-id", "batch_cost_0001",
    ]  # fmt: skip


def lib_price(req: Req, *, batch: bool) -> tuple[float, float, float]:
    """genai-prices' own (input, output, total) USD for the request, at the time it ran."""
    calc = calc_price(
        LibUsage(input_tokens=req.prompt, output_tokens=req.completion, cache_read_tokens=req.cached),
        req.model,
        provider_id="openai",
        genai_request_timestamp=datetime.fromtimestamp(req.created, UTC),
        price_context={"processing": "batch"} if batch else None,
    )
    return float(calc.input_price), float(calc.output_price), float(calc.total_price)


def replay_batch(
    receiver: OtlpReceiver, files: list[str], *extra: str
) -> tuple[dict[str, Any], list[ReceivedSpan], str]:
    result, summary = replay(*files, *extra, script=True)
    return summary, delivered(receiver, len(PRICED) + 3), result.stderr


def batch_span(spans: list[ReceivedSpan]) -> ReceivedSpan:
    [found] = [s for s in spans if s.name == "batch_results"]
    return found


def test_each_span_shows_the_batch_price_and_the_totals_add_up(receiver: OtlpReceiver, files: list[str]) -> None:
    summary, spans, stderr = replay_batch(receiver, files)
    completions = by_id(spans)
    for req in PRICED:
        attrs = completions[req.custom_id].attributes
        batch_in, batch_out, batch_total = lib_price(req, batch=True)
        realtime_total = lib_price(req, batch=False)[2]
        assert attrs["gen_ai.usage.cost"] == pytest.approx(batch_total, rel=1e-9), req
        assert attrs["llm.cost.total"] == pytest.approx(batch_total, rel=1e-9), req
        assert attrs["llm.cost.prompt"] == pytest.approx(batch_in, rel=1e-9), req
        assert attrs["llm.cost.completion"] == pytest.approx(batch_out, rel=1e-9), req
        assert attrs["batchtrace.cost.realtime"] == pytest.approx(realtime_total, rel=1e-9), req
        assert attrs["batchtrace.cost.source"] == "genai-prices", req
        if not req.cached:
            assert attrs["gen_ai.usage.cost"] == pytest.approx(realtime_total / 2, rel=1e-9), req
    for custom_id in (UNPRICED.custom_id, EXPIRED_ID):
        assert not set(COST_KEYS) & set(completions[custom_id].attributes), custom_id

    batch_usd = sum(lib_price(r, batch=True)[2] for r in PRICED)
    realtime_usd = sum(lib_price(r, batch=False)[2] for r in PRICED)
    shown = batch_span(spans).attributes
    assert summary["cost_usd"] == pytest.approx(batch_usd, rel=1e-9)
    assert summary["cost_realtime_usd"] == pytest.approx(realtime_usd, rel=1e-9)
    assert summary["saving_usd"] == pytest.approx(realtime_usd - batch_usd, rel=1e-9)
    assert summary["unpriced"] == 1
    assert shown["batchtrace.cost_usd"] == pytest.approx(batch_usd, rel=1e-9)
    assert shown["batchtrace.cost_realtime_usd"] == pytest.approx(realtime_usd, rel=1e-9)
    assert shown["batchtrace.saving_usd"] == pytest.approx(realtime_usd - batch_usd, rel=1e-9)
    assert shown["batchtrace.unpriced"] == 1
    assert not set(COST_KEYS) & set(shown), "the batch span must not add to a backend's per-span cost sums"

    # At the provider's times (the default), and a one-line hint since they are weeks old.
    for req in PRICED:
        assert completions[req.custom_id].start_ns == req.created * NS
    [hint] = [line for line in stderr.splitlines() if "--timestamps processing" in line]
    assert "BATCHTRACE_TIMESTAMPS=processing" in hint and "batch_cost_0001" in hint


def test_processing_timestamps_put_the_spans_at_replay_time(receiver: OtlpReceiver, files: list[str]) -> None:
    before = time.time_ns()
    summary, spans, stderr = replay_batch(receiver, files, "--timestamps", "processing")
    after = time.time_ns()
    for span in spans:
        assert before <= span.start_ns <= span.end_ns <= after, span.name
    completions = by_id(spans)
    for req in PRICED:
        attrs = completions[req.custom_id].attributes
        assert attrs["batchtrace.response.created"] == req.created  # the provider's time, kept
        # Still priced at the rate of the day it ran, not of the replay.
        assert attrs["gen_ai.usage.cost"] == pytest.approx(lib_price(req, batch=True)[2], rel=1e-9)
    shown = batch_span(spans).attributes
    assert shown["batchtrace.original_start"] == min(r.created for r in (*PRICED, UNPRICED))
    # The expired request has no time of its own, so the original window ends at processing time.
    assert max(r.created for r in PRICED) <= shown["batchtrace.original_end"] <= after // NS
    assert "--timestamps" not in stderr, "no hint once the spans are placed at processing time"
    assert summary["spans_failed"] == 0


def test_the_setting_comes_from_the_environment_too(
    receiver: OtlpReceiver, files: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHTRACE_TIMESTAMPS", "processing")
    monkeypatch.setenv("BATCHTRACE_COST_ATTRIBUTES", "false")
    before = time.time_ns()
    summary, spans, _ = replay_batch(receiver, files)
    assert all(span.start_ns >= before for span in spans)
    assert not any(set(COST_KEYS) & set(span.attributes) for span in spans)
    assert summary["cost_usd"] == pytest.approx(sum(lib_price(r, batch=True)[2] for r in PRICED), rel=1e-9)


def test_a_bad_timestamps_value_is_one_line(files: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert_usage_error(run_batchtrace("replay", *files, "--timestamps", "now", script=True), "--timestamps")
    monkeypatch.setenv("BATCHTRACE_TIMESTAMPS", "later")
    assert_usage_error(run_batchtrace("replay", *files, script=True), "BATCHTRACE_TIMESTAMPS", "later")
