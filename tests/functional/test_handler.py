"""The Lambda handler end to end: events in, files from a moto S3 server, spans to a real receiver.

Covers the three event shapes (S3 ``Records`` with URL-encoded keys, EventBridge "Object
Created", the Step Functions payload), several records in one event, trace ids from
``trace.json``, from the input object's metadata or from the payload, the typed errors
(``MissingFileError``, ``DeliveryError``) and the sample batch through each file in ``events/``.
"""

from __future__ import annotations

import copy
import importlib
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from batchtrace import DeliveryError, InvalidTraceContextError, MissingFileError
from opentelemetry.sdk.trace import TracerProvider

from tests.functional.assertions import assert_batch_delivered, assert_fate, assert_linked, assert_summary, delivered
from tests.support.batches import EXPIRED, HTTP_ERROR, NO_RESULT, OK, ORPHAN, TOOL_CALL, Batch, Fate, hostile_batch
from tests.support.lambda_context import FakeLambdaContext
from tests.support.moto_s3 import BUCKET, MotoServer
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan, unused_port

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
SAMPLES = ROOT / "samplefiles"

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"
#: A prefix a naive handler mangles: spaces (``+`` in the event), a literal ``+`` (``%2B``), non-ASCII.
HOSTILE_PREFIX = "batches/Q1 résumé runs/2026+03 日本"

#: Seconds the handler keeps back from Lambda's remaining time; with FakeLambdaContext's 20 s, 5 s to deliver.
DEADLINE_MARGIN_S = "15"


