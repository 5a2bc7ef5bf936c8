"""What a batch request cost, from Pydantic's ``genai-prices`` data, at the rate of the day it ran.

Every price comes from `genai-prices <https://github.com/pydantic/genai-prices>`_; this module keeps
no price table. For each request it gives two figures: the batch cost (what the provider charges)
and the realtime cost (what the same usage would have cost through the synchronous API), so the
tally can report the saving. ``Cost.source`` says where the batch figure came from:

``"genai-prices"``
    The library has a batch rate for the model on that date (it selects it with
    ``price_context={"processing": "batch"}``). In 0.2.3 those rates exist for OpenAI, Anthropic,
    Google, Mistral, Groq and xAI models, verified from 2026-10-14; earlier dates have none.
``"documented-discount"``
    The library has no batch rate for the model or the date, and the provider documents a flat batch
    discount (see ``_DISCOUNTS``, each with its doc page): that discount is applied to the library's
    realtime rates.
``"realtime"``
    No batch discount is documented as a flat rate for the provider (Together AI: "up to 50%", on
    selected models), so the batch cost is the realtime cost: an upper bound, never an invented saving.

A model the library does not know gives ``None``, never a zero price: the tally counts it as
unpriced.

Speed: ``price`` runs once per request, 50,000 times for a full batch, and the library's
``calc_price`` takes ~90 µs a call. So the model lookup, the date's price selection and the
conversion of a ``ModelPrice`` into per-token rates are done once per (provider, model, UTC date)
and cached (``functools.lru_cache``). The rates are measured from the library itself: it prices
probe usages (1M uncached input tokens, 1M cache reads, ...) in every prompt-size tier of the
model, and a check usage must then price the same through the rates as through the library, or the
model falls back to calling the library each time (as do models whose price changes with the time
of day). A warm call takes ~3.5 µs, against ~200 µs for the library's batch and realtime prices.

Price data updates: the data is bundled with the package, and ``genai-prices`` can also download
newer data at run time (``UpdatePrices``: the same JSON the project publishes on GitHub, no release
needed). batchtrace does it only when asked, once and synchronously, never in a background thread
(a Lambda freezes between invocations): set ``BATCHTRACE_PRICES_UPDATE=1`` and call
``refresh_prices_from_env()`` at start-up, or call ``refresh_prices()`` directly;
``BATCHTRACE_PRICES_URL`` points it at a mirror of that JSON (for an account without access to
GitHub). A failed download logs a warning and keeps the data in use. Downloaded data replaces the
bundled data for the whole process, and the cache here is dropped whenever the library's data
changes, whoever changed it.
"""

from __future__ import annotations

import logging
import math
import os
import re
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Literal

from batchtrace.record import Usage

if TYPE_CHECKING:
    from genai_prices.data_snapshot import DataSnapshot
    from genai_prices.types import ModelInfo, ModelPrice, PriceContext, Provider

__all__ = [
    "PRICES_UPDATE_ENV",
    "PRICES_URL_ENV",
    "Cost",
    "PriceSource",
    "prepare_prices",
    "price",
    "refresh_prices",
    "refresh_prices_from_env",
]

logger = logging.getLogger(__name__)

PriceSource = Literal["genai-prices", "documented-discount", "realtime"]

#: Set to 1 (or true/yes/on) to download the newest price data at start-up.
PRICES_UPDATE_ENV: Final = "BATCHTRACE_PRICES_UPDATE"
#: Where to download it from instead of genai-prices' GitHub URL (a mirror of the same JSON).
PRICES_URL_ENV: Final = "BATCHTRACE_PRICES_URL"

_BATCH: Final[PriceContext] = MappingProxyType({"processing": "batch"})
_MTOK: Final = 1_000_000
#: How closely the measured rates must reproduce the library's price before they are trusted.
_TOLERANCE: Final = 1e-9


@dataclass(frozen=True, slots=True)
class Cost:
    """One request's cost in USD.

    ``batch_usd`` is what the provider charges for the request in a batch; ``realtime_usd`` what the
    same usage costs through the synchronous API (so ``realtime_usd - batch_usd`` is the saving).
    ``input_usd`` and ``output_usd`` split ``batch_usd`` by direction (cache reads and writes are
    input, reasoning is output); a per-request fee, if the model has one, is in ``batch_usd`` only.
    ``source`` says where the batch rate came from (see the module docstring).
    """

    batch_usd: float
    realtime_usd: float
    input_usd: float
    output_usd: float
    source: PriceSource


