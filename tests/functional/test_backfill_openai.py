"""``batchtrace backfill --provider openai``, run as a subprocess against a fake OpenAI API and the real OTLP receiver.

The CLI lists batches with the official openai SDK (``OPENAI_BASE_URL`` with ``/v1``) from
``tests/support/fake_openai.py``, which pages them two at a time here, so the SDK's pagination
(``after``, ``has_more``) is exercised over several pages. What a user notices is checked: each
finished batch's spans arrive once (counted per batch id on the receiver, which decodes the real
protobuf), a batch that failed or was cancelled still gets its ``batch_results`` span, a running
batch is left for later, the progress lines and the table say so, a second run sends nothing new,
an interrupted or partly failed run resumes, and a refused key is exit 2 in one line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.batches import batch_object
from tests.support.cli import assert_exit, assert_usage_error, console_script, run_batchtrace
from tests.support.fake_openai import FakeOpenAI
from tests.support.fixtures import FORMATS
from tests.support.moto_s3 import BUCKET
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.timeout(90)

API_KEY = "sk-test-" + "Bf4kLw9Qz2Xc7Vn1Mp5Rt8Hy"
OPENAI = FORMATS / "openai"
BATCH_ID = "batchtrace.batch_id"
#: The fixture batch: 12 requests, 7 results and 5 error lines: 12 completion spans and ``batch_results``.
SPANS_WITH_FILES = 13
DAY = 86_400
#: Noon UTC on 2026-08-10: batch i of :data:`BATCHES` is created i days later.
T0 = int(datetime(2026, 8, 10, 12, tzinfo=UTC).timestamp())
META_TRACE, META_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"

#: (id, status, has files), oldest first; listed newest first, two per page: four pages.
BATCHES = (
    ("batch_old0completed", "completed", True),
    ("batch_traced1completed", "completed", True),
    ("batch_running2", "in_progress", False),
    ("batch_cancelled3", "cancelled", False),
    ("batch_failed4", "failed", False),
    ("batch_expired5", "expired", True),
    ("batch_new6completed", "completed", True),
)
FINISHED = {
    batch_id: (SPANS_WITH_FILES if files else 1) for batch_id, status, files in BATCHES if status != "in_progress"
}


def day(i: int) -> str:
    """The date (YYYY-MM-DD) batch ``i`` was created on."""
    return datetime.fromtimestamp(T0 + i * DAY, UTC).strftime("%Y-%m-%d")


def the_batch(i: int, batch_id: str, status: str, files: bool) -> dict[str, Any]:
    counts = {"total": 12, "completed": 7, "failed": 3} if files else {"total": 12, "completed": 0, "failed": 0}
    ids = {"output_file_id": "file-out", "error_file_id": "file-err"} if files else {}
    metadata = {"traceparent": f"00-{META_TRACE}-{META_SPAN}-01"} if "traced" in batch_id else None
    obj = batch_object(batch_id, status, created_at=T0 + i * DAY, metadata=metadata, **ids, **counts)
    return {**obj, "finalizing_at": None} if status == "cancelled" else obj


@pytest.fixture(scope="module")
def fake_api() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=API_KEY) as api:
        yield api


@pytest.fixture
def api(fake_api: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, receiver: OtlpReceiver) -> FakeOpenAI:
    """The fake API with the seven batches and their files; the CLI's environment pointing at it."""
    fake_api.clear()
    fake_api.api_key = API_KEY
    fake_api.page_cap = 2
    fake_api.add_file("file-input", (OPENAI / "chat.requests.jsonl").read_bytes())
    fake_api.add_file("file-out", (OPENAI / "chat.results.jsonl").read_bytes())
    fake_api.add_file("file-err", (OPENAI / "chat.errors.jsonl").read_bytes())
    for i, (batch_id, status, files) in enumerate(BATCHES):
        fake_api.set_batch(batch_id, the_batch(i, batch_id, status, files))
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_api.base_url)
    monkeypatch.setenv("BATCHTRACE_OPENAI_MAX_RETRIES", "0")
    return fake_api


