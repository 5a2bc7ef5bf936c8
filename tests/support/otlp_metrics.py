"""Decoding OTLP metrics (``ExportMetricsServiceRequest``, real protobuf) into plain values for assertions.

The :class:`~tests.support.otlp_receiver.OtlpReceiver` accepts ``POST /v1/metrics`` and keeps every
data point it accepted as a :class:`ReceivedPoint`; :func:`totals` sums them by attribute, which is
what a test compares with a run's summary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, Metric

from tests.support.otlp_receiver import decode_any_value

__all__ = ["ReceivedPoint", "count_points", "counts", "decode_metrics", "totals"]


@dataclass(frozen=True)
class ReceivedPoint:
    """One data point of one metric, flattened.

    ``kind`` is the OTLP data case (``sum``, ``gauge``, ``histogram``, ``exponential_histogram``,
    ``summary``); ``value`` is a number point's value, or a histogram's sum. Histogram points also
    carry ``count``, ``bucket_counts``, ``explicit_bounds``, ``min`` and ``max``. ``temporality`` is
    ``DELTA``, ``CUMULATIVE`` or ``""`` (gauges).
    """

    name: str
    unit: str
    kind: str
    attributes: dict[str, Any]
    value: float
    start_ns: int
    time_ns: int
    temporality: str = ""
    monotonic: bool = False
    count: int = 0
    bucket_counts: tuple[int, ...] = ()
    explicit_bounds: tuple[float, ...] = ()
    min: float | None = None
    max: float | None = None
    description: str = ""
    resource: dict[str, Any] = field(default_factory=dict)
    scope_name: str = ""


def decode_attributes(kvs: Iterable[Any]) -> dict[str, Any]:
    return {kv.key: decode_any_value(kv.value) for kv in kvs}


def _temporality(data: Any) -> str:
    value = getattr(data, "aggregation_temporality", 0)
    return AggregationTemporality.Name(value).removeprefix("AGGREGATION_TEMPORALITY_") if value else ""


def _number(point: Any) -> float:
    return point.as_int if point.WhichOneof("value") == "as_int" else point.as_double


def _points(metric: Metric, common: dict[str, Any]) -> Iterable[ReceivedPoint]:
    kind = metric.WhichOneof("data")
    data = getattr(metric, kind)
    shared = {
        **common,
        "kind": kind,
        "temporality": _temporality(data),
        "monotonic": getattr(data, "is_monotonic", False),
    }
    for point in data.data_points:
        base = {
            **shared,
            "attributes": decode_attributes(point.attributes),
            "start_ns": point.start_time_unix_nano,
            "time_ns": point.time_unix_nano,
        }
        if kind in ("sum", "gauge"):
            yield ReceivedPoint(**base, value=_number(point))
        elif kind == "histogram":
            yield ReceivedPoint(
                **base,
                value=point.sum,
                count=point.count,
                bucket_counts=tuple(point.bucket_counts),
                explicit_bounds=tuple(point.explicit_bounds),
                min=point.min if point.HasField("min") else None,
                max=point.max if point.HasField("max") else None,
            )
        else:
            yield ReceivedPoint(**base, value=point.sum, count=point.count)


def decode_metrics(request: ExportMetricsServiceRequest) -> list[ReceivedPoint]:
    """Every data point of an export request, in wire order."""
    out: list[ReceivedPoint] = []
    for rm in request.resource_metrics:
        resource = decode_attributes(rm.resource.attributes)
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                common = {
                    "name": metric.name,
                    "unit": metric.unit,
                    "description": metric.description,
                    "resource": resource,
                    "scope_name": sm.scope.name,
                }
                out.extend(_points(metric, common))
    return out


def count_points(request: ExportMetricsServiceRequest) -> int:
    return sum(
        len(getattr(metric, metric.WhichOneof("data")).data_points)
        for rm in request.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.WhichOneof("data")
    )


def totals(points: Iterable[ReceivedPoint], name: str, *keys: str) -> dict[tuple[Any, ...], float]:
    """``name``'s values (a histogram's sum) added up by the attributes ``keys``: ``{(v1, v2): total}``."""
    out: dict[tuple[Any, ...], float] = {}
    for point in points:
        if point.name == name:
            key = tuple(point.attributes.get(k) for k in keys)
            out[key] = out.get(key, 0) + point.value
    return out


def counts(points: Iterable[ReceivedPoint], name: str, *keys: str) -> Mapping[tuple[Any, ...], int]:
    """A histogram's measurement counts added up by the attributes ``keys``."""
    out: dict[tuple[Any, ...], int] = {}
    for point in points:
        if point.name == name:
            key = tuple(point.attributes.get(k) for k in keys)
            out[key] = out.get(key, 0) + point.count
    return out
