"""The run's metrics: where they go, and that what the SDK's exporter puts on the wire adds up.

The token histogram is aggregated in the span workers (``batchtrace.breakdown``) and merged like
every count, so these tests check it against the SDK's own histogram aggregation over the same
values: a backend must not be able to tell the two apart. Destinations follow the standard
variables, and a run is never failed by its metrics.
"""

from __future__ import annotations

import logging
import random
import urllib.error
import urllib.request

import pytest
from batchtrace import semconv as sc
from batchtrace.breakdown import TOKEN_BUCKETS, ModelUsage, TokenHistogram, usage_rows
from batchtrace.plan import BatchPlan
from batchtrace.pricing import Cost
from batchtrace.record import Failure, Record, Usage
from batchtrace.send.metrics import (
    MAX_EXPORT_S,
    build_metrics_data,
    metrics_destination,
    send_run_metrics,
)
from batchtrace.send.otlp_config import OtlpConfig
from batchtrace.tally import Summary, Tally
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.resources import Resource

from tests.support.otlp_metrics import ReceivedPoint, decode_metrics, totals
from tests.support.otlp_receiver import OtlpReceiver, unused_port

TRACES = OtlpConfig.resolve(env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces.example:4318/v1/traces"})


def record(
    model: str | None = "gpt-4o-mini",
    usage: Usage | None = None,
    failure: Failure | None = None,
    *,
    no_result: bool = False,
    operation: str = "chat",
    cost: Cost | None = None,
) -> Record:
    made = Record("id", "openai", operation, request_model=model, usage=usage or Usage(), failure=failure)
    made.no_result, made.cost = no_result, cost
    return made


def wire(tally: Tally, **kwargs: object) -> list[ReceivedPoint]:
    """The tally's metrics as the OTLP exporter encodes them, decoded again."""
    data = build_metrics_data(tally, {}, Resource({"service.name": "t"}), started_ns=1, **kwargs)  # type: ignore[arg-type]
    return decode_metrics(encode_metrics(data))


# --------------------------------------------------------------------------- the histogram


def test_token_histogram_matches_the_sdks_own_aggregation() -> None:
    """Same values, same count, sum, min, max and buckets as an SDK histogram with the advised boundaries."""
    rng = random.Random(7)
    values = [rng.choice([0, 1, 4, 5, 16, 17, 1024, 1025]) for _ in range(50)] + [
        rng.randint(0, 10**8) for _ in range(50)
    ]
    mine = TokenHistogram()
    for value in values:
        mine.record(value)

    reader = InMemoryMetricReader()
    histogram = (
        MeterProvider(metric_readers=[reader])
        .get_meter("t")
        .create_histogram("h", explicit_bucket_boundaries_advisory=TOKEN_BUCKETS)
    )
    for value in values:
        histogram.record(value)
    data = reader.get_metrics_data()
    assert data is not None
    sdk = data.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points[0]
    assert (mine.count, mine.total, mine.min, mine.max) == (sdk.count, sdk.sum, sdk.min, sdk.max)  # type: ignore[union-attr]
    assert mine.buckets == list(sdk.bucket_counts)  # type: ignore[union-attr]


def test_histograms_of_chunks_merge_into_the_histogram_of_the_whole() -> None:
    values = [3, 900, 0, 70_000, 12, 12, 5_000_000]
    whole, first, second = TokenHistogram(), TokenHistogram(), TokenHistogram()
    for index, value in enumerate(values):
        whole.record(value)
        (first if index % 2 else second).record(value)
    first.merge(second)
    first.merge(TokenHistogram())
    assert first == whole


def test_tally_breaks_records_down_by_model_and_merges_across_chunks() -> None:
    """Outcomes partition the completions; tokens are summed per model; chunk tallies add up."""
    chunk_a, chunk_b = Tally(), Tally()
    chunk_a.count_record(record(usage=Usage(100, 20)), 1)
    chunk_a.count_record(record(failure=Failure("server_error", "500")), 1)
    chunk_b.count_record(record(usage=Usage(50, 5)), 1)
    chunk_b.count_record(record(failure=Failure("batch_expired", "late", expired=True)), 1)
    chunk_b.count_record(record(failure=Failure("no_result", "none"), no_result=True), 1)
    chunk_b.count_record(record("text-embedding-3-small", Usage(8), operation="embeddings"), 1)
    tally = Tally()
    tally.merge(chunk_a)
    tally.merge(chunk_b)

    chat = tally.by_model[("openai", "gpt-4o-mini", "chat")]
    assert chat.outcomes() == {"succeeded": 2, "failed": 1, "expired": 1, "no_result": 1}
    assert (chat.input.total, chat.output.total, chat.input.count) == (150, 25, 2)
    rows = Summary.of(tally).by_model
    assert [(row["model"], row["completions"], row["input_tokens"]) for row in rows] == [
        ("gpt-4o-mini", 5, 150),
        ("text-embedding-3-small", 1, 8),
    ]
    assert sum(row["input_tokens"] for row in rows) == tally.input_tokens


def test_by_model_rows_leave_cost_unknown_rather_than_zero() -> None:
    usage = ModelUsage()
    usage.count(record(usage=Usage(10, 1)))
    [row] = usage_rows({("openai", "gpt-4o-mini", "chat"): usage})
    assert row["cost_usd"] is None and row["cost_realtime_usd"] is None


def test_by_model_rows_and_totals_agree_on_what_is_unknown_and_what_cost_nothing() -> None:
    """A model whose requests all failed without usage cost nothing (0, in its row as in the totals);
    a model whose usage has no price is unknown (``None``) in both; priced rows add up to the total."""
    tally = Tally()
    price = Cost(0.5, 1.0, 0.3, 0.2, "genai-prices")
    for made in (
        record("gpt-4o-mini", Usage(10, 1), cost=price),
        record("gpt-4o-mini", Usage(10, 1), cost=price),
        record("gpt-4.1", failure=Failure("server_error", "HTTP 500")),
        record("gpt-4.1", no_result=True, failure=Failure("no_result", "no result")),
    ):
        tally.count_record(made, 1)
    summary = Summary.of(tally)
    rows = {row["model"]: row for row in summary.by_model}
    assert (rows["gpt-4.1"]["cost_usd"], rows["gpt-4.1"]["cost_realtime_usd"]) == (0.0, 0.0)
    assert rows["gpt-4o-mini"]["cost_usd"] == 1.0
    assert summary.cost_usd == sum(row["cost_usd"] for row in rows.values()) == 1.0

    unknown = Tally()
    unknown.count_record(record("my-own-model", Usage(10, 1)), 1)
    unknown_summary = Summary.of(unknown)
    assert unknown_summary.cost_usd is None and unknown_summary.by_model[0]["cost_usd"] is None


# --------------------------------------------------------------------------- what goes on the wire


@pytest.fixture
def points() -> list[ReceivedPoint]:
    """Three answered requests (one with no output tokens) and an expired one, on the wire."""
    tally = Tally()
    for tokens in ((10, 3), (1000, 300), (20, 0)):
        tally.count_record(record(usage=Usage(*tokens)), 1)
    tally.count_record(record(failure=Failure("batch_expired", "late", expired=True)), 1)
    return wire(tally)


def test_token_usage_on_the_wire(points: list[ReceivedPoint]) -> None:
    usage = [p for p in points if p.name == "gen_ai.client.token.usage"]
    assert {p.unit for p in usage} == {"{token}"} and {p.kind for p in usage} == {"histogram"}
    assert totals(usage, sc.METRIC_TOKEN_USAGE, sc.TOKEN_TYPE) == {("input",): 1030, ("output",): 303}
    by_type = {p.attributes[sc.TOKEN_TYPE]: p for p in usage}
    assert by_type["input"].count == 3 and (by_type["input"].min, by_type["input"].max) == (10, 1000)
    assert by_type["input"].attributes == {
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.operation.name": "chat",
        "gen_ai.token.type": "input",
    }


def test_outcomes_on_the_wire(points: list[ReceivedPoint]) -> None:
    outcomes = totals(points, "batchtrace.batch.requests", "batchtrace.outcome")
    assert outcomes == {("succeeded",): 3, ("failed",): 0, ("expired",): 1, ("no_result",): 0}
    assert all(p.monotonic for p in points if p.name == "batchtrace.batch.requests")


def test_cost_by_rate_only_for_priced_models() -> None:
    tally = Tally()
    tally.count_record(record(usage=Usage(10, 1), cost=Cost(0.5, 1.0, 0.3, 0.2, "genai-prices")), 1)
    tally.count_record(record(usage=Usage(10, 1), cost=Cost(0.25, 0.5, 0.2, 0.05, "genai-prices")), 1)
    tally.count_record(record("my-finetune", Usage(10, 1)), 1)
    points = wire(tally)
    cost = totals(points, "batchtrace.batch.cost", sc.REQUEST_MODEL, "batchtrace.cost.rate")
    assert cost == {("gpt-4o-mini", "batch"): 0.75, ("gpt-4o-mini", "realtime"): 1.5}


def test_temporality_follows_the_exporters_preference() -> None:
    tally = Tally()
    tally.count_record(record(usage=Usage(10, 1)), 1)
    delta = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}
    assert {p.temporality for p in wire(tally, temporality=delta)} == {"DELTA"}
    assert {p.temporality for p in wire(tally)} == {"CUMULATIVE"}


