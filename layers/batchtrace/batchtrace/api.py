"""The library entry point with the seed's signature: ``log_batch_results(requests, results, trace_id=None)``."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from batchtrace.errors import DeliveryError
from batchtrace.run import run_batch
from batchtrace.send.workers import configured_workers
from batchtrace.tally import Summary
from batchtrace.trace_link import TraceHint


def _jsonl(lines: Iterable[Any]) -> io.BytesIO:
    buffer = io.BytesIO()
    for line in lines:
        buffer.write(orjson.dumps(line, default=str))
        buffer.write(b"\n")
    buffer.seek(0)
    return buffer


def log_batch_results(
    requests: list[dict[str, Any]],
    results: list[dict[str, Any]],
    trace_id: str | None = None,
    *,
    batch_id: str | None = None,
    batch: Mapping[str, Any] | None = None,
    provider: str | None = None,
    model: str | None = None,
    **options: Any,
) -> Summary:
    """Log batch API results as spans (one per request), linked as the seed documents.

    ``requests`` and ``results`` are the batch's input and output lines as dicts, of any
    supported provider's format (detected, or named with ``provider``); for formats whose
    results carry their requests (Bedrock, Vertex AI) ``requests`` may be empty. ``model``
    names the model where the lines do not (Mistral, Gemini).

    Inside ``with tracer.start_as_current_span(...)`` the completions nest under that span;
    with ``trace_id`` (saved when the batch was submitted) they go under a ``batch_results``
    span in that trace; otherwise into a new trace. ``results`` may mix output and error-file
    lines. Spans go to the ``OTEL_EXPORTER_OTLP_*`` destination before this returns.

    Returns the :class:`Summary`; raises :class:`DeliveryError` (carrying it) when some spans
    could not be delivered, and :class:`InvalidTraceContextError` for a malformed ``trace_id``.
    It runs in the caller's process (no forked workers, which a threaded application may not
    survive) unless ``workers=N`` or ``BATCHTRACE_WORKERS`` asks for them.
    """
    if "workers" not in options and configured_workers() is None:
        options["workers"] = 0
    summary = run_batch(
        _jsonl(requests) if requests else None,
        [("results", _jsonl(results))],
        batch_id=batch_id,
        batch=batch,
        hint=TraceHint(trace_id=trace_id, use_active_context=True),
        provider=provider,
        model=model,
        input_name="requests",
        **options,
    )
    if summary.spans_failed:
        raise DeliveryError(summary)
    return summary