def backfill(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``batchtrace backfill --provider openai <args>`` with this test's environment."""
    return run_batchtrace("backfill", "--provider", "openai", *args, script=True, timeout=60)


def per_batch(spans: list[ReceivedSpan]) -> Counter[str]:
    """Distinct spans received per batch id (a span re-sent after a retry counts once)."""
    unique = {(s.trace_id, s.span_id): s for s in spans}
    return Counter(str(s.attributes.get(BATCH_ID)) for s in unique.values())


def table_rows(stdout: str, prefix: str = "batch_") -> dict[str, str]:
    """The table's rows by batch id (the first column; ids start with ``prefix``)."""
    return {line.split()[0]: line for line in stdout.splitlines()[1:] if line.startswith(prefix)}


def state_of(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


# --------------------------------------------------------------------------- sending, once


def assert_received(receiver: OtlpReceiver, expected: dict[str, int]) -> None:
    """Exactly these batches' spans arrived, each span once (settling a moment for strays)."""
    assert receiver.wait_for_spans(sum(expected.values()))
    time.sleep(0.2)
    assert per_batch(receiver.spans) == expected


def listing_requests(api: FakeOpenAI) -> list[str]:
    return [path for path in api.paths() if path.startswith("/v1/batches?")]


def completions_of(receiver: OtlpReceiver, batch_id: str) -> list[ReceivedSpan]:
    return [s for s in receiver.spans if s.attributes.get(BATCH_ID) == batch_id and s.kind == "CLIENT"]


def progress_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("batchtrace: [")]


def assert_first_run_table(stdout: str) -> None:
    rows = table_rows(stdout)
    assert list(rows) == [b for b, _, _ in reversed(BATCHES)], "newest first"
    assert "sent (13 spans)" in rows["batch_expired5"]
    assert "13" in rows["batch_expired5"].split(), "the SENT column"
    assert "batch span only" in rows["batch_failed4"]
    assert "not finished (in_progress)" in rows["batch_running2"]
    assert f"6 sent, 1 not finished; {sum(FINISHED.values())} spans delivered" in stdout


def assert_first_run_progress(stderr: str) -> None:
    progress = progress_lines(stderr)
    assert len(progress) == 7
    assert progress[0].startswith("batchtrace: [1/7] batch_new6completed (completed): sent")
    assert "7 openai batches selected" in stderr
    assert stderr.count("old spans") == 1, "the old-span hint once per run, not once per batch"


def assert_second_run_table(stdout: str) -> None:
    rows = table_rows(stdout)
    assert all("skipped (already delivered)" in rows[b] for b in FINISHED)
    assert "13" in rows["batch_expired5"].split(), "the skipped batch's figures come from the state"
    assert "6 skipped, 1 not finished; 0 spans delivered" in stdout


def test_every_finished_batch_is_sent_once_and_a_second_run_sends_nothing(
    api: FakeOpenAI, receiver: OtlpReceiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = backfill()
    assert_exit(first)
    assert_received(receiver, FINISHED)  # each finished batch once, the running one not at all
    # Four pages of two, the SDK following `after` while the fake says has_more.
    listing = listing_requests(api)
    assert len(listing) == 4, listing
    assert ["after=batch_expired5" in listing[1], "after=batch_cancelled3" in listing[2]] == [True, True]
    # The input file was read: completions carry the request's messages.
    assert all("gen_ai.input.messages" in s.attributes for s in completions_of(receiver, "batch_expired5"))
    assert_first_run_table(first.stdout)
    assert_first_run_progress(first.stderr)
    state_path = tmp_path / "cache" / "batchtrace" / "backfill-openai.json"
    assert set(state_of(state_path)["batches"]) == set(FINISHED)

    before = receiver.span_count
    second = backfill()
    assert_exit(second)
    time.sleep(0.2)
    assert receiver.span_count == before, "nothing new on a second run"
    assert_second_run_table(second.stdout)


def test_a_batchs_metadata_traceparent_places_its_spans_in_the_submitting_trace(
    api: FakeOpenAI, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    assert_exit(backfill("--state", tmp_path / "state.json", "--since", day(1), "--until", day(1)))
    assert receiver.wait_for_spans(SPANS_WITH_FILES)
    spans = receiver.spans
    assert per_batch(spans) == {"batch_traced1completed": SPANS_WITH_FILES}
    assert {s.trace_id for s in spans} == {META_TRACE}
    [root] = [s for s in spans if s.name == "batch_results"]
    assert root.parent_span_id == META_SPAN
    # Without metadata: a trace of its own, derived from the batch id (the same on every run).
    receiver.reset()
    assert_exit(backfill("--state", tmp_path / "other.json", "--since", day(0), "--until", day(0)))
    assert receiver.wait_for_spans(SPANS_WITH_FILES)
    assert len({s.trace_id for s in receiver.spans}) == 1 and receiver.spans[0].trace_id != META_TRACE


# --------------------------------------------------------------------------- choosing batches


@pytest.mark.parametrize(
    ("args", "chosen", "pages"),
    [
        (("--since", day(3), "--until", day(5)), {"batch_cancelled3", "batch_failed4", "batch_expired5"}, 3),
        (
            ("--status", "completed", "expired"),
            {"batch_new6completed", "batch_expired5", "batch_traced1completed", "batch_old0completed"},
            4,
        ),
        (("--status", "failed,cancelled", "--limit", "1"), {"batch_failed4"}, 2),
        (("--limit", "2"), {"batch_new6completed", "batch_expired5"}, 1),
    ],
    ids=["since-until", "status", "status-limit", "limit"],
)
def test_filters_choose_the_batches_sent(
    api: FakeOpenAI, receiver: OtlpReceiver, tmp_path: Path, args: tuple[str, ...], chosen: set[str], pages: int
) -> None:
    result = backfill("--state", tmp_path / "state.json", *args)
    assert_exit(result)
    assert receiver.wait_for_spans(sum(FINISHED[b] for b in chosen))
    time.sleep(0.2)
    assert set(per_batch(receiver.spans)) == chosen
    assert set(table_rows(result.stdout)) == chosen
    # Listed newest first: the listing stops once the window or the limit is passed.
    assert len([p for p in api.paths() if p.startswith("/v1/batches?")]) == pages


def file_reads(api: FakeOpenAI) -> int:
    return len([path for path in api.paths() if path.startswith("/v1/files/")])


def assert_dry_run_table(stdout: str) -> None:
    rows = table_rows(stdout)
    assert "listed (dry run)" in rows["batch_expired5"]
    assert "listed (dry run)" in rows["batch_failed4"]
    assert "skipped (already delivered)" in rows["batch_new6completed"]
    assert "not finished" in rows["batch_running2"]
    assert "dry run: nothing sent, no state written" in stdout


def test_dry_run_lists_what_would_be_done_and_sends_and_writes_nothing(
    api: FakeOpenAI, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    assert_exit(backfill("--state", state, "--status", "completed"))  # a real run of the completed ones first
    assert receiver.wait_for_spans(3 * SPANS_WITH_FILES)
    recorded, before, reads = state.read_bytes(), receiver.span_count, file_reads(api)

    dry = backfill("--state", state, "--dry-run")
    assert_exit(dry)
    time.sleep(0.2)
    assert receiver.span_count == before, "a dry run sends nothing"
    assert state.read_bytes() == recorded, "and writes no state"
    assert file_reads(api) == reads, "and reads no file"
    assert_dry_run_table(dry.stdout)


# --------------------------------------------------------------------------- resuming


def test_a_batch_the_receiver_refused_is_exit_1_and_the_next_run_sends_only_it(
    api: FakeOpenAI, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    receiver.set_faults(reject_containing=b"batch_expired5", fail_status=400)
    first = backfill("--state", state)
    assert_exit(first, 1)
    rows = table_rows(first.stdout)
    assert "failed: 13 of 13 spans not delivered" in rows["batch_expired5"]
    assert "sent" in rows["batch_old0completed"], "the other batches went on"
    assert "batch_expired5" not in state_of(state)["batches"]
    assert set(state_of(state)["batches"]) == set(FINISHED) - {"batch_expired5"}

    receiver.clear_faults()
    receiver.reset()
    second = backfill("--state", state)
    assert_exit(second)
    assert receiver.wait_for_spans(SPANS_WITH_FILES)
    time.sleep(0.2)
    assert per_batch(receiver.spans) == {"batch_expired5": SPANS_WITH_FILES}


def recorded(state: Path) -> set[str]:
    """The batches the state file records as delivered (none while it does not exist)."""
    return set(state_of(state)["batches"]) if state.exists() else set()


def interrupt_after_first_batch(state: Path) -> tuple[int, str]:
    """Run the backfill, Ctrl-C it once the state records a batch; its exit code and stderr."""
    proc = subprocess.Popen(
        [console_script(), "backfill", "--provider", "openai", "--state", str(state)],
        env=dict(os.environ, PYTHONIOENCODING="utf-8"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not recorded(state):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    return proc.returncode, stderr


def test_ctrl_c_keeps_the_state_and_a_rerun_sends_the_rest(
    api: FakeOpenAI, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    receiver.set_faults(delay_s=0.3)  # each batch takes a moment: time to interrupt after the first
    code, stderr = interrupt_after_first_batch(state)
    assert code == 130, (code, stderr)
    assert "Traceback" not in stderr
    assert f"interrupted; the batches delivered so far are recorded (kept in {state})" in stderr.splitlines()[-1]
    done_first = recorded(state)
    assert set() < done_first < set(FINISHED)

    receiver.clear_faults()
    receiver.reset()
    assert_exit(backfill("--state", state))
    assert_received(receiver, {b: n for b, n in FINISHED.items() if b not in done_first})
    assert recorded(state) == set(FINISHED), "what was recorded is not sent again; the rest is now"


# --------------------------------------------------------------------------- files that are gone, S3


def test_files_openai_no_longer_has(api: FakeOpenAI, receiver: OtlpReceiver, tmp_path: Path) -> None:
    """No output file: the batch span alone. No input file: the results without their requests."""
    api.clear()
    api.add_file("file-out", (OPENAI / "chat.results.jsonl").read_bytes())
    api.add_file("file-err", (OPENAI / "chat.errors.jsonl").read_bytes())
    gone = the_batch(1, "batch_gone1", "completed", True) | {"output_file_id": "file-deleted"}
    api.set_batch("batch_gone1", gone)
    api.set_batch("batch_noinput0", the_batch(0, "batch_noinput0", "completed", True))
    result = backfill("--state", tmp_path / "state.json")
    assert_exit(result)
    rows = table_rows(result.stdout)
    assert "batch span only" in rows["batch_gone1"] and "file-deleted" in rows["batch_gone1"]
    assert "sent without the requests" in rows["batch_noinput0"]
    assert receiver.wait_for_spans(1 + SPANS_WITH_FILES)
    time.sleep(0.2)
    assert per_batch(receiver.spans) == {"batch_gone1": 1, "batch_noinput0": SPANS_WITH_FILES}


def test_bucket_puts_each_batch_in_its_s3_folder_and_sends_from_there(
    api: FakeOpenAI, receiver: OtlpReceiver, s3: Any, tmp_path: Path
) -> None:
    result = backfill("--state", tmp_path / "state.json", "--bucket", BUCKET, "--prefix", "past/", "--since", day(4))
    assert_exit(result)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="past/").get("Contents", [])}
    names = ("input.jsonl", "errors.jsonl", "batch.json", "output.jsonl")
    assert {f"past/batch_expired5/{n}" for n in names} <= keys
    assert (
        s3.get_object(Bucket=BUCKET, Key="past/batch_expired5/input.jsonl")["Body"].read()
        == (OPENAI / "chat.requests.jsonl").read_bytes()
    )
    assert not any(k.startswith("past/batch_failed4/") for k in keys), "a batch without files has no folder"
    expected = {b: FINISHED[b] for b in ("batch_failed4", "batch_expired5", "batch_new6completed")}
    assert receiver.wait_for_spans(sum(expected.values()))
    time.sleep(0.2)
    assert per_batch(receiver.spans) == expected


def test_local_keeps_each_batchs_files(api: FakeOpenAI, receiver: OtlpReceiver, tmp_path: Path) -> None:
    assert_exit(backfill("--state", tmp_path / "state.json", "--local", tmp_path / "kept", "--limit", "2"))
    folder = tmp_path / "kept" / "batch_expired5"
    assert (folder / "input.jsonl").read_bytes() == (OPENAI / "chat.requests.jsonl").read_bytes()
    assert json.loads((folder / "batch.json").read_text(encoding="utf-8"))["status"] == "expired"
    assert {p.name for p in folder.iterdir()} == {"input.jsonl", "errors.jsonl", "batch.json", "output.jsonl"}


# --------------------------------------------------------------------------- errors


def test_a_refused_key_is_exit_2_in_one_line(
    api: FakeOpenAI, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-" + "x" * 20)
    line = assert_usage_error(backfill("--state", tmp_path / "state.json"), "OpenAI refused the API key", "HTTP 401")
    assert "x" * 20 not in line
    assert receiver.span_count == 0


def test_openai_unreachable_is_exit_1_in_one_line(api: FakeOpenAI, receiver: OtlpReceiver, tmp_path: Path) -> None:
    api.fail("/v1/batches", status=500)
    result = backfill("--state", tmp_path / "state.json")
    assert_exit(result, 1)
    assert (
        result.stderr.strip().splitlines()[-1]
        == "batchtrace: error: could not reach OpenAI while listing batches (HTTP 500)"
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--since", "last tuesday"), "is not a date"),
        (("--status", "done"), "unknown openai status done"),
        (("--since", "2026-08-12", "--until", "2026-08-11"), "--since is after --until"),
        (("--limit", "0"), "--limit must be at least 1"),
        (("--prefix", "x/"), "--prefix needs --bucket"),
        (("--requests-dir", "."), "--requests-dir is for --provider anthropic"),
    ],
)
def test_unusable_arguments_are_exit_2_in_one_line(
    api: FakeOpenAI, receiver: OtlpReceiver, tmp_path: Path, args: tuple[str, ...], needle: str
) -> None:
    assert_usage_error(backfill("--state", tmp_path / "state.json", *args), needle)


def test_a_state_file_that_is_not_ours_is_exit_2(api: FakeOpenAI, receiver: OtlpReceiver, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("{not json", encoding="utf-8")
    assert_usage_error(backfill("--state", state), "state file", "unreadable")
    state.write_text(json.dumps({"version": 1, "provider": "anthropic", "batches": {}}), encoding="utf-8")
    assert_usage_error(backfill("--state", state), "is not the state of a --provider openai backfill")
