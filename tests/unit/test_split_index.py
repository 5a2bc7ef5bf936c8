"""A large local input indexed on two cores gives the index one pass gives, whatever the file holds.

The split falls anywhere: inside a run of duplicated ids, next to malformed, blank and CRLF
lines, before a last line without a newline. Each case is indexed in one pass from a stream
(spooled) and split in two from the same bytes on disk; everything a run reads from the index
must be equal: counts, malformed line numbers and reasons, the digest, which request each id
gives in turn, and what is left over.
"""

from __future__ import annotations

import io
import os
import random
from pathlib import Path
from typing import Any

import pytest
from batchtrace.read import request_index, split_index
from batchtrace.read.request_index import RequestIndex

from tests.unit.test_request_index import chat_request, jsonl, request_id


def index_view(index: RequestIndex) -> dict[str, Any]:
    """Everything a run reads from an index, consuming it."""
    view: dict[str, Any] = {
        "requests": index.requests,
        "duplicate_ids": index.duplicate_ids,
        "malformed": (index.malformed.count, index.malformed.examples),
        "digest": index.content_digest,
    }
    taken = []
    for custom_id in ("dup", "req-3", "req-7", "dup", "missing", "req-3"):
        entry = index.take_entry(custom_id)
        taken.append(None if entry is None else index.read(entry))
    view["taken"] = taken
    view["left"] = [(custom_id, index.read(entry)) for entry, custom_id in index.remaining()]
    return view


def messy_input(rng: random.Random, lines: int) -> bytes:
    """Requests with multilingual text, duplicated ids, and broken lines of every kind here and there."""
    out: list[bytes] = []
    for n in range(lines):
        roll = rng.random()
        if roll < 0.05:
            out.append(rng.choice([b"", b"{broken", b"[1, 2]", b'{"custom_id": "x"}', b"\xff\xfe", b"null"]))
        elif roll < 0.15:
            out.append(jsonl([chat_request("dup", f"copy {n} ñandú 日本語 🚀")])[:-1])
        else:
            text = f"request {n} " + "Grüße Привет 東京 " * rng.randint(0, 30)
            line = jsonl([chat_request(f"req-{n % 40}", text)])[:-1]
            out.append(line + b"\r" if rng.random() < 0.05 else line)
    data = b"\n".join(out)
    return data if rng.random() < 0.5 else data + b"\n"


@pytest.mark.parametrize("seed", range(12))
def test_a_split_index_equals_the_single_pass(seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Split in the middle, or mostly to the helper while the main process does start-up work."""
    rng = random.Random(seed)
    data = messy_input(rng, rng.randint(20, 400))
    path = tmp_path / "input.jsonl"
    path.write_bytes(data)
    monkeypatch.setattr(request_index, "SPLIT_MIN_BYTES", 0)
    single = RequestIndex.from_stream(io.BytesIO(data), request_id, "input.jsonl")
    work: list[str] = []
    with path.open("rb") as stream:
        meanwhile = (lambda: work.append("done")) if seed % 2 else request_index._nothing
        split = RequestIndex.from_stream(stream, request_id, "input.jsonl", parallel=True, meanwhile=meanwhile)
        assert index_view(split) == index_view(single)
    assert work == (["done"] if seed % 2 else [])


@pytest.mark.parametrize("local", [True, False])
def test_start_up_work_runs_once_whether_the_input_is_split_or_spooled(local: bool, tmp_path: Path) -> None:
    data = messy_input(random.Random(5), 50)
    path = tmp_path / "input.jsonl"
    path.write_bytes(data)
    work: list[str] = []
    with path.open("rb") if local else io.BytesIO(data) as stream:
        index = RequestIndex.from_stream(stream, request_id, "input.jsonl", meanwhile=lambda: work.append("prices"))
        assert index.requests == RequestIndex.from_stream(io.BytesIO(data), request_id, "input.jsonl").requests
    assert work == ["prices"]


def test_a_helper_that_dies_costs_time_not_requests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The helper process exits without answering: its half is indexed by the main process instead."""
    data = messy_input(random.Random(99), 300)
    path = tmp_path / "input.jsonl"
    path.write_bytes(data)
    monkeypatch.setattr(request_index, "SPLIT_MIN_BYTES", 0)
    monkeypatch.setattr(split_index, "_serve_range", lambda *args: os._exit(3))
    single = RequestIndex.from_stream(io.BytesIO(data), request_id, "input.jsonl")
    with path.open("rb") as stream:
        split = RequestIndex.from_stream(stream, request_id, "input.jsonl", parallel=True)
        assert index_view(split) == index_view(single)
        assert split.requests > 250


def test_the_split_falls_after_a_newline_past_the_middle(tmp_path: Path) -> None:
    path = tmp_path / "lines.jsonl"
    path.write_bytes(b"aaaa\nbbbbbbbbbb\ncc\n")
    with path.open("rb") as stream:
        fd, size = stream.fileno(), os.fstat(stream.fileno()).st_size
        assert split_index.split_point(fd, 0, size) == 16  # the middle (9) falls inside "bbbbbbbbbb"
        assert split_index.split_point(fd, 16, size) is None  # the only newline ends the range
        assert split_index.split_point(fd, 0, size, helper_share=0.8) == 5  # 80% left from byte 4
