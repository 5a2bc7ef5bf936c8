"""Request cost from genai-prices: batch and realtime figures, where the batch rate came from, and speed.

Every expected figure is computed by genai-prices itself (``calc_price`` and the model's own price
records), never copied from a price list, so the tests state facts a user sees ("a batch costs half",
"cached reads bill at the cached batch rate") and keep holding when the data is updated.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from batchtrace import pricing
from batchtrace.pricing import Cost, price, refresh_prices, refresh_prices_from_env
from batchtrace.record import Usage
from genai_prices import Usage as LibUsage
from genai_prices import calc_price, data_snapshot
from genai_prices.types import ModelPrice, StartDateConstraint

BATCH = {"processing": "batch"}
#: After genai-prices 0.2.3 verified its batch rates (2026-10-14), and before: the dates a test needs.
AFTER = datetime(2026, 11, 2, 15, 30, tzinfo=UTC)
BEFORE = datetime(2025, 3, 10, 8, 0, tzinfo=UTC)


def lib(provider_id: str, model: str, at: datetime, *, batch: bool, **usage: int) -> tuple[float, float, float]:
    """genai-prices' own (input, output, total) price for a usage (its key names)."""
    calc = calc_price(
        LibUsage(**usage),
        model,
        provider_id=provider_id,
        genai_request_timestamp=at,
        price_context=BATCH if batch else None,
    )
    return float(calc.input_price), float(calc.output_price), float(calc.total_price)


def model_prices(provider_id: str, model: str, at: datetime, *, batch: bool) -> ModelPrice:
    """The price record genai-prices selects for the model on that date."""
    _, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider_id, None)
    return info.get_prices(at, BATCH if batch else None)


def per_token(value: object) -> float:
    assert isinstance(value, Decimal), value
    return float(value) / 1_000_000


def first_batch_date(provider_id: str, model: str) -> datetime:
    """The first date genai-prices has a batch rate for the model (read from its data, not assumed)."""
    _, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider_id, None)
    starts = [
        v.constraint.start_date
        for v in info.price_variants or ()
        if v.when == BATCH and isinstance(v.constraint, StartDateConstraint)
    ]
    assert starts, f"genai-prices has no dated batch rate for {model}"
    return datetime.combine(min(starts), datetime.min.time(), tzinfo=UTC)


def approx(value: float) -> Any:
    return pytest.approx(value, rel=1e-9, abs=1e-15)


def priced(provider: str, model: str | None, at: datetime | None, **usage: int) -> Cost:
    cost = price(provider, model, Usage(**usage), at)
    assert cost is not None, (provider, model)
    return cost


@pytest.fixture(autouse=True)
def bundled_prices() -> Iterator[None]:
    """Every test starts and ends on the data bundled with the package."""
    data_snapshot.set_custom_snapshot(None)
    yield
    data_snapshot.set_custom_snapshot(None)


# --- OpenAI ---------------------------------------------------------------------------------------


def test_gpt_4o_mini_batch_is_half_the_realtime_price() -> None:
    """Uncached input and output in a batch cost half the synchronous price, the library's batch rate."""
    cost = priced("openai", "gpt-4o-mini", AFTER, input_tokens=12_000, output_tokens=3_000)
    assert cost.source == "genai-prices"
    assert cost.realtime_usd == approx(
        lib("openai", "gpt-4o-mini", AFTER, batch=False, input_tokens=12_000, output_tokens=3_000)[2]
    )
    assert cost.batch_usd == approx(cost.realtime_usd / 2)
    inp, out, total = lib("openai", "gpt-4o-mini", AFTER, batch=True, input_tokens=12_000, output_tokens=3_000)
    assert (cost.input_usd, cost.output_usd, cost.batch_usd) == (approx(inp), approx(out), approx(total))
    assert cost.input_usd + cost.output_usd == approx(cost.batch_usd)


def test_dated_model_names_resolve_to_the_same_price() -> None:
    """A response names the dated snapshot (gpt-4o-mini-2024-07-18): same model, same price."""
    usage = {"input_tokens": 1_000, "output_tokens": 100}
    assert priced("openai", "gpt-4o-mini-2024-07-18", AFTER, **usage) == priced("openai", "gpt-4o-mini", AFTER, **usage)


