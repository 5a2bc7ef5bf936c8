"""A run's metrics over OTLP/HTTP, once, after its spans: tokens, outcomes, time and cost.

What goes out (attributes ``gen_ai.provider.name``, ``gen_ai.request.model`` when known and
``gen_ai.operation.name`` on every point but the lifecycle's, which carry the provider only):

``gen_ai.client.token.usage`` (histogram, ``{token}``)
    The semantic conventions' metric: one measurement per request and ``gen_ai.token.type``
    (``input``, ``output``), with the conventions' advised buckets. The per-request values are
    aggregated where the records are built (see :mod:`batchtrace.breakdown` for why there, and
    not by the SDK's instrument) and handed to the SDK's exporter as an SDK histogram point.
``batchtrace.batch.requests`` (counter, ``{request}``)
    Completions by ``batchtrace.outcome``: ``succeeded``, ``failed``, ``expired``, ``no_result``.
``batchtrace.batch.queue_time``, ``batchtrace.batch.run_time`` (histograms, ``s``)
    Only when the batch's lifecycle is known (:func:`lifecycle_seconds`).
``batchtrace.batch.cost`` (counter, ``{USD}``)
    By ``batchtrace.cost.rate``: ``batch`` (the rate charged) and ``realtime`` (what the synchronous
    API would have charged), for the models with a known price only: never a made-up zero.

Where: the standard variables, ``OTEL_EXPORTER_OTLP_METRICS_*`` over ``OTEL_EXPORTER_OTLP_*``
(endpoint, headers, compression, timeout, certificates, temporality preference), through the
SDK's ``OTLPMetricExporter``. ``OTEL_METRICS_EXPORTER=none`` turns them off. Unlike the SDK,
metrics are sent only when a metrics destination is named (``OTEL_METRICS_EXPORTER=otlp``, or a
metrics or shared endpoint): spans often go to a traces-only backend (Respan's ``/v2/traces``,
Jaeger, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` alone), and guessing ``localhost:4318`` for the
metrics there would only produce a warning on every run. To the traces' host, the traces'
headers (a credential from Secrets Manager, say) go along.

Best effort: the spans are the product, metrics are not. Any failure (a bad setting, an
unreachable or refusing endpoint, a bug here) is one warning line and never an exception, an
exit code or a changed summary; the exporter's own retry chatter is held back for that one line,
and the wait is capped at :data:`MAX_EXPORT_S` whatever the configured timeout.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import Histogram as HistogramInstrument
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    MetricExportResult,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from batchtrace import __version__
from batchtrace import semconv as sc
from batchtrace.breakdown import TOKEN_BUCKETS, ModelUsage, TokenHistogram, UsageKey
from batchtrace.send.otlp_config import OtlpConfig

if TYPE_CHECKING:
    from batchtrace.plan import BatchPlan
    from batchtrace.tally import Tally

logger = logging.getLogger(__name__)

METRICS_EXPORTER_ENV: Final = "OTEL_METRICS_EXPORTER"
#: The longest a run waits for its metrics (all attempts), whatever ``..._TIMEOUT`` says.
MAX_EXPORT_S: Final = 3.0
#: Variables that name a metrics destination, so metrics go out without ``OTEL_METRICS_EXPORTER=otlp``.
DESTINATION_VARIABLES: Final = ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
SCOPE_NAME: Final = "batchtrace"
#: Batches wait and run from minutes to a day (OpenAI's completion window is 24 h).
LIFECYCLE_BUCKETS_S: Final = (60, 300, 900, 1_800, 3_600, 7_200, 14_400, 28_800, 43_200, 86_400, 172_800)
#: The logger the SDK's OTLP metric exporter (and its HTTP client) writes to.
_EXPORTER_LOGGER: Final = "opentelemetry.exporter.otlp.proto.http.metric_exporter"
_TOKEN_USAGE_DESCRIPTION: Final = "Number of input and output tokens used."
#: The exporter's retry line around an HTTP reason ("Service Unavailable"): only the reason is kept.
_RETRY_TALK: Final = re.compile(r"^Transient error (.*) encountered while exporting \w+ batch, retrying in .*$")

Temporality = dict[type, AggregationTemporality] | None
#: Builds the run's metrics for the exporter's temporality preference.
BuildMetrics = Callable[[Temporality], MetricsData]


def _exporters(env: Mapping[str, str]) -> frozenset[str] | None:
    """``OTEL_METRICS_EXPORTER``'s names (a comma-separated list), or ``None`` when unset."""
    raw = env.get(METRICS_EXPORTER_ENV, "").strip().lower()
    return frozenset(name.strip() for name in raw.split(",") if name.strip()) if raw else None


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.rpartition("@")[2].lower()