# --- Provider names -------------------------------------------------------------------------------

#: OpenTelemetry ``gen_ai.provider.name`` -> genai-prices provider id. Names not listed here are
#: passed to genai-prices as they are (its own matching may know them, e.g. "openrouter").
_PROVIDER_IDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "openai": "openai",
        "azure.ai.openai": "azure",
        "azure.ai.inference": "azure",
        "anthropic": "anthropic",
        "aws.bedrock": "aws",
        "gcp.gemini": "google",
        "gcp.vertex_ai": "google",
        "gcp.gen_ai": "google",
        "mistral_ai": "mistral",
        "groq": "groq",
        "together_ai": "together",
        "fireworks_ai": "fireworks",
        "x_ai": "x-ai",
        "deepseek": "deepseek",
        "cohere": "cohere",
        "perplexity": "perplexity",
    }
)


# --- Documented batch discounts -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Discount:
    """A provider's documented batch discount, applied to realtime rates when the library has no batch rate.

    ``cache_reads`` says what the provider does with cached input in a batch: ``"discounted"`` (the
    discount applies to it too), ``"standard"`` (the cache rate stays as it is: the discounts do not
    stack) or ``"input"`` (billed at the discounted uncached input rate).
    """

    factor: float
    cache_reads: Literal["discounted", "standard", "input"]


_HALF: Final = _Discount(0.5, "discounted")
_HALF_CACHE_STANDARD: Final = _Discount(0.5, "standard")

#: Keyed by OpenTelemetry provider name. Only flat discounts a provider documents are here.
_DISCOUNTS: Final[Mapping[str, _Discount]] = MappingProxyType(
    {
        # "Better cost efficiency: 50% cost discount compared to synchronous APIs"
        # https://developers.openai.com/api/docs/guides/batch
        "openai": _HALF,
        # "Process asynchronous groups of requests ... at 50% less cost than global standard"
        # https://learn.microsoft.com/en-us/azure/ai-foundry/openai/how-to/batch
        "azure.ai.openai": _HALF,
        # "reducing costs by 50%"; caching multipliers stack with the batch discount (genai-prices'
        # provider note) https://platform.claude.com/docs/en/build-with-claude/batch-processing#pricing
        "anthropic": _HALF,
        # "Batch jobs are priced at 50% less than the standard rate for a given model"
        # https://developers.googleblog.com/scale-your-ai-workloads-batch-mode-gemini-api ; the Batch tab
        # of https://ai.google.dev/gemini-api/docs/pricing keeps context caching at the standard rate.
        "gcp.gemini": _HALF_CACHE_STANDARD,
        "gcp.gen_ai": _HALF_CACHE_STANDARD,
        # "Batch processing is offered at a 50% discounted rate ... the discounts for cache and batch
        # don't stack" https://docs.cloud.google.com/vertex-ai/generative-ai/docs/multimodal/batch-prediction-gemini
        "gcp.vertex_ai": _HALF_CACHE_STANDARD,
        # "Batch ... 50% cost savings vs on-demand" (for the models that support batch inference; a model
        # in a batch result supports it) https://docs.aws.amazon.com/bedrock/latest/userguide/capacity-limits-cost-optimization.html
        "aws.bedrock": _HALF,
        # "We offer a 50% discount on batch API" https://docs.mistral.ai/capabilities/batch/ and
        # https://docs.mistral.ai/inference/pricing
        "mistral_ai": _HALF,
        # "50% cost discount compared to synchronous APIs"; it "does not stack with prompt caching: cached
        # input is billed at the halved input rate" https://console.groq.com/docs/batch (earlier versions
        # of that page said 25%; the current figure is applied to every date).
        "groq": _Discount(0.5, "input"),
        # "Batch inference is billed at 50% of serverless pricing on both input and output"
        # https://docs.fireworks.ai/serverless/pricing
        "fireworks_ai": _HALF,
        # Not here: Together AI documents "up to 50% off" on selected models
        # (https://docs.together.ai/docs/inference/batch/overview), not a flat rate.
    }
)


