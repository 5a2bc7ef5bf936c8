"""``batchtrace backfill --provider anthropic``, run as a subprocess against a fake Message Batches API.

The official anthropic SDK lists the batches (``ANTHROPIC_BASE_URL`` pointing at
``tests/support/fake_anthropic.py``, two per page: ``after_id``, ``has_more``, ``last_id``), waits
out a 429 with ``retry-after`` and retries, and streams each ended batch's results from its
``results_url``. The fake checks ``x-api-key`` and ``anthropic-version`` on every request. The
real OTLP receiver counts the spans per batch. The API cannot return the requests, so a batch
whose requests the user kept (``--requests-dir``) has input messages on its spans and one
without has not, and the table says so.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.functional.test_backfill_openai import assert_received, per_batch, table_rows
from tests.support.cli import assert_exit, assert_usage_error, run_batchtrace
from tests.support.fake_anthropic import FakeAnthropic, message_batch
from tests.support.fixtures import FORMATS
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.timeout(90)

API_KEY = "sk-ant-test-" + "Qm3Vb8Nx2Lk7Jh4Gf"
ANTHROPIC = FORMATS / "anthropic"
REQUESTS = (ANTHROPIC / "requests.jsonl").read_bytes()
RESULTS = (ANTHROPIC / "results.jsonl").read_bytes()
COUNTS = json.loads((ANTHROPIC / "batch.json").read_text(encoding="utf-8"))["request_counts"]
#: 12 results: 12 completion spans and ``batch_results``.
SPANS_WITH_RESULTS = 13
INPUT_MESSAGES = "gen_ai.input.messages"


def created(i: int) -> str:
    return f"2026-08-1{i}T09:00:00.000000Z"


def ended(i: int, *, cancelled: bool = False) -> dict[str, Any]:
    cancel = f"2026-08-1{i}T10:00:00.000000Z" if cancelled else None
    return message_batch(
        f"msgbatch_{i}", "ended", created_at=created(i), ended_at=f"2026-08-1{i}T11:00:00.000000Z",
        cancel_initiated_at=cancel, counts=dict(COUNTS),
    )  # fmt: skip


@pytest.fixture(scope="module")
def fake_api() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=API_KEY) as api:
        yield api


@pytest.fixture
def api(fake_api: FakeAnthropic, monkeypatch: pytest.MonkeyPatch, receiver: OtlpReceiver) -> FakeAnthropic:
    """Five batches, newest last: two with results and requests kept, one cancelled whose requests
    were not kept, one still running, one whose results are no longer served."""
    fake_api.clear()
    fake_api.api_key = API_KEY
    fake_api.page_cap = 2
    fake_api.add_batch(ended(0), results=RESULTS)
    fake_api.add_batch(ended(1, cancelled=True), results=RESULTS)
    fake_api.add_batch(message_batch("msgbatch_2", "in_progress", created_at=created(2)))
    fake_api.add_batch(ended(3))  # archived: no results_url
    fake_api.add_batch(ended(4), results=RESULTS)
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_api.base_url)
    return fake_api


@pytest.fixture
def requests_dir(tmp_path: Path) -> Path:
    """The requests the user kept, for two of the batches."""
    folder = tmp_path / "requests"
    folder.mkdir()
    for batch_id in ("msgbatch_0", "msgbatch_4"):
        (folder / f"{batch_id}.jsonl").write_bytes(REQUESTS)
    return folder


def backfill(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``batchtrace backfill --provider anthropic <args>`` with this test's environment."""
    return run_batchtrace("backfill", "--provider", "anthropic", *args, script=True, timeout=60)


EXPECTED = {"msgbatch_0": 13, "msgbatch_1": 13, "msgbatch_3": 1, "msgbatch_4": 13}


def completions_of(receiver: OtlpReceiver, batch_id: str) -> list[ReceivedSpan]:
    return [s for s in receiver.spans if s.attributes.get("batchtrace.batch_id") == batch_id and s.kind == "CLIENT"]


def assert_sdk_calls(api: FakeAnthropic) -> None:
    """The SDK waited out the 429, then paged with after_id; every request had the key and a version."""
    seen = api.requests
    assert [r.status for r in seen][:2] == [429, 200]
    listing = [r.path for r in seen if r.path.startswith("/v1/messages/batches?")]
    assert len(listing) == 4, listing
    assert ["after_id=msgbatch_3" in listing[2], "after_id=msgbatch_1" in listing[3]] == [True, True]
    assert all(r.authorized and r.version for r in seen)
    assert "/v1/messages/batches/msgbatch_4/results" in [r.path for r in seen]


