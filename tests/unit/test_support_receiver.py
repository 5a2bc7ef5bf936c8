"""The test-support servers work with the real OpenTelemetry SDK and exporter.

Every end-to-end test trusts these receivers to tell the truth about what arrived, so they are
checked here against the real ``OTLPSpanExporter`` (not a hand-built request), including its retry
behaviour, before anything else relies on them.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import pytest
import requests
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.support.moto_s3 import MotoServer, aws_env
from tests.support.otlp_receiver import DROPPED, OtlpReceiver, ReceivedSpan, unused_port
from tests.support.trace_tree import render_trace_tree

pytestmark = pytest.mark.timeout(20)


@contextmanager
def sdk_tracer(endpoint: str, compression: Compression = Compression.NoCompression) -> Iterator[TracerProvider]:
    """A private TracerProvider exporting each span synchronously to ``endpoint``.

    SimpleSpanProcessor exports when a span ends, so by the time ``with`` exits every span has
    been sent (or given up on); no global provider is installed, so tests do not interfere.
    """
    exporter = OTLPSpanExporter(endpoint=endpoint, compression=compression, timeout=5)
    provider = TracerProvider(resource=Resource.create({"service.name": "support-test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield provider
    finally:
        provider.shutdown()


def _one_span(endpoint: str) -> None:
    with sdk_tracer(endpoint) as provider, provider.get_tracer("t").start_as_current_span("only"):
        pass


def _raw_request(n_spans: int) -> bytes:
    """A minimal serialized ExportTraceServiceRequest, for requests that bypass the SDK."""
    spans = [Span(trace_id=bytes(16), span_id=i.to_bytes(8, "big"), name=f"s{i}") for i in range(1, n_spans + 1)]
    req = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])
    return req.SerializeToString()


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip, Compression.Deflate])
def test_real_exporter_spans_arrive_decoded(compression: Compression) -> None:
    with OtlpReceiver() as rx, sdk_tracer(rx.endpoint, compression) as provider:
        tracer = provider.get_tracer("batchtrace.test", "1.2.3")
        with (
            tracer.start_as_current_span("batch_results") as parent,
            tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as child,
        ):
            child.set_attribute("gen_ai.usage.input_tokens", 12)
            child.set_attribute("gen_ai.request.temperature", 0.5)
            child.set_attribute("gen_ai.response.finish_reasons", ["stop", "length"])
            child.set_attribute("batchtrace.custom_id", "req-1")
            child.set_attribute("flag", True)
            child.set_status(Status(StatusCode.ERROR, "boom"))
        assert rx.wait_for_spans(2, timeout=5)

        assert rx.attempts == 2  # SimpleSpanProcessor: one export per span
        (got_child,) = rx.spans_by_name("chat gpt-4o-mini")
        (got_parent,) = rx.spans_by_name("batch_results")
        pctx, cctx = parent.get_span_context(), child.get_span_context()
        assert got_parent.trace_id == format(pctx.trace_id, "032x")
        assert got_parent.span_id == format(pctx.span_id, "016x")
        assert got_parent.parent_span_id is None
        assert got_child.trace_id == got_parent.trace_id
        assert got_child.span_id == format(cctx.span_id, "016x")
        assert got_child.parent_span_id == got_parent.span_id
        assert (got_child.kind, got_parent.kind) == ("CLIENT", "INTERNAL")
        assert (got_child.status_code, got_child.status_message) == ("ERROR", "boom")
        assert got_parent.status_code == "UNSET"
        assert got_child.attributes == {
            "gen_ai.usage.input_tokens": 12,
            "gen_ai.request.temperature": 0.5,
            "gen_ai.response.finish_reasons": ["stop", "length"],
            "batchtrace.custom_id": "req-1",
            "flag": True,
        }
        assert got_child.resource["service.name"] == "support-test"
        assert (got_child.scope_name, got_child.scope_version) == ("batchtrace.test", "1.2.3")
        assert 0 < got_child.start_ns <= got_child.end_ns
        assert sorted(rx.span_ids()) == sorted([got_parent.span_id, got_child.span_id])

        req = rx.requests[0]
        assert (req.path, req.status, req.span_count) == ("/v1/traces", 200, 1)
        assert req.headers["content-type"] == "application/x-protobuf"
        expected_encoding = {Compression.Gzip: "gzip", Compression.Deflate: "deflate"}.get(compression)
        assert req.headers.get("content-encoding") == expected_encoding


def test_fail_first_503_is_retried_once_and_span_recorded_once() -> None:
    # Retry-After: 0 keeps the exporter from backing off ~1 s before its retry.
    with OtlpReceiver(fail_first=1, fail_status=503, retry_after="0") as rx:
        _one_span(rx.endpoint)
        assert rx.wait_for_spans(1, timeout=5)
        assert rx.attempts == 2
        assert rx.statuses() == [503, 200]
        assert [s.name for s in rx.spans] == ["only"]


def test_always_400_records_attempt_but_no_spans() -> None:
    with OtlpReceiver(always_status=400) as rx:
        _one_span(rx.endpoint)
        assert rx.attempts == 1  # 400 is not retryable
        assert rx.statuses() == [400]
        assert rx.spans == [] and rx.span_count == 0


def test_max_body_bytes_gives_413() -> None:
    with OtlpReceiver(max_body_bytes=10) as rx:
        exporter = OTLPSpanExporter(endpoint=rx.endpoint, timeout=5)
        provider = TracerProvider()
        span = provider.get_tracer("t").start_span("too big")  # no processor: export by hand
        span.end()
        assert exporter.export([span]) is SpanExportResult.FAILURE  # type: ignore[list-item]
        exporter.shutdown()
        assert rx.statuses() == [413]
        assert rx.requests[0].decoded_size > 10
        assert rx.spans == []


def test_dropped_connection_then_success_and_runtime_faults() -> None:
    with OtlpReceiver(drop_connection_first=1) as rx:
        _one_span(rx.endpoint)  # the exporter retries a connection error at once
        assert rx.wait_for_spans(1, timeout=5)
        assert rx.statuses() == [DROPPED, 200]

        rx.set_faults(always_status=500)
        _one_span(rx.endpoint)
        assert rx.statuses()[-1] == 500 and rx.span_count == 1

        rx.clear_faults()
        _one_span(rx.endpoint)
        assert rx.span_count == 2
        with pytest.raises(TypeError):
            rx.set_faults(fail_frist=1)


def test_raw_posts_paths_encodings_and_rejections() -> None:
    body = _raw_request(3)
    with OtlpReceiver() as rx:
        proto = {"Content-Type": "application/x-protobuf"}
        r = requests.post(f"{rx.base_url}/api/v2/traces", data=body, headers=proto, timeout=5)
        assert r.status_code == 200 and r.headers["Content-Type"] == "application/x-protobuf"
        assert ExportTraceServiceResponse.FromString(r.content) == ExportTraceServiceResponse()
        raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        for data, encoding in (
            (gzip.compress(body), "gzip"),
            (raw_deflate.compress(body) + raw_deflate.flush(), "deflate"),
        ):
            headers = {**proto, "Content-Encoding": encoding}
            assert requests.post(rx.endpoint, data=data, headers=headers, timeout=5).status_code == 200
        assert requests.post(f"{rx.base_url}/v1/logs", data=body, headers=proto, timeout=5).status_code == 404
        json_headers = {"Content-Type": "application/json"}
        assert requests.post(rx.endpoint, data=b"{}", headers=json_headers, timeout=5).status_code == 415
        assert requests.post(rx.endpoint, data=b"\xff\xff", headers=proto, timeout=5).status_code == 400
        assert rx.span_count == 9 and len(rx.spans) == 9
        assert rx.spans[0].parent_span_id is None and rx.spans[0].span_id == "0000000000000001"


def test_count_only_and_max_requests_cap() -> None:
    body = _raw_request(5)
    headers = {"Content-Type": "application/x-protobuf"}
    with OtlpReceiver(count_only=True, max_requests=3) as rx:
        with requests.Session() as session:
            for _ in range(3):
                assert session.post(rx.endpoint, data=body, headers=headers, timeout=5).status_code == 200
            assert rx.span_count == 15 and rx.spans == []
            with pytest.raises(requests.ConnectionError):
                session.post(rx.endpoint, data=body, headers=headers, timeout=2)
        assert rx.attempts == 3


def test_unused_port_refuses_connections() -> None:
    port = unused_port()
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=0.5)
    span = TracerProvider().get_tracer("t").start_span("lost")
    span.end()
    assert exporter.export([span]) is SpanExportResult.FAILURE  # type: ignore[list-item]
    exporter.shutdown()


def _span(name: str, span_id: str, parent: str | None, start: int, **attrs: object) -> ReceivedSpan:
    return ReceivedSpan(
        trace_id="ab" * 16,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind="CLIENT",
        status_code="ERROR" if "error.type" in attrs else "OK",
        status_message="",
        start_ns=start,
        end_ns=start + 2_000_000,
        attributes=dict(attrs),
        resource={},
        scope_name="t",
    )


def test_trace_tree_nests_children_and_collapses() -> None:
    with OtlpReceiver() as rx, sdk_tracer(rx.endpoint) as provider:
        tracer = provider.get_tracer("t")
        with tracer.start_as_current_span("batch_results"):
            for i in range(3):
                with tracer.start_as_current_span(f"chat gpt-4o-mini #{i}", kind=SpanKind.CLIENT) as s:
                    s.set_attribute("gen_ai.usage.input_tokens", 10 + i)
                    s.set_attribute("gen_ai.usage.output_tokens", 5)
                    s.set_attribute("batchtrace.custom_id", f"req-{i}")
        assert rx.wait_for_spans(4, timeout=5)
        lines = render_trace_tree(rx.spans).splitlines()
    assert lines[0].startswith("trace ") and lines[0].endswith("(4 spans)")
    assert lines[1].startswith("└─ batch_results [INTERNAL] UNSET")
    assert lines[2].startswith("   ├─ chat gpt-4o-mini #0 [CLIENT]")
    assert "in=10 out=5 custom_id=req-0" in lines[2]
    assert lines[4].startswith("   └─ chat gpt-4o-mini #2") and "custom_id=req-2" in lines[4]

    root = "f" * 16
    many = [_span("chat", f"{i + 1:016x}", root, 1000 + i, **{"batchtrace.custom_id": f"r{i}"}) for i in range(300)]
    many.append(_span("chat", "e" * 16, root, 5, **{"error.type": "rate_limit_exceeded"}))
    text = render_trace_tree(many, max_children=4)
    assert f"└─ (parent {root} not in this export)" in text
    assert "ERROR (rate_limit_exceeded) 2.0ms" in text.splitlines()[2]  # earliest start comes first
    assert text.splitlines()[-1] == "   └─ … and 297 more"
    assert len(text.splitlines()) == 2 + 4 + 1


def test_moto_server_serves_s3_through_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    with MotoServer() as moto:
        for key, value in aws_env(moto.endpoint).items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        s3 = boto3.client("s3")  # endpoint, region and credentials all come from the environment
        s3.create_bucket(Bucket="batchtrace-test")
        s3.put_object(Bucket="batchtrace-test", Key="b/input.jsonl", Body=b"{}\n", Metadata={"trace-id": "ab"})
        obj = s3.get_object(Bucket="batchtrace-test", Key="b/input.jsonl")
        assert obj["Body"].read() == b"{}\n" and obj["Metadata"] == {"trace-id": "ab"}
        moto.reset()
        assert s3.list_buckets()["Buckets"] == []
