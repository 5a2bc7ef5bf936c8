"""Cost on spans and in the tally, and where spans are placed in time.

Expected prices come from genai-prices itself (``calc_price``), never from a hand-written figure, so
the tests state what a user sees ("the span shows the batch rate", "an unknown model is unpriced,
not free") and keep holding when the price data is updated.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from batchtrace import semconv as sc
from batchtrace.errors import InputError
from batchtrace.extract.base import NO_RESULT
from batchtrace.pricing import Cost, price
from batchtrace.record import Failure, Record, Usage
from batchtrace.tally import Summary, Tally
from batchtrace.timestamps import HINT_AGE_NS, TimestampPolicy
from batchtrace.trace_link import resolve_link
from batchtrace.write.cost import price_record, write_cost
from batchtrace.write.spans import SpanFactory, WriterSet
from genai_prices import Usage as LibUsage
from genai_prices import calc_price
from opentelemetry.sdk.resources import Resource

NS = 1_000_000_000
#: After genai-prices' OpenAI batch rates start (2026-10-14).
AT = datetime(2026, 11, 2, 15, 30, tzinfo=UTC)
AT_NS = int(AT.timestamp()) * NS
COST_KEYS = (
    sc.USAGE_COST,
    sc.LLM_COST_PROMPT,
    sc.LLM_COST_COMPLETION,
    sc.LLM_COST_TOTAL,
    sc.COST_REALTIME,
    sc.COST_SOURCE,
)


def lib_total(model: str, at: datetime, *, batch: bool, **usage: int) -> float:
    calc = calc_price(
        LibUsage(**usage),
        model,
        provider_id="openai",
        genai_request_timestamp=at,
        price_context={"processing": "batch"} if batch else None,
    )
    return float(calc.total_price)


def chat(
    usage: Usage | None = None,
    *,
    model: str | None = "gpt-4o-mini",
    response_model: str | None = None,
    provider: str = "openai",
    created_s: float | None = None,
) -> Record:
    return Record(
        "req-1",
        provider,
        "chat",
        request_model=model,
        response_model=response_model,
        usage=usage or Usage(),
        created_s=created_s,
    )


def factory(**settings: Any) -> SpanFactory:
    link = resolve_link("batch_1", trace_id=0x0AF7651916CD43DD8448EB211C80319C)
    return SpanFactory(link, batch_id="batch_1", resource=Resource({}), **settings)


# --------------------------------------------------------------------------- pricing a record


def test_a_record_is_priced_at_the_batch_rate_of_its_time() -> None:
    cost = price_record(chat(Usage(1_200, 300)), AT_NS)
    assert cost is not None
    assert cost.batch_usd == pytest.approx(
        lib_total("gpt-4o-mini", AT, batch=True, input_tokens=1_200, output_tokens=300)
    )
    assert cost.realtime_usd == pytest.approx(2 * cost.batch_usd)
    assert cost.source == "genai-prices"


def test_an_azure_deployment_name_falls_back_to_the_response_model() -> None:
    """Azure's request names the deployment, which no price list knows; the response names the model."""
    usage = Usage(500, 40)
    record = chat(usage, model="contoso-prod-mini", response_model="gpt-4o-mini-2024-07-18", provider="azure.ai.openai")
    assert price_record(record, AT_NS) == price("azure.ai.openai", "gpt-4o-mini-2024-07-18", usage, AT)
    assert price_record(record, AT_NS) is not None


def test_no_usage_or_an_unknown_model_has_no_price() -> None:
    assert price_record(chat(), AT_NS) is None
    assert price_record(chat(Usage(10, 2), model="acme-llm-9000"), AT_NS) is None
    assert price_record(chat(Usage(10, 2), model=None), AT_NS) is None


# --------------------------------------------------------------------------- the cost writer


def test_the_writer_puts_the_batch_price_under_every_backends_name() -> None:
    record = chat(Usage(1_200, 300))
    record.cost = price_record(record, AT_NS)
    assert record.cost is not None
    attrs: dict[str, Any] = {}
    write_cost(record, attrs)
    assert attrs[sc.USAGE_COST] == attrs[sc.LLM_COST_TOTAL] == record.cost.batch_usd
    assert attrs[sc.LLM_COST_PROMPT] + attrs[sc.LLM_COST_COMPLETION] == pytest.approx(record.cost.batch_usd)
    assert attrs[sc.COST_REALTIME] == record.cost.realtime_usd
    assert attrs[sc.COST_SOURCE] == "genai-prices"


def test_an_unpriced_record_gets_no_cost_attribute_never_zero() -> None:
    attrs: dict[str, Any] = {}
    write_cost(chat(Usage(10, 2), model="acme-llm-9000"), attrs)
    assert attrs == {}


def test_the_cost_writer_can_be_switched_off() -> None:
    assert WriterSet.from_env({}).cost
    assert not WriterSet.from_env({"BATCHTRACE_COST_ATTRIBUTES": "false"}).cost
    record = chat(Usage(100, 10))
    record.cost = price_record(record, AT_NS)
    on = factory().completion(record).attributes or {}
    off = factory(writers=WriterSet(cost=False)).completion(record).attributes or {}
    assert all(key in on for key in COST_KEYS)
    assert not any(key in off for key in COST_KEYS)