# --------------------------------------------------------------------------- where they go


@pytest.mark.parametrize(
    ("env", "endpoint"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4318/v1/traces"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "http://c:4318/v1/metrics"),
        ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m:9/x"}, "http://m:9/x"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_METRICS_EXPORTER": "none"}, None),
        ({"OTEL_METRICS_EXPORTER": "otlp"}, "http://localhost:4318/v1/metrics"),
        ({"OTEL_METRICS_EXPORTER": " OTLP , console"}, "http://localhost:4318/v1/metrics"),
    ],
)
def test_destination_follows_the_standard_variables(env: dict[str, str], endpoint: str | None) -> None:
    destination = metrics_destination(TRACES, env)
    assert (destination.endpoint if destination else None) == endpoint


def test_an_unsupported_exporter_is_one_warning_and_no_metrics(caplog: pytest.LogCaptureFixture) -> None:
    env = {"OTEL_METRICS_EXPORTER": "prometheus", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}
    assert metrics_destination(TRACES, env) is None
    assert [r.getMessage() for r in caplog.records] == [
        "OTEL_METRICS_EXPORTER=prometheus: batchtrace sends metrics over OTLP only; no metrics sent"
    ]


def test_timeout_is_capped_and_the_traces_credentials_follow_to_the_same_host() -> None:
    traces = OtlpConfig.resolve(endpoint="https://otlp.example/v1/traces", headers={"Authorization": "Bearer k"})
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example", "OTEL_EXPORTER_OTLP_TIMEOUT": "30"}
    same = metrics_destination(traces, env)
    assert same is not None and same.headers == {"authorization": "Bearer k"} and same.timeout_s == MAX_EXPORT_S
    other = metrics_destination(traces, {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "https://elsewhere/v1/metrics"})
    assert other is not None and other.headers == {}