def assert_spans_with_and_without_requests(receiver: OtlpReceiver) -> None:
    kept, not_kept = completions_of(receiver, "msgbatch_4"), completions_of(receiver, "msgbatch_1")
    assert kept and all(INPUT_MESSAGES in s.attributes for s in kept), "requests kept: input messages"
    assert not_kept and not any(INPUT_MESSAGES in s.attributes for s in not_kept), "no requests: no input"
    assert {s.attributes.get("gen_ai.provider.name") for s in kept} == {"anthropic"}
    roots = {s.attributes["batchtrace.batch_id"]: s for s in receiver.spans_by_name("batch_results")}
    assert roots["msgbatch_1"].status_code == "ERROR", "a cancelled batch's span is in ERROR"


def assert_first_run_table(stdout: str) -> None:
    rows = table_rows(stdout, "msgbatch_")
    assert "ended (cancelled)" in rows["msgbatch_1"]
    assert "no input messages" in rows["msgbatch_1"]
    assert "sent (13 spans)" in rows["msgbatch_4"]
    assert "batch span only: Anthropic no longer serves its results" in rows["msgbatch_3"]
    assert "not finished (in_progress)" in rows["msgbatch_2"]


def test_ended_batches_are_sent_once_through_the_sdk_and_a_rerun_sends_nothing(
    api: FakeAnthropic, receiver: OtlpReceiver, requests_dir: Path, tmp_path: Path
) -> None:
    api.fail("/v1/messages/batches", status=429, times=1, retry_after="1")
    state = tmp_path / "state.json"
    first = backfill("--state", state, "--requests-dir", requests_dir)
    assert_exit(first)
    assert_received(receiver, EXPECTED)
    assert_sdk_calls(api)
    assert_spans_with_and_without_requests(receiver)
    assert_first_run_table(first.stdout)
    assert "[5/5] msgbatch_0 (ended (expired)): sent" in first.stderr

    before = receiver.span_count
    second = backfill("--state", state, "--requests-dir", requests_dir)
    assert_exit(second)
    time.sleep(0.2)
    assert receiver.span_count == before, "nothing new on a second run"
    assert second.stdout.count("skipped (already delivered)") == 4


@pytest.mark.parametrize(
    ("args", "chosen"),
    [
        (("--status", "cancelled"), {"msgbatch_1"}),
        (("--status", "ended", "--limit", "2"), {"msgbatch_4", "msgbatch_3"}),
        (("--since", "2026-08-11", "--until", "2026-08-13"), {"msgbatch_1", "msgbatch_2", "msgbatch_3"}),
    ],
    ids=["outcome", "status-limit", "since-until"],
)
def test_dry_run_with_filters_lists_the_chosen_batches(
    api: FakeAnthropic, receiver: OtlpReceiver, tmp_path: Path, args: tuple[str, ...], chosen: set[str]
) -> None:
    result = backfill("--state", tmp_path / "state.json", "--dry-run", *args)
    assert_exit(result)
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("msgbatch_")}
    assert listed == chosen
    assert not (tmp_path / "state.json").exists()
    assert not any(r.path.endswith("/results") for r in api.requests), "a dry run reads no results"
    assert receiver.span_count == 0


def test_bucket_streams_the_results_into_the_batchs_s3_folder(
    api: FakeAnthropic, receiver: OtlpReceiver, requests_dir: Path, s3: Any, tmp_path: Path
) -> None:
    from tests.support.moto_s3 import BUCKET

    args = ("--state", tmp_path / "state.json", "--bucket", BUCKET, "--requests-dir", requests_dir, "--limit", "1")
    assert_exit(backfill(*args))
    folder = "batches/msgbatch_4/"
    assert s3.get_object(Bucket=BUCKET, Key=folder + "output.jsonl")["Body"].read() == RESULTS
    assert s3.get_object(Bucket=BUCKET, Key=folder + "input.jsonl")["Body"].read() == REQUESTS
    assert json.loads(s3.get_object(Bucket=BUCKET, Key=folder + "batch.json")["Body"].read())["id"] == "msgbatch_4"
    assert receiver.wait_for_spans(SPANS_WITH_RESULTS)
    time.sleep(0.2)
    assert per_batch(receiver.spans) == {"msgbatch_4": SPANS_WITH_RESULTS}


def test_a_refused_key_is_exit_2_in_one_line(
    api: FakeAnthropic, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-wrong-" + "y" * 20)
    line = assert_usage_error(backfill("--state", tmp_path / "state.json"), "Anthropic refused the API key", "HTTP 401")
    assert "y" * 20 not in line
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    assert_usage_error(backfill("--state", tmp_path / "state.json"), "ANTHROPIC_API_KEY is empty")
    assert receiver.span_count == 0