# --- Rates measured from the library --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rates:
    """USD per token of each part of a usage in one prompt-size tier, and a per-request fee."""

    input: float
    cache_read: float
    cache_write: float
    output: float
    reasoning: float
    request: float

    def discounted(self, discount: _Discount) -> _Rates:
        """These rates after a documented batch discount (a per-request fee keeps its price)."""
        f = discount.factor
        cache_read = {"discounted": self.cache_read * f, "standard": self.cache_read, "input": self.input * f}
        return _Rates(
            input=self.input * f,
            cache_read=cache_read[discount.cache_reads],
            cache_write=self.cache_write * f,
            output=self.output * f,
            reasoning=self.reasoning * f,
            request=self.request,
        )


@dataclass(slots=True)
class _Counts:
    """A usage as disjoint parts: uncached input, cache reads, cache writes, plain output, reasoning.

    Never changed once made, yet not ``frozen``: one is made per priced span, and a frozen
    dataclass's ``__init__`` (``object.__setattr__`` per field) takes 0.8 us against 0.2 us.
    """

    input_total: int
    input: int
    cache_read: int
    cache_write: int
    output: int
    reasoning: int


@dataclass(frozen=True, slots=True)
class _Schedule:
    """A ``ModelPrice`` as per-token rates: ``tiers[i]`` applies while ``input_total <= starts[i]``.

    genai-prices prices a whole request at the tier its total input tokens reach (a tier applies when
    ``input_tokens > start``), so the rates are constant between two tier starts.
    """

    starts: tuple[int, ...]
    tiers: tuple[_Rates, ...]

    def rates(self, input_total: int) -> _Rates:
        return self.tiers[bisect_left(self.starts, input_total)]

    def discounted(self, discount: _Discount) -> _Schedule:
        return _Schedule(self.starts, tuple(r.discounted(discount) for r in self.tiers))


def _usd(amount: Decimal) -> float:
    return float(amount)


def _tier_starts(model_price: ModelPrice) -> tuple[int, ...]:
    """Every prompt-size threshold any of the model's tiered prices changes at, in order."""
    from genai_prices.types import TieredPrices

    starts: set[int] = set()
    for value in vars(model_price).values():
        if isinstance(value, TieredPrices):
            starts.update(tier.start for tier in value.tiers)
    return tuple(sorted(starts))


def _probe(model_price: ModelPrice, **usage: int) -> tuple[float, float, float]:
    """The library's (input, output, total) price of one usage."""
    from genai_prices import Usage as PricesUsage

    calc = model_price.calc_price(PricesUsage(**usage))
    return _usd(calc["input_price"]), _usd(calc["output_price"]), _usd(calc["total_price"])


def _measure(model_price: ModelPrice, n: int) -> _Rates:
    """The per-token rates of the tier an ``n``-token prompt falls in, each measured by the library.

    Every probe carries ``input_tokens=n`` so the library picks the same tier for all of them; the cache
    parts are partitions of the input, and reasoning of the output, exactly as genai-prices reads them.
    """
    request = _probe(model_price)[2]
    if n > 0:
        uncached = _probe(model_price, input_tokens=n)[0] / n
        cache_read = _probe(model_price, input_tokens=n, cache_read_tokens=n)[0] / n
        cache_write = _probe(model_price, input_tokens=n, cache_write_tokens=n)[0] / n
    else:  # a tier that only an empty prompt falls in: there is no input to price
        uncached = cache_read = cache_write = 0.0
    output = _probe(model_price, input_tokens=n, output_tokens=_MTOK)[1] / _MTOK
    both = {"input_tokens": n, "output_tokens": _MTOK, "output_reasoning_tokens": _MTOK}
    reasoning = _probe(model_price, **both)[1] / _MTOK
    return _Rates(uncached, cache_read, cache_write, output, reasoning, request)


def _cost_parts(rates: _Rates, c: _Counts) -> tuple[float, float, float]:
    """(input, output, total) USD of a usage at these rates."""
    inp = rates.input * c.input + rates.cache_read * c.cache_read + rates.cache_write * c.cache_write
    out = rates.output * c.output + rates.reasoning * c.reasoning
    return inp, out, inp + out + rates.request


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_TOLERANCE, abs_tol=1e-15)


