"""Idempotency: a redelivered event re-sends identical spans; with a table, it sends nothing at all.

Without ``IDEMPOTENCY_TABLE`` the deterministic span ids make a redelivered S3 event re-send
the very same spans. With it, the handler records each output object (bucket, key, version or
sequencer) in DynamoDB (moto, on 127.0.0.1) through Powertools' idempotency utility: a
duplicate exports nothing and returns the first summary; a failed run, an in-progress record
whose Lambda has timed out, a new version of the object, or an expired record let it run again.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from batchtrace import DeliveryError, MissingFileError

from tests.faults.helpers import (
    PARENT_SPAN_ID,
    TRACE_ID,
    Expected,
    FakeLambdaContext,
    assert_accounted,
    assert_exactly_once,
    eventbridge_event,
    golden,
    invoke,
    s3_event,
)
from tests.support.batches import Batch, fault_batch
from tests.support.moto_s3 import BUCKET
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.timeout(30)

#: Summary fields that legitimately differ between two real runs of the same batch.
TIMINGS = ("duration_ms", "stage_ms")


@pytest.fixture(scope="module")
def batch() -> Batch:
    return fault_batch(30, batch_id="batch_idem_0001")


@pytest.fixture(scope="module")
def expected(batch: Batch) -> Expected:
    return golden(batch)


@pytest.fixture
def key(s3: Any, batch: Batch) -> str:
    return batch.upload(s3, BUCKET, f"batches/{batch.batch_id}", trace_doc=batch.trace_doc(TRACE_ID, PARENT_SPAN_ID))


@pytest.fixture
def app(idempotency_table: Any, rx: OtlpReceiver, load_app: Any) -> ModuleType:
    """The handler with ``IDEMPOTENCY_TABLE`` set (the table fixture sets it before the import)."""
    return load_app(rx.endpoint)


def without_timings(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k not in TIMINGS}


def records(table: Any) -> list[dict[str, Any]]:
    return list(table.scan(ConsistentRead=True)["Items"])


def the_record(table: Any) -> dict[str, Any]:
    items = records(table)
    assert len(items) == 1, items
    return items[0]


def comparable(span: ReceivedSpan) -> tuple[Any, ...]:
    return (
        span.trace_id,
        span.span_id,
        span.parent_span_id,
        span.name,
        span.kind,
        span.status_code,
        span.status_message,
        span.start_ns,
        span.end_ns,
        sorted(span.attributes.items(), key=lambda kv: kv[0]),
    )


# ---------------------------------------------------------------------------- no table: identical re-sends


def test_without_a_table_a_redelivered_event_resends_identical_spans(
    s3: Any, key: str, load_app: Any, rx: OtlpReceiver, expected: Expected
) -> None:
    app = load_app(rx.endpoint)
    event = s3_event(BUCKET, key, version_id="v1")
    first = invoke(app, event)
    first_spans = rx.spans
    assert_exactly_once(first_spans, expected)
    rx.reset()
    second = invoke(app, event)
    second_spans = rx.spans
    assert_exactly_once(second_spans, expected)
    assert sorted(map(comparable, first_spans)) == sorted(map(comparable, second_spans))
    assert without_timings(first) == without_timings(second)


# ---------------------------------------------------------------------------- with a table


def test_a_duplicate_event_exports_nothing_and_returns_the_first_summary(
    app: ModuleType, key: str, rx: OtlpReceiver, expected: Expected, idempotency_table: Any
) -> None:
    event = s3_event(BUCKET, key, version_id="v1")
    first = invoke(app, event)
    assert_exactly_once(rx.spans, expected)
    assert_accounted(first, expected)
    attempts = rx.attempts
    assert the_record(idempotency_table)["status"] == "COMPLETED"

    second = invoke(app, event, FakeLambdaContext())  # Lambda's redelivery: a new request id
    assert second == first, "a duplicate returns the first summary, timings included"
    assert rx.attempts == attempts, "a duplicate must not export anything"
    assert_exactly_once(rx.spans, expected)


def test_the_same_upload_through_another_event_shape_is_a_duplicate(
    app: ModuleType, key: str, rx: OtlpReceiver, expected: Expected
) -> None:
    """Keyed on the object (bucket, key, version), not on the event: EventBridge and a payload match S3's."""
    first = invoke(app, s3_event(BUCKET, key, version_id="v7"))
    attempts = rx.attempts
    assert invoke(app, eventbridge_event(BUCKET, key, version_id="v7")) == first
    assert invoke(app, {"bucket": BUCKET, "output_key": key, "object_version": "v7"}) == first
    assert rx.attempts == attempts
    assert_exactly_once(rx.spans, expected)


@pytest.mark.parametrize(
    ("first_event", "second_event"),
    [
        ({"version_id": "v1"}, {"version_id": "v2"}),
        ({"sequencer": "0067CE3A29634F1B00"}, {"sequencer": "0067CE3A29634F1C00"}),
    ],
    ids=["new-version", "new-sequencer"],
)
def test_a_new_upload_of_the_output_is_processed_again(
    app: ModuleType,
    key: str,
    rx: OtlpReceiver,
    expected: Expected,
    idempotency_table: Any,
    first_event: dict[str, str],
    second_event: dict[str, str],
) -> None:
    first = invoke(app, s3_event(BUCKET, key, **first_event))
    assert_exactly_once(rx.spans, expected)
    rx.reset()
    second = invoke(app, s3_event(BUCKET, key, **second_event))
    assert_exactly_once(rx.spans, expected)  # the same deterministic spans, sent again
    assert without_timings(second) == without_timings(first)
    assert len(records(idempotency_table)) == 2


