"""The OTLP encoder writes the wire format by hand: it must give the stock encoder's request, always.

``test_writers`` holds it to the stock encoder on every span the fixtures make; here random spans
take it through everything the fixtures do not reach: every attribute type (negative and huge
ints, floats, bools that equal ints, empty and non-ASCII texts, long texts, lists, nested maps,
bytes, ``None``), its caches across many spans (the same keys with values of other types, ids
that never repeat), several resources and scopes, trace state, remote parents and statuses. And
the spans' JSON texts, kept as UTF-8 in memory, read as ordinary strings by anyone but the encoder.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from batchtrace.send import encode
from batchtrace.send.encode import encode_request
from batchtrace.write.attributes import JsonText, SpanAttributes, set_json
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

TEXTS = ["", "chat", "gpt-4o-mini", "日本語 ёж 🚀", "x" * 200, "é" * 5000, 'a\x00b"c\\d']
KEYS = ["gen_ai.operation.name", "batchtrace.custom_id", "k", "ключ", "gen_ai.usage.input_tokens"]


def random_value(rng: random.Random, depth: int = 0) -> Any:
    choices: list[Any] = [
        rng.choice(TEXTS),
        f"id-{rng.getrandbits(64):x}",
        rng.choice([0, 1, -1, 2**63 - 1, -(2**63), 127, 128, 16383, 16384, rng.randint(-(10**9), 10**9)]),
        rng.choice([True, False]),
        rng.choice([0.0, 1.0, -2.5, 1e-300, 3.14159, float(rng.randint(0, 5))]),
        [rng.choice(TEXTS) for _ in range(rng.randint(0, 3))],
        [rng.randint(-5, 5) for _ in range(rng.randint(0, 3))],
        [rng.choice([True, 1.5, "m"]) for _ in range(rng.randint(1, 3))],
    ]
    if depth < 2:
        choices.append({rng.choice(KEYS): random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))})
        choices.append(rng.choice([b"\x00\xffbytes", None]))
    return rng.choice(choices)


def random_span(rng: random.Random, resources: list[Resource], scopes: list[InstrumentationScope | None]) -> Any:
    trace_id = rng.getrandbits(128) or 1
    state = TraceState([("vendor", "v1"), ("other", "x")]) if rng.random() < 0.2 else None
    context = SpanContext(trace_id, rng.getrandbits(64) or 1, False, TraceFlags(1), state)
    parent = None
    if rng.random() < 0.8:
        parent = SpanContext(trace_id, rng.getrandbits(64) or 1, rng.random() < 0.5, TraceFlags(1))
    attributes = SpanAttributes() if rng.random() < 0.5 else {}
    for _ in range(rng.randint(0, 30)):
        key = rng.choice(KEYS) if rng.random() < 0.7 else f"key.{rng.randint(0, 50)}"
        if rng.random() < 0.15:
            set_json(attributes, key, [{"role": "user", "content": rng.choice(TEXTS)}])
        else:
            attributes[key] = random_value(rng)
    status = rng.choice([Status(StatusCode.UNSET), Status(StatusCode.OK), Status(StatusCode.ERROR, "boom ✗")])
    return ReadableSpan(
        name=rng.choice(["chat gpt-4o-mini", "", "作業"]),
        context=context,
        parent=parent,
        resource=rng.choice(resources),
        attributes=attributes,
        kind=rng.choice(list(SpanKind)),
        status=status,
        start_time=rng.choice([0, rng.getrandbits(63)]),
        end_time=rng.getrandbits(63),
        instrumentation_scope=rng.choice(scopes),
    )


def assert_alike(spans: list[Any]) -> None:
    ours = ExportTraceServiceRequest.FromString(encode_request(spans))
    assert ours == encode_spans(spans)


@pytest.mark.parametrize("seed", range(6))
def test_random_spans_encode_as_the_stock_encoder_does(seed: int) -> None:
    rng = random.Random(seed)
    resources = [
        Resource({"service.name": "batchtrace", "n": 1}),
        Resource({"service.name": "other ✓", "flag": True, "list": ["a", "b"]}, schema_url="https://x/schema"),
        Resource({}),
    ]
    scopes: list[InstrumentationScope | None] = [
        InstrumentationScope("batchtrace", "1.0"),
        InstrumentationScope("s", None, "https://x/s", {"a": 1}),
        None,
    ]
    for _ in range(30):
        assert_alike([random_span(rng, resources, scopes) for _ in range(rng.randint(1, 40))])


def test_the_caches_never_hand_a_value_to_another_type() -> None:
    """``1 == 1.0 == True``: the same key with each, span after span, keeps each type."""
    resource = Resource({"service.name": "t"})
    context = SpanContext(1, 2, False, TraceFlags(1))
    values: list[Any] = [1, True, 1.0, "1", [1], ["1"], 0, False, 0.0, "", []] * 3
    spans = [
        ReadableSpan("s", context, resource=resource, attributes={"k": value, "id": f"unique-{n}"})
        for n, value in enumerate(values)
    ]
    assert_alike(spans)


def test_keys_whose_values_never_repeat_stop_being_cached() -> None:
    resource = Resource({"service.name": "t"})
    context = SpanContext(1, 2, False, TraceFlags(1))
    spans = [
        ReadableSpan("s", context, resource=resource, attributes={"volatile.id": f"id-{n}", "kind": "chat"})
        for n in range(encode.MISSES_BEFORE_VOLATILE + 50)
    ]
    assert_alike(spans)
    assert "volatile.id" in encode._CACHE.volatile
    assert "kind" not in encode._CACHE.volatile


TEXT = '[{"role":"user","content":"日本語 🚀"}]'


def json_attributes() -> SpanAttributes:
    attrs = SpanAttributes()
    set_json(attrs, "gen_ai.input.messages", [{"role": "user", "content": "日本語 🚀"}])
    attrs["n"] = 3
    return attrs


def test_json_texts_are_kept_as_utf8_and_read_as_strings() -> None:
    """Stored as bytes for the encoder; every way of reading the mapping gives the string."""
    attrs = json_attributes()
    assert isinstance(dict.__getitem__(attrs, "gen_ai.input.messages"), JsonText)
    assert attrs["gen_ai.input.messages"] == attrs.get("gen_ai.input.messages") == TEXT
    assert dict(attrs) == {**attrs} == attrs.copy() == {"gen_ai.input.messages": TEXT, "n": 3}
    assert list(attrs.items()) == [("gen_ai.input.messages", TEXT), ("n", 3)]
    assert list(attrs.values()) == [TEXT, 3]
    assert attrs == {"gen_ai.input.messages": TEXT, "n": 3}
    assert "JsonText" not in repr(attrs)


def test_a_span_s_json_texts_are_strings_to_its_readers() -> None:
    """Through the span's view, the SDK's ``to_json`` and ``json.dumps``: strings, never bytes."""
    attrs = json_attributes()
    assert json.loads(json.dumps(attrs))["gen_ai.input.messages"] == TEXT
    span = ReadableSpan("s", SpanContext(1, 2, False), attributes=attrs)
    assert dict(span.attributes or {})["gen_ai.input.messages"] == TEXT
    assert json.loads(span.to_json())["attributes"]["gen_ai.input.messages"] == TEXT


def test_json_in_a_plain_dict_is_a_string() -> None:
    """A writer given a plain ``dict`` (a test's, another caller's) writes an ordinary string."""
    plain: dict[str, Any] = {}
    set_json(plain, "k", {"a": 1})
    assert plain == {"k": '{"a":1}'}