def _agrees(model_price: ModelPrice, rates: _Rates, n: int) -> bool:
    """Whether the rates price a mixed usage in the same tier (an ``n``-token prompt) as the library does."""
    read, write, reasoning, output = n // 4, n // 8, 2_003, 7_919
    counts = _Counts(n, n - read - write, read, write, output - reasoning, reasoning)
    expected = _probe(
        model_price,
        input_tokens=n,
        cache_read_tokens=read,
        cache_write_tokens=write,
        output_tokens=output,
        output_reasoning_tokens=reasoning,
    )
    return all(_close(got, want) for got, want in zip(_cost_parts(rates, counts), expected, strict=True))


def _schedule(model_price: ModelPrice) -> _Schedule | None:
    """The model price as per-tier rates, or ``None`` if the rates do not reproduce the library's price."""
    starts = _tier_starts(model_price)
    # One prompt size per tier: the largest that is still in it (the first tier past the last start).
    sizes = [*starts, (starts[-1] if starts else 0) + _MTOK]
    tiers: list[_Rates] = []
    for n in sizes:
        try:
            rates = _measure(model_price, n)
            agrees = _agrees(model_price, rates, n)
        except ValueError:  # units the probes cannot express (genai-prices validates usage against them)
            return None
        if not agrees:
            return None
        tiers.append(rates)
    return _Schedule(starts, tuple(tiers))


# --- Lookup, cached per (provider, model, date) -----------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class _Entry:
    """Everything ``price`` needs for one model on one UTC date."""

    provider: Provider
    model: ModelInfo
    source: PriceSource
    discount: _Discount | None
    #: ``None`` when the model's price depends on the time of day or could not be measured: then
    #: each call asks the library.
    batch: _Schedule | None
    realtime: _Schedule | None


_VERTEX_PATH = re.compile(r"^(?:.*/)?models/")
_VERSION_SUFFIX = re.compile(r"-\d{3}$")


def _model_refs(model: str) -> list[str]:
    """The reference as given, then forms genai-prices' matching may know.

    Gemini and Vertex name a model ``models/gemini-2.5-flash`` or
    ``projects/p/locations/l/publishers/google/models/gemini-2.5-flash``, and pin stable versions as
    ``gemini-2.5-flash-001``; the library matches the bare model name.
    """
    refs = [model]
    bare = _VERTEX_PATH.sub("", model)
    unversioned = _VERSION_SUFFIX.sub("", bare)
    for ref in (bare, unversioned):
        if ref and ref not in refs:
            refs.append(ref)
    return refs


_get_snapshot: Callable[[], DataSnapshot] | None = None


def _snapshot() -> DataSnapshot:
    """genai-prices' data in use, the library imported on first use.

    Importing genai-prices takes ~0.1 s (Pydantic, and httpx for its updater): a run imports it in
    :func:`prepare_prices`, while a helper process indexes the input, instead of before anything
    else can start.
    """
    global _get_snapshot
    if _get_snapshot is None:
        from genai_prices.data_snapshot import get_snapshot

        _get_snapshot = get_snapshot
    return _get_snapshot()


def _find(provider_id: str, model: str) -> tuple[Provider, ModelInfo] | None:
    snapshot = _snapshot()
    for ref in _model_refs(model):
        try:
            return snapshot.find_provider_model(ref, None, provider_id, None)
        except LookupError:
            continue
    return None


def _library_batch_rate(provider: Provider, model: ModelInfo, when: datetime) -> bool:
    """Whether genai-prices applies a batch rate to this model on this date.

    It applies a price variant whose ``when`` matches the context and whose start date has come, and
    only to the provider's own models (a model found through a fallback provider, e.g. an OpenAI
    model under ``azure``, gets the standard price).
    """
    if not any(own is model for own in provider.models):
        return False
    return any(
        all(_BATCH.get(key) == value for key, value in variant.when.items())
        and (variant.constraint is None or variant.constraint.active(when))
        for variant in model.price_variants or ()
    )


def _time_of_day_dependent(model: ModelInfo) -> bool:
    """Whether the model's price changes within a day (off-peak rates), so a date is not enough."""
    from genai_prices.types import TimeOfDateConstraint

    constraints = [p.constraint for p in model.prices] if isinstance(model.prices, list) else []
    constraints += [v.constraint for v in model.price_variants or ()]
    return any(isinstance(c, TimeOfDateConstraint) for c in constraints)