def metrics_wanted(env: Mapping[str, str]) -> bool:
    """``OTEL_METRICS_EXPORTER`` names ``otlp`` (and not ``none``), or, unset, a metrics destination is named."""
    chosen = _exporters(env)
    if chosen is None:
        return any(env.get(name, "").strip() for name in DESTINATION_VARIABLES)
    if "none" in chosen:
        return False
    if "otlp" not in chosen:
        names = ",".join(sorted(chosen))
        logger.warning("%s=%s: batchtrace sends metrics over OTLP only; no metrics sent", METRICS_EXPORTER_ENV, names)
    return "otlp" in chosen


def metrics_destination(traces: OtlpConfig, env: Mapping[str, str] | None = None) -> OtlpConfig | None:
    """Where the run's metrics go, or ``None`` when they are off (see the module docstring).

    Raises :class:`~batchtrace.errors.InputError` for an unusable setting (the caller warns).
    """
    env = os.environ if env is None else env
    if not metrics_wanted(env):
        return None
    config = OtlpConfig.resolve(env=env, signal="metrics")
    if _origin(config.endpoint) == _origin(traces.endpoint):
        config = replace(config, headers={**traces.headers, **config.headers})
    return replace(config, timeout_s=min(config.timeout_s, MAX_EXPORT_S))


def lifecycle_seconds(plan: BatchPlan) -> dict[str, float]:
    """The batch's queue and run time in seconds, by metric name; only those its lifecycle knows."""
    lifecycle = plan.lifecycle
    figures = {sc.METRIC_BATCH_QUEUE_TIME: lifecycle.queue_time_s, sc.METRIC_BATCH_RUN_TIME: lifecycle.run_time_s}
    return {name: seconds for name, seconds in figures.items() if seconds is not None}


def _model_attributes(key: UsageKey) -> dict[str, str]:
    provider, model, operation = key
    attributes = {sc.PROVIDER_NAME: provider, sc.OPERATION_NAME: operation}
    if model:
        attributes[sc.REQUEST_MODEL] = model
    return attributes


def _histogram_point(
    histogram: TokenHistogram, attributes: dict[str, str], start_ns: int, now_ns: int
) -> HistogramDataPoint:
    return HistogramDataPoint(
        attributes=attributes,
        start_time_unix_nano=start_ns,
        time_unix_nano=now_ns,
        count=histogram.count,
        sum=histogram.total,
        bucket_counts=list(histogram.buckets),
        explicit_bounds=[float(bound) for bound in TOKEN_BUCKETS],
        min=histogram.min or 0,
        max=histogram.max or 0,
    )


def token_usage_metric(
    by_model: Mapping[UsageKey, ModelUsage], start_ns: int, now_ns: int, temporality: AggregationTemporality
) -> Metric | None:
    """``gen_ai.client.token.usage`` from the run's per-request histograms; ``None`` if no request reported usage."""
    points = [
        _histogram_point(histogram, {**_model_attributes(key), sc.TOKEN_TYPE: token_type}, start_ns, now_ns)
        for key, usage in sorted(by_model.items(), key=lambda item: str(item[0]))
        for token_type, histogram in ((sc.TOKEN_TYPE_INPUT, usage.input), (sc.TOKEN_TYPE_OUTPUT, usage.output))
        if histogram.count
    ]
    if not points:
        return None
    return Metric(sc.METRIC_TOKEN_USAGE, _TOKEN_USAGE_DESCRIPTION, "{token}", Histogram(points, temporality))


def _record_outcomes(meter: Meter, by_model: Mapping[UsageKey, ModelUsage]) -> None:
    requests = meter.create_counter(sc.METRIC_BATCH_REQUESTS, "{request}", "Completions of a batch by outcome.")
    for key, usage in by_model.items():
        attributes = _model_attributes(key)
        for outcome, count in usage.outcomes().items():
            requests.add(count, {**attributes, sc.OUTCOME: outcome})


def _record_cost(meter: Meter, by_model: Mapping[UsageKey, ModelUsage]) -> None:
    cost = meter.create_counter(sc.METRIC_BATCH_COST, "{USD}", "What a batch's priced requests cost, by rate.")
    for key, usage in by_model.items():
        if usage.priced:
            attributes = _model_attributes(key)
            cost.add(usage.cost_usd, {**attributes, sc.COST_RATE: "batch"})
            cost.add(usage.cost_realtime_usd, {**attributes, sc.COST_RATE: "realtime"})


def _record_lifecycle(meter: Meter, lifecycle: Mapping[str, float], attributes: dict[str, str]) -> None:
    for name, seconds in lifecycle.items():
        histogram = meter.create_histogram(
            name,
            "s",
            "A batch's time in the provider's queue, or running.",
            explicit_bucket_boundaries_advisory=LIFECYCLE_BUCKETS_S,
        )
        histogram.record(seconds, attributes)