def test_a_failed_first_run_lets_the_retry_through(
    app: ModuleType, key: str, rx: OtlpReceiver, expected: Expected, idempotency_table: Any
) -> None:
    event = s3_event(BUCKET, key, version_id="v1")
    rx.set_faults(always_status=500)
    with pytest.raises(DeliveryError) as caught:
        invoke(app, event, FakeLambdaContext(remaining_ms=17_000))  # margin 15 s: 2 s of retries
    n = len(expected)
    assert f"{n} of {n} spans not delivered" in str(caught.value)
    assert rx.spans == []
    assert all(item["status"] != "COMPLETED" for item in records(idempotency_table))

    rx.clear_faults()
    rx.reset()
    second = invoke(app, event)
    assert_exactly_once(rx.spans, expected)
    assert_accounted(second, expected)

    attempts = rx.attempts
    assert invoke(app, event) == second  # and now it is done: a third delivery exports nothing
    assert rx.attempts == attempts


def test_an_output_whose_input_was_not_yet_there_is_retried(
    s3: Any, key: str, batch: Batch, app: ModuleType, rx: OtlpReceiver, expected: Expected
) -> None:
    folder = f"batches/{batch.batch_id}"
    s3.delete_object(Bucket=BUCKET, Key=f"{folder}/input.jsonl")
    event = s3_event(BUCKET, key, version_id="v1")
    with pytest.raises(MissingFileError):
        invoke(app, event)
    assert rx.attempts == 0
    s3.put_object(Bucket=BUCKET, Key=f"{folder}/input.jsonl", Body=batch.input_bytes())
    summary = invoke(app, event)
    assert_exactly_once(rx.spans, expected)
    assert_accounted(summary, expected)


def _rewrite(table: Any, **changes: Any) -> None:
    item = the_record(table)
    for name, value in changes.items():
        if value is None:
            item.pop(name, None)
        else:
            item[name] = value
    table.put_item(Item=item)


def test_an_in_progress_record_past_its_expiry_lets_a_retry_through(
    app: ModuleType, key: str, rx: OtlpReceiver, expected: Expected, idempotency_table: Any
) -> None:
    """A Lambda that timed out mid-run leaves INPROGRESS behind; once it expires, a retry runs."""
    event = s3_event(BUCKET, key, version_id="v1")
    invoke(app, event)
    now_ms = int(time.time() * 1000)
    _rewrite(idempotency_table, status="INPROGRESS", in_progress_expiration=Decimal(now_ms - 1_000), data=None)
    rx.reset()
    summary = invoke(app, event)
    assert_exactly_once(rx.spans, expected)
    assert_accounted(summary, expected)
    assert the_record(idempotency_table)["status"] == "COMPLETED"


def test_a_live_in_progress_record_holds_back_a_concurrent_duplicate(
    app: ModuleType, key: str, rx: OtlpReceiver, idempotency_table: Any
) -> None:
    """While the first invocation may still be running, a duplicate exports nothing (and is retried later)."""
    event = s3_event(BUCKET, key, version_id="v1")
    invoke(app, event)
    now_ms = int(time.time() * 1000)
    _rewrite(idempotency_table, status="INPROGRESS", in_progress_expiration=Decimal(now_ms + 60_000), data=None)
    rx.reset()
    with pytest.raises(IdempotencyAlreadyInProgressError):
        invoke(app, event)
    assert rx.attempts == 0


def test_an_expired_completed_record_is_processed_again(
    app: ModuleType, key: str, rx: OtlpReceiver, expected: Expected, idempotency_table: Any
) -> None:
    event = s3_event(BUCKET, key, version_id="v1")
    invoke(app, event)
    _rewrite(idempotency_table, expiration=Decimal(int(time.time()) - 10))
    rx.reset()
    invoke(app, event)
    assert_exactly_once(rx.spans, expected)


def test_the_in_progress_record_expires_when_the_lambda_would_have_timed_out(
    app: ModuleType, key: str, rx: OtlpReceiver, expected: Expected, idempotency_table: Any
) -> None:
    """The record's in-progress expiry is the invocation's end, so a killed run does not block retries for a day."""
    rx.set_faults(delay_s=0.5)
    seen: list[dict[str, Any]] = []

    def watch() -> None:
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            seen.extend(item for item in records(idempotency_table) if item["status"] == "INPROGRESS")
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    started_ms = time.time() * 1000
    watcher.start()
    invoke(app, s3_event(BUCKET, key, version_id="v1"), FakeLambdaContext(remaining_ms=20_000))
    watcher.join(6)
    assert seen, "never saw the INPROGRESS record"
    expiry = int(seen[0]["in_progress_expiration"])
    assert started_ms + 17_000 <= expiry <= started_ms + 22_000, expiry - started_ms
    assert_exactly_once(rx.spans, expected)
    assert Counter(r["status"] for r in records(idempotency_table)) == {"COMPLETED": 1}