_NS_PER_DAY = 86_400 * 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=4096)
def _entry(otel_provider: str, model: str, day: int) -> _Entry | None:
    """Look the model up and turn its prices on ``day`` (days since the epoch, UTC) into rates.

    ``None`` if the library lacks it. The day is a number because every span's time is one
    (nanoseconds): finding its entry needs no ``datetime``.
    """
    provider_id = _PROVIDER_IDS.get(otel_provider, otel_provider)
    found = _find(provider_id, model)
    if found is None:
        return None
    provider, info = found
    when = datetime.combine(_EPOCH.date() + timedelta(days=day), time(12), tzinfo=UTC)  # constraints compare UTC dates
    discount = _DISCOUNTS.get(otel_provider)
    has_batch = _library_batch_rate(provider, info, when)
    source: PriceSource = "genai-prices" if has_batch else ("documented-discount" if discount else "realtime")
    if _time_of_day_dependent(info):
        return _Entry(provider, info, source, discount, None, None)
    realtime = _schedule(info.get_prices(when))
    if has_batch:
        batch = _schedule(info.get_prices(when, _BATCH))
    elif realtime is not None and discount is not None:
        batch = realtime.discounted(discount)
    else:
        batch = realtime
    if realtime is None or batch is None:
        return _Entry(provider, info, source, discount, None, None)
    return _Entry(provider, info, source, discount, batch, realtime)


_seen_snapshot: object = None


def _follow_price_data() -> None:
    """Drop the cache when the library's data changed (``refresh_prices`` or anyone's ``UpdatePrices``)."""
    global _seen_snapshot
    snapshot = _snapshot()
    if snapshot is not _seen_snapshot:
        _entry.cache_clear()
        _seen_snapshot = snapshot


# --- Public API -----------------------------------------------------------------------------------


def _counts_of(
    input_tokens: int = 0,
    output_tokens: int = 0,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
    output_reasoning_tokens: int = 0,
) -> _Counts | None:
    """Split totals into disjoint parts; ``None`` if the parts exceed their totals (inconsistent usage)."""
    uncached = input_tokens - cache_read_tokens - cache_write_tokens
    plain_output = output_tokens - output_reasoning_tokens
    if min(uncached, plain_output, cache_read_tokens, cache_write_tokens, output_reasoning_tokens) < 0:
        return None
    return _Counts(input_tokens, uncached, cache_read_tokens, cache_write_tokens, plain_output, output_reasoning_tokens)


def _counts(usage: Usage) -> _Counts | None:
    return _counts_of(
        usage.input_tokens or 0,
        usage.output_tokens or 0,
        usage.cache_read_tokens or 0,
        usage.cache_creation_tokens or 0,
        usage.reasoning_tokens or 0,
    )


def _request_time(at: datetime | None) -> datetime:
    """The request's time in UTC; naive means UTC (as genai-prices reads it), ``None`` means now."""
    if at is None:
        return datetime.now(UTC)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _from_rates(entry: _Entry, batch: _Schedule, realtime: _Schedule, c: _Counts) -> Cost:
    inp, out, total = _cost_parts(batch.rates(c.input_total), c)
    realtime_total = _cost_parts(realtime.rates(c.input_total), c)[2]
    return Cost(total, realtime_total, inp, out, entry.source)


def _from_library(entry: _Entry, c: _Counts, when: datetime) -> Cost | None:
    """Ask the library for this one request (prices that change within a day, or unmeasurable ones)."""
    from genai_prices import Usage as PricesUsage

    usage = PricesUsage(
        input_tokens=c.input_total,
        output_tokens=c.output + c.reasoning,
        cache_read_tokens=c.cache_read,
        cache_write_tokens=c.cache_write,
        output_reasoning_tokens=c.reasoning,
    )

    def parts(context: PriceContext | None) -> tuple[float, float, float]:
        calc = entry.model.calc_price(usage, entry.provider, genai_request_timestamp=when, price_context=context)
        return _usd(calc.input_price), _usd(calc.output_price), _usd(calc.total_price)

    try:
        realtime = parts(None)
        batch = parts(_BATCH) if entry.source == "genai-prices" else realtime
    except ValueError:  # usage the model's units cannot take: the price is unknown, not zero
        return None
    if entry.source == "documented-discount" and entry.discount is not None:
        f = entry.discount.factor  # on this rare path the discount applies to the whole price
        batch = (realtime[0] * f, realtime[1] * f, realtime[2] * f)
    return Cost(batch[2], realtime[2], batch[0], batch[1], entry.source)


