"""A naive in-memory baseline, for machines where the seed (respan-ai) cannot be installed.

Does what the seed does, with the stock OpenTelemetry pipeline: load both files whole, index
requests in a dict, start one span per result through a tracer, BatchSpanProcessor with its
queue raised to the batch size, OTLPSpanExporter. Usage: ``python -m tests.bench.naive_baseline
ENDPOINT INPUT OUTPUT``.
"""

from __future__ import annotations

import json
import sys

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def main(endpoint: str, input_path: str, output_path: str) -> None:
    with open(input_path, encoding="utf-8") as fh:
        requests = {r["custom_id"]: r.get("body", {}) for r in map(json.loads, fh)}
    with open(output_path, encoding="utf-8") as fh:
        results = [json.loads(line) for line in fh]
    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint), max_queue_size=max(len(results) + 1, 512))
    )
    tracer = provider.get_tracer("naive-baseline")
    for result in results:
        body = (result.get("response") or {}).get("body") or {}
        request = requests.get(result["custom_id"], {})
        usage = body.get("usage") or {}
        with tracer.start_as_current_span(f"chat {request.get('model', '')}") as span:
            span.set_attribute("gen_ai.request.model", request.get("model", ""))
            span.set_attribute("gen_ai.usage.input_tokens", usage.get("prompt_tokens", 0))
            span.set_attribute("gen_ai.usage.output_tokens", usage.get("completion_tokens", 0))
            span.set_attribute("traceloop.entity.input", json.dumps(request.get("messages", [])))
            span.set_attribute("traceloop.entity.output", json.dumps(body.get("choices", [])))
    provider.force_flush()
    provider.shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:4])