def test_cached_input_is_priced_at_the_cached_batch_rate() -> None:
    """Cache reads bill at the model's cached batch rate, the rest of the input at the batch input rate."""
    rates = model_prices("openai", "gpt-5", AFTER, batch=True)
    cost = priced("openai", "gpt-5", AFTER, input_tokens=10_000, cache_read_tokens=8_000, output_tokens=500)
    assert cost.source == "genai-prices"
    expected_input = 2_000 * per_token(rates.input_mtok) + 8_000 * per_token(rates.cache_read_mtok)
    assert cost.input_usd == approx(expected_input)
    assert cost.output_usd == approx(500 * per_token(rates.output_mtok))
    library = lib("openai", "gpt-5", AFTER, batch=True, input_tokens=10_000, cache_read_tokens=8_000, output_tokens=500)
    assert cost.batch_usd == approx(library[2])


def test_reasoning_tokens_are_priced_as_output() -> None:
    """A reasoning model's reasoning tokens are part of its output and bill at the output rate."""
    with_reasoning = priced("openai", "o4-mini", AFTER, input_tokens=2_000, output_tokens=6_000, reasoning_tokens=5_000)
    without = priced("openai", "o4-mini", AFTER, input_tokens=2_000, output_tokens=6_000)
    assert with_reasoning.batch_usd == approx(without.batch_usd)
    assert with_reasoning.output_usd == approx(without.output_usd)
    rates = model_prices("openai", "o4-mini", AFTER, batch=True)
    assert with_reasoning.output_usd == approx(6_000 * per_token(rates.output_mtok))
    library = lib(
        "openai", "o4-mini", AFTER, batch=True, input_tokens=2_000, output_tokens=6_000, output_reasoning_tokens=5_000
    )
    assert with_reasoning.batch_usd == approx(library[2])


def test_a_request_before_the_librarys_batch_data_gets_the_documented_discount() -> None:
    """Before genai-prices' first batch rate, OpenAI's documented 50% applies to that day's realtime price."""
    day_before = first_batch_date("openai", "gpt-4o-mini") - timedelta(seconds=1)
    for at in (BEFORE, day_before):
        cost = priced("openai", "gpt-4o-mini", at, input_tokens=40_000, cache_read_tokens=10_000, output_tokens=900)
        assert cost.source == "documented-discount"
        realtime = lib(
            "openai", "gpt-4o-mini", at, batch=False, input_tokens=40_000, cache_read_tokens=10_000, output_tokens=900
        )
        assert cost.realtime_usd == approx(realtime[2])
        assert (cost.input_usd, cost.output_usd) == (approx(realtime[0] / 2), approx(realtime[1] / 2))
        assert cost.batch_usd == approx(realtime[2] / 2)


def test_the_price_is_the_one_of_the_utc_day_the_request_ran() -> None:
    """Times in any zone are read as instants: 05:00 in Tokyo on the first batch day is still the day before."""
    first = first_batch_date("openai", "gpt-4o-mini")
    tokyo = timezone(timedelta(hours=9))
    usage = {"input_tokens": 1_000, "output_tokens": 100}
    assert priced("openai", "gpt-4o-mini", first.astimezone(tokyo) - timedelta(hours=4), **usage).source == (
        "documented-discount"
    )
    assert priced("openai", "gpt-4o-mini", first.astimezone(tokyo) + timedelta(hours=1), **usage).source == (
        "genai-prices"
    )
    naive = first.replace(tzinfo=None)  # naive means UTC, as genai-prices reads it
    assert priced("openai", "gpt-4o-mini", naive, **usage) == priced("openai", "gpt-4o-mini", first, **usage)


def test_azure_openai_gets_the_documented_global_batch_discount() -> None:
    """genai-prices prices Azure OpenAI models through its OpenAI data but has no Azure batch rate."""
    cost = priced("azure.ai.openai", "gpt-4o-mini", AFTER, input_tokens=5_000, output_tokens=500)
    assert cost.source == "documented-discount"
    realtime = lib("azure", "gpt-4o-mini", AFTER, batch=False, input_tokens=5_000, output_tokens=500)
    assert cost.realtime_usd == approx(realtime[2])
    assert cost.batch_usd == approx(realtime[2] / 2)


# --- Anthropic ------------------------------------------------------------------------------------


def test_anthropic_cache_creation_and_reads_in_a_batch() -> None:
    """Cache writes and reads are input, each at its own batch rate; Anthropic halves them all."""
    usage = {"input_tokens": 30_000, "cache_read_tokens": 20_000, "cache_creation_tokens": 6_000, "output_tokens": 800}
    cost = priced("anthropic", "claude-haiku-4-5", AFTER, **usage)
    assert cost.source == "genai-prices"
    lib_usage = {"input_tokens": 30_000, "cache_read_tokens": 20_000, "cache_write_tokens": 6_000, "output_tokens": 800}
    inp, out, total = lib("anthropic", "claude-haiku-4-5", AFTER, batch=True, **lib_usage)
    assert (cost.input_usd, cost.output_usd, cost.batch_usd) == (approx(inp), approx(out), approx(total))
    rates = model_prices("anthropic", "claude-haiku-4-5", AFTER, batch=True)
    assert cost.input_usd == approx(
        4_000 * per_token(rates.input_mtok)
        + 20_000 * per_token(rates.cache_read_mtok)
        + 6_000 * per_token(rates.cache_write_mtok)
    )
    assert cost.batch_usd == approx(cost.realtime_usd / 2)