def price(provider: str, model: str | None, usage: Usage, at: datetime | None) -> Cost | None:
    """The cost of one batch request, or ``None`` when it cannot be known.

    ``provider`` is the OpenTelemetry ``gen_ai.provider.name`` (``openai``, ``azure.ai.openai``,
    ``anthropic``, ``aws.bedrock``, ``gcp.gemini``, ``gcp.vertex_ai``, ``mistral_ai``, ``groq``,
    ``together_ai``, ``fireworks_ai``, ...); ``model`` the model as the request or response names it
    (Bedrock ids and inference profiles, Vertex resource paths and pinned versions included, as far
    as genai-prices matches them). ``at`` is when the request ran: prices change, and a batch is
    charged at the rate of its day (naive means UTC; ``None`` means now).

    ``None`` when there is no model, no usage reported, the library does not know the model, or the
    usage is inconsistent (cached tokens above the input, reasoning above the output): an unknown
    price, never a zero one.
    """
    if model is None:
        return None
    return price_at_ns(provider, [model], usage, (_request_time(at) - _EPOCH) // timedelta(microseconds=1) * 1000)


def price_at_ns(provider: str, models: Sequence[str], usage: Usage, at_ns: int) -> Cost | None:
    """:func:`price` for the first of ``models`` that has a price, at ``at_ns`` (epoch nanoseconds, UTC).

    The span workers' way in: once per request, so the day's rates are found by a number, not a
    ``datetime`` (one is made only for the rare prices that change within a day).
    """
    if not usage.reported:
        return None
    counts = _counts(usage)
    if counts is None:
        return None
    _follow_price_data()
    day = at_ns // _NS_PER_DAY
    for model in models:
        entry = _entry(provider, model, day)
        if entry is None:
            continue
        if entry.batch is not None and entry.realtime is not None:
            return _from_rates(entry, entry.batch, entry.realtime, counts)
        cost = _from_library(entry, counts, _EPOCH + timedelta(microseconds=at_ns // 1000))
        if cost is not None:
            return cost
    return None


def refresh_prices(url: str | None = None) -> bool:
    """Download the newest genai-prices data now and use it for every later price; ``True`` if it did.

    One synchronous download through the library's ``UpdatePrices.fetch`` (its timeouts: 10 s, 5 s to
    connect), from ``url`` or genai-prices' own GitHub URL. On failure the data in use stays and a
    warning is logged: a stale price beats no trace.
    """
    from genai_prices import UpdatePrices

    updater = UpdatePrices(url=url) if url else UpdatePrices()
    try:
        snapshot = updater.fetch()
    except Exception as exc:  # network, HTTP status, or a payload that does not validate
        logger.warning("genai-prices data not updated from %s: %s: %s", updater.url, type(exc).__name__, exc)
        return False
    if snapshot is None:
        return False
    from genai_prices.data_snapshot import set_custom_snapshot

    set_custom_snapshot(snapshot)
    _follow_price_data()
    logger.info("genai-prices data updated from %s (%d providers)", updater.url, len(snapshot.providers))
    return True


def refresh_prices_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """``refresh_prices`` if ``BATCHTRACE_PRICES_UPDATE`` is on (from ``BATCHTRACE_PRICES_URL`` if set).

    Off by default: the bundled data needs no network, and a run should not depend on GitHub.
    """
    env = os.environ if environ is None else environ
    if env.get(PRICES_UPDATE_ENV, "").strip().lower() not in {"1", "true", "yes", "on"}:
        return False
    return refresh_prices(env.get(PRICES_URL_ENV) or None)


def prepare_prices(environ: Mapping[str, str] | None = None) -> None:
    """Once a run, before span workers fork: refresh the data if switched on, and load it either way.

    Loading the bundled data takes ~40 ms and ~4 MB; done here, forked workers share it instead of
    each loading its own copy.
    """
    refresh_prices_from_env(environ)
    _follow_price_data()