def test_a_bad_metrics_setting_is_one_warning_never_an_error(caplog: pytest.LogCaptureFixture) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_METRICS_HEADERS": "secret-no-equals"}
    with caplog.at_level(logging.WARNING):
        sent = send_run_metrics(BatchPlan(otlp=TRACES), Tally(), Resource({}), 0.1, env)
    assert sent is False
    [line] = [r.getMessage() for r in caplog.records]
    assert "OTEL_EXPORTER_OTLP_METRICS_HEADERS" in line and "secret-no-equals" not in line
    assert "OTEL_METRICS_EXPORTER=none" in line


def test_an_unreachable_endpoint_is_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    tally = Tally()
    tally.count_record(record(usage=Usage(10, 1)), 1)
    env = {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"http://127.0.0.1:{unused_port()}/v1/metrics"}
    with caplog.at_level(logging.DEBUG):
        sent = send_run_metrics(BatchPlan(otlp=TRACES), tally, Resource({}), 0.1, env)
    assert sent is False
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith("metrics not sent to http://127.0.0.1:"), warnings


@pytest.mark.parametrize(("status", "reason"), [(404, "404, reason: Not Found"), (503, "Service Unavailable")])
def test_a_refusing_endpoint_is_one_warning_with_its_reason(
    caplog: pytest.LogCaptureFixture, status: int, reason: str
) -> None:
    """A traces-only backend (404) is not retried; a throttling one (503) is, within the cap; either way one line."""
    tally = Tally()
    tally.count_record(record(usage=Usage(10, 1)), 1)
    with OtlpReceiver(always_status=status, retry_after="0") as receiver, caplog.at_level(logging.DEBUG):
        env = {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": receiver.metrics_endpoint}
        sent = send_run_metrics(BatchPlan(otlp=TRACES), tally, Resource({}), 0.1, env)
        attempts = receiver.attempts
    assert sent is False and (attempts == 1) is (status == 404)
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert f"metrics not sent to {receiver.metrics_endpoint}: " in warning and reason in warning
    assert "retrying" not in warning


def test_the_receiver_refuses_a_body_that_is_not_an_export_metrics_request() -> None:
    """The harness can fail: garbage on /v1/metrics is a 400 and no data point."""
    with OtlpReceiver() as receiver:
        post = urllib.request.Request(
            receiver.metrics_endpoint, data=b"\xff\xff\xff", headers={"Content-Type": "application/x-protobuf"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(post, timeout=5)
        assert refused.value.code == 400
        assert receiver.metric_points == [] and [r.status for r in receiver.metric_requests()] == [400]