def test_long_prompt_tier_is_priced_like_the_library() -> None:
    """Over a model's long-context threshold the whole request moves to the higher rate, in a batch too."""
    for n in (150_000, 200_000, 200_001, 900_000):
        cost = priced(
            "anthropic",
            "claude-sonnet-4-5-20250929",
            AFTER,
            input_tokens=n,
            cache_read_tokens=n // 3,
            output_tokens=4_000,
        )
        expected = lib(
            "anthropic",
            "claude-sonnet-4-5-20250929",
            AFTER,
            batch=True,
            input_tokens=n,
            cache_read_tokens=n // 3,
            output_tokens=4_000,
        )
        assert cost.batch_usd == approx(expected[2]), n
        realtime = lib(
            "anthropic",
            "claude-sonnet-4-5-20250929",
            AFTER,
            batch=False,
            input_tokens=n,
            cache_read_tokens=n // 3,
            output_tokens=4_000,
        )
        assert cost.realtime_usd == approx(realtime[2]), n


# --- Bedrock, Gemini, Vertex ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0",
    ],
)
def test_bedrock_model_ids_resolve(model: str) -> None:
    """Bedrock ids, cross-region profiles and ARNs price as Bedrock lists them, with its documented 50%."""
    cost = priced("aws.bedrock", model, AFTER, input_tokens=8_000, cache_read_tokens=2_000, output_tokens=700)
    realtime = lib("aws", model, AFTER, batch=False, input_tokens=8_000, cache_read_tokens=2_000, output_tokens=700)
    assert cost.source == "documented-discount"
    assert cost.realtime_usd == approx(realtime[2])
    assert cost.batch_usd == approx(realtime[2] / 2)


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("gcp.gemini", "gemini-2.5-flash"),
        ("gcp.gemini", "models/gemini-2.5-flash"),
        ("gcp.vertex_ai", "publishers/google/models/gemini-2.5-flash"),
        ("gcp.vertex_ai", "projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash"),
        ("gcp.vertex_ai", "gemini-2.5-flash-001"),
    ],
)
def test_gemini_model_names_resolve_to_the_librarys_batch_rate(provider: str, model: str) -> None:
    """Gemini API and Vertex names of one model all get genai-prices' Gemini batch rate."""
    cost = priced(
        provider,
        model,
        AFTER,
        input_tokens=50_000,
        cache_read_tokens=30_000,
        output_tokens=2_000,
        reasoning_tokens=1_500,
    )
    expected = lib(
        "google",
        "gemini-2.5-flash",
        AFTER,
        batch=True,
        input_tokens=50_000,
        cache_read_tokens=30_000,
        output_tokens=2_000,
        output_reasoning_tokens=1_500,
    )
    assert cost.source == "genai-prices"
    assert cost.batch_usd == approx(expected[2])


def test_pinned_vertex_versions_resolve() -> None:
    """``gemini-2.0-flash-001`` is the library's ``gemini-2.0-flash``."""
    assert priced("gcp.vertex_ai", "gemini-2.0-flash-001", AFTER, input_tokens=10, output_tokens=10) == priced(
        "gcp.vertex_ai", "gemini-2.0-flash", AFTER, input_tokens=10, output_tokens=10
    )


def test_gemini_cache_reads_keep_their_rate_under_the_documented_discount() -> None:
    """Before the library's batch data, Google's 50% applies to input and output but not to cache hits."""
    cost = priced(
        "gcp.gemini", "gemini-2.5-flash", BEFORE, input_tokens=50_000, cache_read_tokens=30_000, output_tokens=2_000
    )
    assert cost.source == "documented-discount"
    rates = model_prices("google", "gemini-2.5-flash", BEFORE, batch=False)
    expected_input = 20_000 * per_token(rates.input_mtok) / 2 + 30_000 * per_token(rates.cache_read_mtok)
    assert cost.input_usd == approx(expected_input)
    assert cost.output_usd == approx(2_000 * per_token(rates.output_mtok) / 2)


# --- Other providers and sources ------------------------------------------------------------------