@pytest.fixture
def handler(moto: MotoServer, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The ``app`` module, (re)imported after the environment points at moto and the receiver."""
    monkeypatch.setenv("BATCHTRACE_DEADLINE_MARGIN_SECONDS", DEADLINE_MARGIN_S)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "batchtrace")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    app = importlib.reload(sys.modules["app"]) if "app" in sys.modules else importlib.import_module("app")
    yield app


@pytest.fixture(scope="module")
def batch() -> Batch:
    return hostile_batch(n=200, seed=23)


def s3_event(*objects: tuple[str, str]) -> dict[str, Any]:
    """An S3 notification for ``(bucket, key)`` objects, keys URL-encoded as S3 sends them."""
    template = json.loads((EVENTS / "s3-put.json").read_text())["Records"][0]
    records = []
    for i, (bucket, key) in enumerate(objects):
        record = copy.deepcopy(template)
        record["s3"]["bucket"]["name"] = bucket
        record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
        record["s3"]["object"]["key"] = quote_plus(key, safe="/")
        record["s3"]["object"]["sequencer"] = f"0067CE3A29634F1B{i:02X}"
        records.append(record)
    return {"Records": records}


def eventbridge_event(bucket: str, key: str) -> dict[str, Any]:
    event = json.loads((EVENTS / "eventbridge-object-created.json").read_text())
    event["detail"]["bucket"]["name"] = bucket
    event["detail"]["object"]["key"] = key
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    return event


def invoke(handler: ModuleType, event: dict[str, Any], context: FakeLambdaContext | None = None) -> dict[str, Any]:
    result = handler.lambda_handler(event, context or FakeLambdaContext())
    json.dumps(result)  # what Lambda and Step Functions get must be JSON
    return result  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- the hostile batch, three event shapes


@pytest.mark.parametrize(
    "prefix",
    ["batches", HOSTILE_PREFIX],
    ids=["plain", "url-encoded"],
)
def test_s3_event_with_trace_json(
    handler: ModuleType, s3: Any, receiver: OtlpReceiver, batch: Batch, prefix: str
) -> None:
    key = batch.upload(s3, BUCKET, f"{prefix}/{batch.batch_id}", trace_doc=batch.trace_doc(TRACE_ID, PARENT_SPAN_ID))
    event = s3_event((BUCKET, key))
    if prefix == HOSTILE_PREFIX:  # spaces arrive as '+', a literal '+' as %2B, non-ASCII as %XX
        assert all(part in event["Records"][0]["s3"]["object"]["key"] for part in ("Q1+r%C3%A9sum", "2026%2B03"))

    summary = invoke(handler, event)

    assert_summary(summary, batch, mode="explicit", trace_id=TRACE_ID, batch_id=batch.batch_id)
    spans = delivered(receiver, len(batch.fates) + 1)
    assert_batch_delivered(
        spans,
        batch,
        trace_id=TRACE_ID,
        parent_span_id=PARENT_SPAN_ID,
        mode="explicit",
        batch_id=batch.batch_id,
        lifecycle_known=True,
    )


def test_several_records_with_url_encoded_keys(handler: ModuleType, s3: Any, receiver: OtlpReceiver) -> None:
    first, second = hostile_batch(n=40, seed=51), hostile_batch(n=40, seed=52)
    key_a = first.upload(s3, BUCKET, f"{HOSTILE_PREFIX}/{first.batch_id}", trace_doc=first.trace_doc(TRACE_ID))
    key_b = second.upload(s3, BUCKET, f"batches/a+b c/{second.batch_id}", trace_doc=second.trace_doc(TRACE_ID))
    result = invoke(handler, s3_event((BUCKET, key_a), (BUCKET, key_b)))
    assert [b["batch_id"] for b in result["batches"]] == [first.batch_id, second.batch_id]
    delivered(receiver, len(first.fates) + len(second.fates) + 2)


def test_eventbridge_object_created(handler: ModuleType, s3: Any, receiver: OtlpReceiver, batch: Batch) -> None:
    key = batch.upload(
        s3, BUCKET, f"batches/nightly runs é/{batch.batch_id}", trace_doc=batch.trace_doc(TRACE_ID, PARENT_SPAN_ID)
    )
    summary = invoke(handler, eventbridge_event(BUCKET, key))

    assert_summary(summary, batch, mode="explicit", trace_id=TRACE_ID, batch_id=batch.batch_id)
    spans = delivered(receiver, len(batch.fates) + 1)
    assert_batch_delivered(
        spans, batch, trace_id=TRACE_ID, parent_span_id=PARENT_SPAN_ID, mode="explicit", batch_id=batch.batch_id
    )


def test_step_functions_payload_with_ids(handler: ModuleType, s3: Any, receiver: OtlpReceiver, batch: Batch) -> None:
    folder = f"{HOSTILE_PREFIX}/{batch.batch_id}"
    key = batch.upload(s3, BUCKET, folder)  # no trace.json: the payload carries the ids
    payload = {
        "bucket": BUCKET,
        "output_key": key,
        "input_key": f"{folder}/input.jsonl",
        "errors_key": f"{folder}/errors.jsonl",
        "batch_id": batch.batch_id,
        "trace_id": TRACE_ID,
        "span_id": PARENT_SPAN_ID,
    }
    summary = invoke(handler, payload)

    assert_summary(summary, batch, mode="explicit", trace_id=TRACE_ID, batch_id=batch.batch_id)
    spans = delivered(receiver, len(batch.fates) + 1)
    assert_batch_delivered(
        spans, batch, trace_id=TRACE_ID, parent_span_id=PARENT_SPAN_ID, mode="explicit", batch_id=batch.batch_id
    )


def test_step_functions_payload_with_traceparent_nests_under_the_callers_span(
    handler: ModuleType, s3: Any, receiver: OtlpReceiver, batch: Batch
) -> None:
    """A caller's ``traceparent`` is a live context: it wins over trace.json and gets no batch_results span."""
    other_trace = "11111111111111111111111111111111"
    key = batch.upload(s3, BUCKET, f"batches/{batch.batch_id}", trace_doc=batch.trace_doc(other_trace, PARENT_SPAN_ID))
    payload = {"bucket": BUCKET, "output_key": key, "traceparent": f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"}
    summary = invoke(handler, payload)

    assert_summary(summary, batch, mode="active", trace_id=TRACE_ID, batch_id=batch.batch_id)
    spans = delivered(receiver, len(batch.fates))
    assert_batch_delivered(
        spans, batch, trace_id=TRACE_ID, parent_span_id=CALLER_SPAN_ID, mode="active", batch_id=batch.batch_id
    )


def test_input_metadata_when_there_is_no_trace_json(
    handler: ModuleType, s3: Any, receiver: OtlpReceiver, batch: Batch
) -> None:
    folder = f"batches/{batch.batch_id}"
    key = batch.upload(s3, BUCKET, folder, input_metadata={"trace-id": TRACE_ID, "span-id": PARENT_SPAN_ID})
    summary = invoke(handler, s3_event((BUCKET, key)))

    # Without trace.json the batch id is the folder's name.
    assert_summary(summary, batch, mode="explicit", trace_id=TRACE_ID, batch_id=batch.batch_id)
    spans = delivered(receiver, len(batch.fates) + 1)
    assert_batch_delivered(
        spans, batch, trace_id=TRACE_ID, parent_span_id=PARENT_SPAN_ID, mode="explicit", batch_id=batch.batch_id
    )


def test_no_trace_information_makes_a_new_trace_and_a_redelivered_event_repeats_it(
    handler: ModuleType, s3: Any, receiver: OtlpReceiver, batch: Batch
) -> None:
    key = batch.upload(s3, BUCKET, f"batches/{batch.batch_id}")
    event = s3_event((BUCKET, key))
    first = invoke(handler, event)
    assert_summary(first, batch, mode="new", batch_id=batch.batch_id)
    spans = delivered(receiver, len(batch.fates) + 1)
    assert_batch_delivered(spans, batch, trace_id=first["trace_id"], mode="new", batch_id=batch.batch_id)

    receiver.reset()
    second = invoke(handler, event)
    assert second["trace_id"] == first["trace_id"]
    again = delivered(receiver, len(batch.fates) + 1)
    assert sorted((s.span_id, s.parent_span_id) for s in again) == sorted((s.span_id, s.parent_span_id) for s in spans)


def test_several_records_in_one_event(handler: ModuleType, s3: Any, receiver: OtlpReceiver) -> None:
    first, second = hostile_batch(n=60, seed=31), hostile_batch(n=80, seed=32)
    other_trace = "6e0c63257de34c926f9efcd03899ab7c"
    key_a = first.upload(s3, BUCKET, f"batches/a/{first.batch_id}", trace_doc=first.trace_doc(TRACE_ID))
    key_b = second.upload(
        s3, BUCKET, f"batches/b/{second.batch_id}", trace_doc=second.trace_doc(other_trace, PARENT_SPAN_ID)
    )
    # The input file's own creation event is in there too, and must be left out.
    event = s3_event((BUCKET, key_a), (BUCKET, f"batches/b/{second.batch_id}/input.jsonl"), (BUCKET, key_b))

    result = invoke(handler, event)

    assert set(result) == {"batches"}
    assert len(result["batches"]) == 2
    assert_summary(result["batches"][0], first, mode="explicit", trace_id=TRACE_ID, batch_id=first.batch_id)
    assert_summary(result["batches"][1], second, mode="explicit", trace_id=other_trace, batch_id=second.batch_id)
    spans = delivered(receiver, len(first.fates) + len(second.fates) + 2)
    assert_batch_delivered([s for s in spans if s.trace_id == TRACE_ID], first, trace_id=TRACE_ID, mode="explicit")
    assert_batch_delivered(
        [s for s in spans if s.trace_id == other_trace],
        second,
        trace_id=other_trace,
        parent_span_id=PARENT_SPAN_ID,
        mode="explicit",
    )
    assert len(spans) == len(first.fates) + len(second.fates) + 2


def test_a_batch_where_every_request_failed_has_an_empty_output_file(
    handler: ModuleType, s3: Any, receiver: OtlpReceiver, batch: Batch
) -> None:
    failed = batch.subset((HTTP_ERROR, EXPIRED, NO_RESULT))
    kept = failed.fates
    assert failed.output_bytes() == b""
    key = failed.upload(s3, BUCKET, f"batches/{batch.batch_id}", trace_doc=failed.trace_doc(TRACE_ID, PARENT_SPAN_ID))
    summary = invoke(handler, s3_event((BUCKET, key)))

    assert_summary(summary, failed, mode="explicit", trace_id=TRACE_ID, batch_id=batch.batch_id)
    spans = delivered(receiver, len(kept) + 1)
    assert_batch_delivered(spans, failed, trace_id=TRACE_ID, parent_span_id=PARENT_SPAN_ID, mode="explicit")


def test_the_functions_own_span_never_overrides_the_stored_trace(
    handler: ModuleType, s3: Any, receiver: OtlpReceiver, batch: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An auto-instrumentation span or X-Ray context around the invocation is not the batch's trace."""
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-67ce3a29-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1")
    key = batch.upload(s3, BUCKET, f"batches/{batch.batch_id}", trace_doc=batch.trace_doc(TRACE_ID, PARENT_SPAN_ID))
    tracer = TracerProvider().get_tracer("aws-lambda-auto-instrumentation")
    with tracer.start_as_current_span("LogBatchResultsFunction invoke"):
        summary = invoke(handler, s3_event((BUCKET, key)))
    assert_summary(summary, batch, mode="explicit", trace_id=TRACE_ID, batch_id=batch.batch_id)
    spans = delivered(receiver, len(batch.fates) + 1)
    assert_batch_delivered(spans, batch, trace_id=TRACE_ID, parent_span_id=PARENT_SPAN_ID, mode="explicit")


def test_forked_span_workers_in_the_function(
    handler: ModuleType, s3: Any, receiver: OtlpReceiver, batch: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHTRACE_WORKERS", "2")
    key = batch.upload(s3, BUCKET, f"batches/{batch.batch_id}", trace_doc=batch.trace_doc(TRACE_ID, PARENT_SPAN_ID))
    summary = invoke(handler, s3_event((BUCKET, key)))
    assert_summary(summary, batch, mode="explicit", trace_id=TRACE_ID, batch_id=batch.batch_id)
    spans = delivered(receiver, len(batch.fates) + 1)
    assert_batch_delivered(
        spans, batch, trace_id=TRACE_ID, parent_span_id=PARENT_SPAN_ID, mode="explicit", lifecycle_known=True
    )


def test_a_batch_without_an_error_file(handler: ModuleType, s3: Any, receiver: OtlpReceiver, batch: Batch) -> None:
    """OpenAI writes no error file when nothing failed; errors.jsonl is optional."""
    clean = batch.subset((OK, TOOL_CALL, NO_RESULT, ORPHAN))
    kept = clean.fates
    assert clean.errors_bytes() == b"" and clean.bad_lines["output"] == batch.bad_lines["output"]
    folder = f"batches/{batch.batch_id}"
    key = clean.upload(s3, BUCKET, folder, trace_doc=clean.trace_doc(TRACE_ID, PARENT_SPAN_ID))
    s3.delete_object(Bucket=BUCKET, Key=f"{folder}/errors.jsonl")
    summary = invoke(handler, s3_event((BUCKET, key)))

    assert_summary(summary, clean, mode="explicit", trace_id=TRACE_ID, batch_id=batch.batch_id)
    spans = delivered(receiver, len(kept) + 1)
    assert_batch_delivered(spans, clean, trace_id=TRACE_ID, parent_span_id=PARENT_SPAN_ID, mode="explicit")


# ---------------------------------------------------------------------------- typed errors


def test_missing_input_file_raises_missing_file_error_naming_it(
    handler: ModuleType, s3: Any, receiver: OtlpReceiver, batch: Batch
) -> None:
    folder = f"batches/{batch.batch_id}"
    key = batch.upload(s3, BUCKET, folder, with_input=False)
    with pytest.raises(MissingFileError) as caught:
        invoke(handler, s3_event((BUCKET, key)))
    assert f"s3://{BUCKET}/{folder}/input.jsonl" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert receiver.attempts == 0


def test_missing_input_named_in_a_payload_raises_missing_file_error_naming_it(
    handler: ModuleType, s3: Any, receiver: OtlpReceiver, batch: Batch
) -> None:
    folder = f"{HOSTILE_PREFIX}/{batch.batch_id}"
    key = batch.upload(s3, BUCKET, folder)
    missing = f"{folder}/submitted input é.jsonl"
    with pytest.raises(MissingFileError) as caught:
        invoke(handler, {"bucket": BUCKET, "output_key": key, "input_key": missing, "trace_id": TRACE_ID})
    assert f"s3://{BUCKET}/{missing}" in str(caught.value)
    assert receiver.attempts == 0


def test_one_missing_input_does_not_stop_the_other_batches(
    handler: ModuleType, s3: Any, receiver: OtlpReceiver
) -> None:
    broken, good = hostile_batch(n=40, seed=41), hostile_batch(n=40, seed=42)
    key_broken = broken.upload(s3, BUCKET, f"batches/{broken.batch_id}", with_input=False)
    key_good = good.upload(s3, BUCKET, f"batches/{good.batch_id}", trace_doc=good.trace_doc(TRACE_ID, PARENT_SPAN_ID))
    with pytest.raises(MissingFileError, match=re.escape(f"s3://{BUCKET}/batches/{broken.batch_id}/input.jsonl")):
        invoke(handler, s3_event((BUCKET, key_broken), (BUCKET, key_good)))
    spans = delivered(receiver, len(good.fates) + 1)
    assert_batch_delivered(spans, good, trace_id=TRACE_ID, parent_span_id=PARENT_SPAN_ID, mode="explicit")


def test_an_invalid_trace_id_in_a_payload_is_the_callers_error(
    handler: ModuleType, s3: Any, receiver: OtlpReceiver, batch: Batch
) -> None:
    key = batch.upload(s3, BUCKET, f"batches/{batch.batch_id}")
    with pytest.raises(InvalidTraceContextError, match="not-a-trace"):
        invoke(handler, {"bucket": BUCKET, "output_key": key, "trace_id": "not-a-trace"})
    assert receiver.attempts == 0


def test_receiver_down_raises_delivery_error_before_the_deadline(
    handler: ModuleType, s3: Any, batch: Batch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"http://127.0.0.1:{unused_port()}/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")
    key = batch.upload(s3, BUCKET, f"batches/{batch.batch_id}", trace_doc=batch.trace_doc(TRACE_ID, PARENT_SPAN_ID))
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        invoke(handler, s3_event((BUCKET, key)), FakeLambdaContext(remaining_ms=17_000))  # 2 s to deliver
    assert time.monotonic() - started < 10
    summary = caught.value.summary.as_dict()
    assert_summary(summary, batch, mode="explicit", trace_id=TRACE_ID, batch_id=batch.batch_id, delivered=False)
    assert (summary["spans_exported"], summary["spans_failed"]) == (0, len(batch.fates) + 1)


def test_receiver_rejecting_everything_raises_delivery_error(
    handler: ModuleType, s3: Any, receiver: OtlpReceiver, batch: Batch
) -> None:
    receiver.set_faults(always_status=400)
    key = batch.upload(s3, BUCKET, f"batches/{batch.batch_id}", trace_doc=batch.trace_doc(TRACE_ID, PARENT_SPAN_ID))
    with pytest.raises(DeliveryError) as caught:
        invoke(handler, s3_event((BUCKET, key)))
    assert caught.value.summary.spans_exported == 0
    assert caught.value.summary.spans_failed == len(batch.fates) + 1
    assert receiver.spans == []


def test_partial_delivery_raises_after_delivering_what_it_could(
    handler: ModuleType, s3: Any, receiver: OtlpReceiver, batch: Batch
) -> None:
    big_id = batch.plain_id(OK)  # its span alone is over the receiver's limit
    big = batch.with_long_prompt(big_id, 40_000)
    receiver.set_faults(max_body_bytes=20_000)
    key = big.upload(s3, BUCKET, f"batches/{big.batch_id}", trace_doc=big.trace_doc(TRACE_ID, PARENT_SPAN_ID))
    with pytest.raises(DeliveryError) as caught:
        invoke(handler, s3_event((BUCKET, key)))
    total = len(big.fates) + 1
    summary = caught.value.summary
    assert (summary.spans_built, summary.spans_exported, summary.spans_failed) == (total, total - 1, 1)
    spans = delivered(receiver, total - 1)
    assert {s.attributes.get("batchtrace.custom_id") for s in spans} == (set(big.fates) - {big_id}) | {None}


# ---------------------------------------------------------------------------- the sample batch via events/


SAMPLE_BATCH_ID = "batch_68f2a1c9d0e84b7fa3c5e2d1"
SAMPLE_TRACE = json.loads((SAMPLES / "trace.json").read_text())
# The Bedrock event names a Bedrock output, not the sample batch (tests/functional/test_handler_bedrock.py).
EVENT_FILES = sorted(p.name for p in EVENTS.glob("*.json") if "bedrock" not in p.name)


def readme_fates() -> dict[str, Fate]:
    """The fate table of ``samplefiles/README.md``, as :class:`Fate`s."""
    text = (SAMPLES / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([^`]+)` \| (.+?) \|$", text, flags=re.MULTILINE)
    outputs = [json.loads(line) for line in (SAMPLES / "output.jsonl").read_text(encoding="utf-8").splitlines()]
    fates: dict[str, Fate] = {}
    for custom_id, description in rows:
        ticks = re.findall(r"`([^`]+)`", description)
        if description.startswith("orphan"):
            body = next(o["response"]["body"] for o in outputs if o["custom_id"] == custom_id)
            fates[custom_id] = Fate(kind=ORPHAN, model=body["model"], finish_reason="stop", has_usage=True)
        elif description.startswith("ok, tool call"):
            fates[custom_id] = Fate(
                kind=TOOL_CALL, model="gpt-4o-mini", tool_name=ticks[0], finish_reason=ticks[1], has_usage=True
            )
        elif description.startswith("ok"):
            fates[custom_id] = Fate(kind=OK, model="gpt-4o-mini", finish_reason=ticks[0], has_usage=True)
        elif description.startswith("HTTP error"):
            status = int(re.search(r"HTTP error (\d{3})", description).group(1))  # type: ignore[union-attr]
            fates[custom_id] = Fate(kind=HTTP_ERROR, model="gpt-4o-mini", status_code=status, error_type=ticks[0])
        elif description.startswith("expired"):
            fates[custom_id] = Fate(kind=EXPIRED, model="gpt-4o-mini", error_type=ticks[0])
        elif description.startswith("no result"):
            fates[custom_id] = Fate(kind=NO_RESULT, model="gpt-4o-mini", error_type="no_result")
        else:
            raise AssertionError(f"unknown fate in samplefiles/README.md: {description!r}")
    assert len(fates) == 13, f"samplefiles/README.md lists {len(fates)} custom_ids, expected 13"
    return fates


@pytest.fixture
def sample_bucket(moto: MotoServer) -> str:
    bucket = "batchtrace-demo"
    client = boto3.client("s3")
    client.create_bucket(Bucket=bucket)
    for name in ("input.jsonl", "trace.json", "errors.jsonl", "output.jsonl"):
        client.upload_file(str(SAMPLES / name), bucket, f"batches/{SAMPLE_BATCH_ID}/{name}")
    return bucket


def _sample_tree(handler: ModuleType, receiver: OtlpReceiver, event_file: str) -> list[ReceivedSpan]:
    event = json.loads((EVENTS / event_file).read_text())
    summary = invoke(handler, event)
    expected = {
        "batch_id": SAMPLE_BATCH_ID,
        "trace_id": SAMPLE_TRACE["trace_id"],
        "requests": 12,
        "results": 12,  # README: 9 in output.jsonl + 3 error lines (errors are results that failed)
        "errors": 3,
        "expired": 1,
        "no_result": 1,
        "orphan_results": 1,
        "duplicate_ids": 0,
        "malformed_lines": 0,
        "spans_built": 14,
        "spans_exported": 14,
        "spans_failed": 0,
        "input_tokens": 2253,
        "output_tokens": 285,
    }
    assert {k: summary.get(k) for k in expected} == expected
    return delivered(receiver, 14)


@pytest.mark.parametrize("event_file", EVENT_FILES)
def test_sample_batch_via_each_event_file(
    handler: ModuleType, sample_bucket: str, receiver: OtlpReceiver, event_file: str
) -> None:
    spans = _sample_tree(handler, receiver, event_file)
    fates = readme_fates()
    batch_span, completions = assert_linked(
        spans,
        mode="explicit",
        custom_ids=fates,
        trace_id=SAMPLE_TRACE["trace_id"],
        parent_span_id=SAMPLE_TRACE["span_id"],
    )
    for custom_id, fate in fates.items():
        assert_fate(completions[custom_id], fate, batch_id=SAMPLE_BATCH_ID)
    assert completions["summarise-call-0417"].attributes.get("gen_ai.usage.cache_read.input_tokens") == 1024
    assert batch_span is not None
    assert batch_span.start_ns == SAMPLE_TRACE["batch"]["created_at"] * 1_000_000_000
    assert batch_span.end_ns == SAMPLE_TRACE["batch"]["completed_at"] * 1_000_000_000


def test_the_three_sample_events_send_identical_spans(
    handler: ModuleType, sample_bucket: str, receiver: OtlpReceiver
) -> None:
    """The same object reached through any trigger is the same batch: same ids, same parents."""
    seen = []
    for event_file in EVENT_FILES:
        receiver.reset()
        spans = _sample_tree(handler, receiver, event_file)
        seen.append(sorted((s.trace_id, s.span_id, s.parent_span_id, s.name) for s in spans))
    assert len(EVENT_FILES) == 3
    assert seen[0] == seen[1] == seen[2]


def test_the_s3_test_event_is_acknowledged_without_work(handler: ModuleType, receiver: OtlpReceiver) -> None:
    """S3 sends ``s3:TestEvent`` when a notification is configured: no error, no retry, no spans."""
    event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-24T00:00:00Z", "Bucket": BUCKET}
    assert invoke(handler, event) == {"batches": []}
    assert receiver.attempts == 0