# --------------------------------------------------------------------------- the tally


def priced(usage: Usage) -> Record:
    record = chat(usage)
    record.cost = price_record(record, AT_NS)
    return record


def test_the_tally_sums_costs_and_counts_the_unpriced() -> None:
    records = [priced(Usage(1_000, 100)), priced(Usage(2_000, 50, cache_read_tokens=1_024))]
    unknown = chat(Usage(10, 2), model="acme-llm-9000")
    failed = Record("x", "openai", "chat", failure=Failure("batch_expired", "late", expired=True))
    tally = Tally()
    for record in [*records, unknown, failed]:
        tally.count_record(record, AT_NS)
    costs = [r.cost for r in records if r.cost is not None]
    assert tally.cost_usd == pytest.approx(sum(c.batch_usd for c in costs))
    assert tally.cost_realtime_usd == pytest.approx(sum(c.realtime_usd for c in costs))
    assert tally.unpriced == 1  # the unknown model; the expired request had no usage to price
    summary = Summary.of(tally)
    assert summary.cost_usd == pytest.approx(tally.cost_usd)
    assert summary.saving_usd == pytest.approx(tally.cost_realtime_usd - tally.cost_usd)
    assert summary.unpriced == 1


def test_chunk_tallies_add_their_costs() -> None:
    one, two = Tally(), Tally()
    one.count_record(priced(Usage(1_000, 100)), AT_NS)
    two.count_record(priced(Usage(3_000, 10)), AT_NS)
    two.count_record(chat(Usage(1, 1), model="acme-llm-9000"), AT_NS)
    expected = one.cost_usd + two.cost_usd
    one.merge(two)
    assert one.cost_usd == pytest.approx(expected)
    assert (one.priced, one.unpriced) == (2, 1)


def test_nothing_priced_is_an_unknown_cost_not_zero() -> None:
    unknown = Tally()
    unknown.count_record(chat(Usage(10, 2), model="acme-llm-9000"), AT_NS)
    assert Summary.of(unknown).cost_usd is None
    assert Summary.of(unknown).saving_usd is None
    free = Tally()  # every request failed: nothing was billed
    free.count_record(Record("x", "openai", "chat", failure=NO_RESULT, no_result=True), AT_NS)
    assert (Summary.of(free).cost_usd, Summary.of(free).unpriced) == (0.0, 0)


# --------------------------------------------------------------------------- timestamps


def test_timestamps_setting() -> None:
    assert not TimestampPolicy.from_env({}).processing
    assert TimestampPolicy.from_env({"BATCHTRACE_TIMESTAMPS": " Processing "}).processing
    with pytest.raises(InputError, match="BATCHTRACE_TIMESTAMPS must be one of original, processing"):
        TimestampPolicy.from_env({"BATCHTRACE_TIMESTAMPS": "now"})
    with pytest.raises(InputError, match="original, processing"):
        TimestampPolicy("later")


def test_processing_time_moves_spans_and_keeps_the_providers_times() -> None:
    now_ns = AT_NS + 3 * 86_400 * NS
    record = chat(Usage(10, 2), created_s=AT.timestamp())
    policy = TimestampPolicy("processing")
    moved = factory(now_ns=now_ns, timestamps=policy)
    span = moved.completion(record)
    assert span.start_time == span.end_time == now_ns
    assert (span.attributes or {})[sc.CREATED] == int(AT.timestamp())
    assert moved.time_of(record) == AT_NS  # what prices and the tally use
    batch = moved.batch_span({}, (AT_NS - 3_600 * NS, AT_NS))
    assert batch is not None and batch.start_time == now_ns and (batch.end_time or 0) >= now_ns
    attrs = batch.attributes or {}
    assert (attrs[sc.ORIGINAL_START], attrs[sc.ORIGINAL_END]) == (AT_NS // NS - 3_600, AT_NS // NS)
    kept = factory(now_ns=now_ns).batch_span({}, (AT_NS, AT_NS))
    assert kept is not None and kept.start_time == AT_NS and sc.ORIGINAL_START not in (kept.attributes or {})


def test_old_spans_get_one_hint_in_original_mode_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    now_ns = AT_NS + HINT_AGE_NS + NS
    assert TimestampPolicy().hint_if_old(AT_NS, AT_NS + HINT_AGE_NS, "b") is None
    assert TimestampPolicy("processing").hint_if_old(AT_NS, now_ns, "b") is None
    assert TimestampPolicy().hint_if_old(None, now_ns, "b") is None
    hint = TimestampPolicy().hint_if_old(AT_NS, now_ns, "batch_abc")
    assert hint is not None and "\n" not in hint
    assert "batch_abc" in hint and "BATCHTRACE_TIMESTAMPS=processing" in hint and "--timestamps processing" in hint
    assert [r.getMessage() for r in caplog.records] == [hint]


def test_cost_is_a_dataclass_of_floats() -> None:
    """The worker keeps the Cost on the record; nothing about it needs the library at span time."""
    cost = Cost(1.0, 2.0, 0.5, 0.5, "genai-prices")
    record = chat(Usage(1, 1))
    record.cost = cost
    attrs: dict[str, Any] = {}
    write_cost(record, attrs)
    assert attrs[sc.USAGE_COST] == 1.0 and attrs[sc.COST_REALTIME] == 2.0