def test_groq_cached_input_is_billed_at_the_halved_input_rate() -> None:
    """Groq's batch discount does not stack with caching: a cached token costs an uncached batch token."""
    cached = priced(
        "groq", "openai/gpt-oss-120b", BEFORE, input_tokens=10_000, cache_read_tokens=6_000, output_tokens=100
    )
    uncached = priced("groq", "openai/gpt-oss-120b", BEFORE, input_tokens=10_000, output_tokens=100)
    assert cached.source == "documented-discount"
    assert cached.batch_usd == approx(uncached.batch_usd)
    assert uncached.batch_usd == approx(uncached.realtime_usd / 2)


def test_source_is_realtime_where_no_flat_discount_is_documented() -> None:
    """Together AI documents "up to 50%" on selected models: the batch figure is the realtime one."""
    cost = priced(
        "together_ai", "meta-llama/Llama-3.3-70B-Instruct-Turbo", AFTER, input_tokens=3_000, output_tokens=300
    )
    assert cost.source == "realtime"
    assert cost.batch_usd == cost.realtime_usd > 0
    realtime = lib(
        "together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", AFTER, batch=False, input_tokens=3_000, output_tokens=300
    )
    assert cost.batch_usd == approx(realtime[2])


def test_each_source_names_where_the_batch_rate_came_from() -> None:
    usage = {"input_tokens": 1_000, "output_tokens": 100}
    assert priced("openai", "gpt-4o-mini", AFTER, **usage).source == "genai-prices"
    assert priced("openai", "gpt-4o-mini", BEFORE, **usage).source == "documented-discount"
    assert priced("mistral_ai", "mistral-small-latest", AFTER, **usage).source == "genai-prices"
    assert priced("fireworks_ai", "accounts/fireworks/models/llama-v3p1-8b-instruct", AFTER, **usage).source == (
        "documented-discount"
    )
    assert priced("together_ai", "meta-llama/Llama-3.3-70B-Instruct-Turbo", AFTER, **usage).source == "realtime"


def test_time_of_day_prices_follow_the_hour() -> None:
    """A model with off-peak rates is priced at the request's own time, not the day's."""
    usage = {"input_tokens": 100_000, "output_tokens": 10_000}
    costs = [priced("deepseek", "deepseek-chat", AFTER.replace(hour=hour), **usage) for hour in range(24)]
    for hour, cost in enumerate(costs):
        expected = lib("deepseek", "deepseek-chat", AFTER.replace(hour=hour), batch=False, **usage)[2]
        assert cost.realtime_usd == approx(expected), hour
        assert cost.source == "realtime"
    assert len({round(cost.realtime_usd, 12) for cost in costs}) > 1  # the library has off-peak rates for it


def test_the_span_workers_nanosecond_path_prices_as_price_does() -> None:
    """``price_at_ns`` (what each span's pricing goes through) against ``price``, hour by hour over days
    that straddle the library's batch data, for a flat-rate model, an off-peak one, and a first name
    that no price list knows (a deployment name) before the one that prices."""
    usage = Usage(input_tokens=40_000, output_tokens=2_000, cache_read_tokens=1_000)
    cases = [("openai", ["my-gpt-deployment", "gpt-4o-mini"]), ("deepseek", ["deepseek-chat"])]
    start = first_batch_date("openai", "gpt-4o-mini") - timedelta(days=2)
    for provider, models in cases:
        for hours in range(0, 96, 5):
            at = start + timedelta(hours=hours, minutes=hours)
            at_ns = int(at.timestamp()) * 1_000_000_000
            assert pricing.price_at_ns(provider, models, usage, at_ns) == price(provider, models[-1], usage, at)
    assert pricing.price_at_ns("openai", ["my-gpt-deployment"], usage, 0) is None
    assert pricing.price_at_ns("openai", ["gpt-4o-mini"], Usage(), 0) is None


# --- Unknown and unpriceable ----------------------------------------------------------------------


def test_unknown_model_has_no_price_never_zero() -> None:
    usage = Usage(input_tokens=1_000, output_tokens=100)
    assert price("openai", "gpt-batchtrace-does-not-exist", usage, AFTER) is None
    assert price("no-such-provider", "gpt-4o-mini", usage, AFTER) is None
    assert price("openai", None, usage, AFTER) is None


def test_no_usage_or_inconsistent_usage_has_no_price() -> None:
    """A request with no usage, or parts larger than their totals, cannot be priced."""
    assert price("openai", "gpt-4o-mini", Usage(), AFTER) is None
    assert price("openai", "gpt-4o-mini", Usage(input_tokens=10, cache_read_tokens=11), AFTER) is None
    assert price("openai", "o4-mini", Usage(input_tokens=10, output_tokens=5, reasoning_tokens=6), AFTER) is None