def _collected(reader: InMemoryMetricReader) -> list[Metric]:
    data = reader.get_metrics_data()
    if data is None:
        return []
    return [metric for rm in data.resource_metrics for sm in rm.scope_metrics for metric in sm.metrics]


def build_metrics_data(
    tally: Tally,
    lifecycle: Mapping[str, float],
    resource: Resource,
    *,
    started_ns: int,
    provider: str | None = None,
    temporality: Temporality = None,
) -> MetricsData:
    """The run's metrics as the SDK's exporters take them: recorded through the SDK's API, plus the token histogram."""
    reader = InMemoryMetricReader(preferred_temporality=temporality)
    meter_provider = MeterProvider(metric_readers=[reader], resource=resource, shutdown_on_exit=False)
    try:
        meter = meter_provider.get_meter(SCOPE_NAME, __version__)
        _record_outcomes(meter, tally.by_model)
        _record_cost(meter, tally.by_model)
        _record_lifecycle(meter, lifecycle, {sc.PROVIDER_NAME: provider} if provider else {})
        metrics = _collected(reader)
    finally:
        meter_provider.shutdown()
    histogram_temporality = (temporality or {}).get(HistogramInstrument, AggregationTemporality.CUMULATIVE)
    tokens = token_usage_metric(tally.by_model, started_ns, time.time_ns(), histogram_temporality)
    if tokens is not None:
        metrics.insert(0, tokens)
    scope = ScopeMetrics(InstrumentationScope(SCOPE_NAME, __version__), metrics, "")
    return MetricsData([ResourceMetrics(resource, [scope], "")])


def _wrapped(error: BaseException) -> BaseException | None:
    """The error ``error`` reports on: urllib3 keeps it in ``reason``, requests in ``args[0]``."""
    for inner in (getattr(error, "reason", None), error.args[0] if error.args else None, error.__cause__):
        if isinstance(inner, BaseException):
            return inner
    return None


def describe(error: BaseException) -> str:
    """``Type: message`` of the innermost error: what went wrong, without the wrappers' retry talk."""
    for _ in range(5):
        inner = _wrapped(error)
        if inner is None:
            break
        error = inner
    return f"{type(error).__name__}: {error}"


class _HeldLog(logging.Filter):
    """Holds what the SDK's exporter logs during one export (its retries, its failure), unprinted.

    A run whose metrics endpoint is down then says so in one warning of its own, with the
    exporter's first word on why, instead of a line per retry.
    """

    def __init__(self) -> None:
        super().__init__()
        self.reasons: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        error = next((arg for arg in args if isinstance(arg, BaseException)), None)
        self.reasons.append(describe(error) if error is not None else _RETRY_TALK.sub(r"\1", record.getMessage()))
        return False

    def __enter__(self) -> _HeldLog:
        logging.getLogger(_EXPORTER_LOGGER).addFilter(self)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        logging.getLogger(_EXPORTER_LOGGER).removeFilter(self)


def export_metrics(destination: OtlpConfig, build: BuildMetrics) -> str | None:
    """Build the metrics (for the exporter's temporality) and export them once; why not, or ``None`` when sent."""
    # Imported here: a run without a metrics destination never pays for the exporter's imports.
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    exporter = OTLPMetricExporter(
        endpoint=destination.endpoint,
        headers=dict(destination.headers),
        timeout=destination.timeout_s,
        compression=Compression(destination.compression),
    )
    try:
        # The exporter resolved OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE; the data must follow it.
        data = build(exporter._preferred_temporality)
        with _HeldLog() as held:
            result = exporter.export(data)
    finally:
        exporter.shutdown()
    if result is MetricExportResult.SUCCESS:
        return None
    return held.reasons[0] if held.reasons else "the exporter gave no reason"


def send_run_metrics(
    plan: BatchPlan,
    tally: Tally,
    resource: Resource,
    duration_s: float,
    env: Mapping[str, str] | None = None,
) -> bool:
    """Send the run's metrics if a destination is configured; whether they were sent. Never raises."""
    where = "the metrics endpoint"
    try:
        destination = metrics_destination(plan.otlp, env)
        if destination is None:
            return False
        where = destination.endpoint
        provider = plan.format.adapter.provider if plan.format.adapter else plan.lifecycle.provider
        lifecycle = lifecycle_seconds(plan)
        started_ns = time.time_ns() - int(duration_s * 1e9)

        def build(temporality: Temporality) -> MetricsData:
            return build_metrics_data(
                tally, lifecycle, resource, started_ns=started_ns, provider=provider, temporality=temporality
            )

        failure = export_metrics(destination, build)
    except Exception as err:  # best effort: nothing about metrics may fail the run
        failure = f"{type(err).__name__}: {err}"
    if failure:
        logger.warning("metrics not sent to %s: %s (OTEL_METRICS_EXPORTER=none turns them off)", where, failure)
    return failure is None