def test_output_only_usage_is_priced() -> None:
    cost = priced("openai", "gpt-4o-mini", AFTER, output_tokens=100)
    assert cost.input_usd == 0
    assert cost.batch_usd == approx(lib("openai", "gpt-4o-mini", AFTER, batch=True, output_tokens=100)[2])


# --- Speed and caching ----------------------------------------------------------------------------


def test_lookup_is_cached_per_provider_model_and_day() -> None:
    pricing._entry.cache_clear()
    usage = {"input_tokens": 1_000, "output_tokens": 100}
    priced("openai", "gpt-4o-mini", AFTER, **usage)
    priced("openai", "gpt-4o-mini", AFTER.replace(hour=2), **usage)  # same UTC day
    assert pricing._entry.cache_info().misses == 1
    priced("openai", "gpt-4o-mini", AFTER + timedelta(days=1), **usage)
    assert pricing._entry.cache_info().misses == 2


def test_warm_calls_are_fast() -> None:
    """50,000 requests a batch: a warm call must cost microseconds, not the library's ~100 µs."""
    usage = Usage(input_tokens=1_200, output_tokens=400, cache_read_tokens=300, reasoning_tokens=50)
    price("anthropic", "claude-sonnet-4-5", usage, AFTER)
    n = 20_000
    start = time.perf_counter()
    for _ in range(n):
        price("anthropic", "claude-sonnet-4-5", usage, AFTER)
    per_call = (time.perf_counter() - start) / n
    assert per_call < 50e-6, f"{per_call * 1e6:.1f} µs per call"


# --- Updating the price data ----------------------------------------------------------------------


class _PriceServer(ThreadingHTTPServer):
    payload: bytes = b""
    status: int = 200
    hits: int = 0


class _Handler(BaseHTTPRequestHandler):
    server: _PriceServer

    def do_GET(self) -> None:
        self.server.hits += 1
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.server.payload)))
        self.end_headers()
        self.wfile.write(self.server.payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def price_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_PriceServer]:
    """A loopback server standing in for genai-prices' data URL."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = _PriceServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _url(server: _PriceServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/data.json"


#: A data set in genai-prices' published JSON shape with one made-up model (to see which data is in use).
NEW_DATA = [
    {
        "id": "openai",
        "name": "OpenAI",
        "api_pattern": "https://api\\.openai\\.com",
        "models": [
            {"id": "gpt-batchtrace-test", "match": {"equals": "gpt-batchtrace-test"}, "prices": {"input_mtok": 1}}
        ],
    }
]


def test_refresh_is_off_unless_switched_on(price_server: _PriceServer) -> None:
    env = {"BATCHTRACE_PRICES_URL": _url(price_server)}
    assert refresh_prices_from_env(env) is False
    assert refresh_prices_from_env({**env, "BATCHTRACE_PRICES_UPDATE": "0"}) is False
    assert price_server.hits == 0


def test_refresh_replaces_the_data_in_use(price_server: _PriceServer) -> None:
    """Downloaded data is used at once: cached lookups made on the old data are dropped."""
    usage = Usage(input_tokens=1_000, output_tokens=100)
    assert price("openai", "gpt-4o-mini", usage, AFTER) is not None
    assert price("openai", "gpt-batchtrace-test", usage, AFTER) is None
    price_server.payload = json.dumps(NEW_DATA).encode()
    env = {"BATCHTRACE_PRICES_UPDATE": "1", "BATCHTRACE_PRICES_URL": _url(price_server)}
    assert refresh_prices_from_env(env) is True
    assert price_server.hits == 1
    assert price("openai", "gpt-batchtrace-test", usage, AFTER) is not None
    assert price("openai", "gpt-4o-mini", usage, AFTER) is None  # not in the new data


def test_a_failed_refresh_keeps_the_data_in_use(price_server: _PriceServer, caplog: pytest.LogCaptureFixture) -> None:
    usage = Usage(input_tokens=1_000, output_tokens=100)
    before = price("openai", "gpt-4o-mini", usage, AFTER)
    price_server.status = 500
    price_server.payload = b"{}"
    assert refresh_prices(_url(price_server)) is False
    price_server.status = 200
    price_server.payload = b'{"not": "a provider list"}'
    assert refresh_prices(_url(price_server)) is False
    assert price("openai", "gpt-4o-mini", usage, AFTER) == before
    assert "not updated" in caplog.text
