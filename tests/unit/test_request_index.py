"""The input index: requests found by custom_id in any order, duplicates kept, memory bounded."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest
from batchtrace.extract.openai import ADAPTER
from batchtrace.read.jsonl import Readable
from batchtrace.read.request_index import RequestIndex


def chat_request(custom_id: str = "req-1", content: str = "Say hello") -> dict[str, Any]:
    """An OpenAI Batch API input line for ``/v1/chat/completions``."""
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], "max_tokens": 64},
    }


def request_id(obj: dict[str, Any], line_no: int) -> tuple[str | None, str]:
    """The batch's format's id of an input line, as the run gives it to the index."""
    custom_id = ADAPTER.request_id(obj)
    return custom_id, "" if custom_id else "not an openai request line"


def jsonl(lines: Iterable[dict[str, Any] | bytes]) -> bytes:
    return b"".join((line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines)


def index_of(data: bytes | Readable) -> RequestIndex:
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    return RequestIndex.from_stream(stream, request_id, "input.jsonl")


def take(index: RequestIndex, custom_id: str) -> dict[str, Any] | None:
    """The next unmatched request with ``custom_id``, read back from the index, or ``None``."""
    entry = index.take_entry(custom_id)
    if entry is None:
        return None
    request: dict[str, Any] = orjson.loads(index.read(entry))
    return request


def content_of(request: dict[str, Any] | None) -> str:
    assert request is not None
    return str(request["body"]["messages"][-1]["content"])


def remaining(index: RequestIndex) -> list[tuple[str, str]]:
    """``(custom_id, content)`` of every request left without a result, in the order given."""
    return [(custom_id, content_of(orjson.loads(index.read(entry)))) for entry, custom_id in index.remaining()]


def test_take_finds_requests_in_any_order() -> None:
    """Results arrive in no particular order; each finds its own request by custom_id."""
    data = jsonl(chat_request(f"req-{i}", content=f"question {i}") for i in range(50))
    with index_of(data) as index:
        assert index.requests == 50
        for i in [49, 0, 17, 33, 1, 48]:
            request = take(index, f"req-{i}")
            assert request is not None
            assert request["custom_id"] == f"req-{i}"
            assert content_of(request) == f"question {i}"


def test_take_of_unknown_id_is_none() -> None:
    """A result whose custom_id is not in the input gets ``None`` (an orphan), not an error."""
    with index_of(jsonl([chat_request("a")])) as index:
        assert index.take_entry("zzz") is None


def test_each_request_is_taken_once() -> None:
    """A request matched to a result is consumed: a second result with that id finds nothing."""
    with index_of(jsonl([chat_request("a")])) as index:
        assert take(index, "a") is not None
        assert take(index, "a") is None
        assert index.remaining() == []


def test_entries_give_back_the_exact_line_and_its_length() -> None:
    """An entry reads back the request's bytes as written (a worker parses them itself)."""
    line = orjson.dumps(chat_request("a", content="ünïcødé 🚀"))
    with index_of(line + b"\n") as index:
        entry = index.take_entry("a")
        assert entry is not None
        assert index.read(entry) == line
        assert RequestIndex.length(entry) == len(line)


def test_duplicate_ids_are_counted_and_matched_in_order() -> None:
    """Duplicated custom_ids are counted; the n-th take gets the n-th request; leftovers stay pending."""
    data = jsonl(
        [
            chat_request("dup", content="first"),
            chat_request("solo"),
            chat_request("dup", content="second"),
            chat_request("dup", content="third"),
        ]
    )
    with index_of(data) as index:
        assert index.requests == 4
        assert index.duplicate_ids == 2
        assert content_of(take(index, "dup")) == "first"
        assert content_of(take(index, "dup")) == "second"
        assert remaining(index) == [("solo", "Say hello"), ("dup", "third")]


def test_remaining_lists_unmatched_requests_in_input_order_once() -> None:
    """Requests without a result come back in the order of the input file (so no-result spans are stable)."""
    ids = [f"id-{i:03d}" for i in range(30)]
    with index_of(jsonl(chat_request(i) for i in ids)) as index:
        for taken in ids[::3]:
            assert take(index, taken) is not None
        assert [custom_id for _, custom_id in index.remaining()] == [i for i in ids if i not in ids[::3]]
        assert index.remaining() == []


def test_malformed_lines_are_counted_with_line_numbers_and_do_not_stop_indexing() -> None:
    """Broken or wrong-shaped lines are skipped and reported by line number; later requests are still indexed."""
    data = jsonl(
        [
            chat_request("a"),
            b'{"custom_id": "broken", "body": {',
            b"",
            b"[1, 2]",
            {"custom_id": 5, "body": {}},
            {"custom_id": "no-body"},
            chat_request("b"),
        ]
    )
    with index_of(data) as index:
        assert index.requests == 2
        assert index.malformed.count == 5
        assert index.malformed.file == "input.jsonl"
        assert [number for number, _ in index.malformed.examples] == [2, 3, 4, 5, 6]
        assert all(reason and "\n" not in reason for _, reason in index.malformed.examples)
        assert index.malformed.examples[-1][1] == "not an openai request line"
        assert take(index, "b") is not None
        assert take(index, "no-body") is None


def test_crlf_input_and_missing_final_newline() -> None:
    """An input written with CRLF line endings and no final newline is indexed completely."""
    data = orjson.dumps(chat_request("a")) + b"\r\n" + orjson.dumps(chat_request("b"))
    with index_of(data) as index:
        assert index.requests == 2
        assert index.malformed.count == 0
        taken = take(index, "b")
        assert taken is not None
        assert taken["custom_id"] == "b"
        assert take(index, "a") is not None


def test_a_local_file_is_indexed_in_place(tmp_path: Path) -> None:
    """A local input file is read back from where it is (no spooled copy), even from its middle."""
    path = tmp_path / "input.jsonl"
    path.write_bytes(b"header-not-a-request\n" + jsonl([chat_request("a", "from the file"), chat_request("b")]))
    with path.open("rb") as stream:
        stream.readline()
        with RequestIndex.from_stream(stream, request_id, "input.jsonl") as index:
            assert index.requests == 2
            assert content_of(take(index, "a")) == "from the file"
            assert [custom_id for _, custom_id in index.remaining()] == ["b"]


@pytest.mark.parametrize(
    "custom_id",
    [
        "request with spaces",
        "tenant/42/item:7",
        "ünïcødé-日本語-ключ",
        "emoji-🚀-🎉",
        'quote"and\\backslash',
        "  padded  ",
        "1",
    ],
)
def test_unusual_custom_ids_round_trip(custom_id: str) -> None:
    """Any string is a valid custom_id: spaces, slashes, non-ASCII and emoji are matched exactly."""
    data = jsonl([chat_request("other"), chat_request(custom_id), chat_request("last")])
    with index_of(data) as index:
        request = take(index, custom_id)
        assert request is not None
        assert request["custom_id"] == custom_id
        assert take(index, custom_id.strip() + "x") is None


def test_content_digest_is_stable_and_content_sensitive() -> None:
    """The digest (the batch key when no batch id is known) is the same for the same bytes, else different."""
    data = jsonl(chat_request(f"r{i}") for i in range(10))
    changed = data.replace(b"Say hello", b"Say hellO", 1)
    with index_of(data) as one, index_of(data) as two, index_of(changed) as other:
        assert one.content_digest == two.content_digest
        assert one.content_digest != other.content_digest
        assert isinstance(one.content_digest, str)
        assert one.content_digest


def test_content_digest_does_not_depend_on_how_the_stream_is_chunked() -> None:
    """The same bytes delivered in different read sizes give the same digest (redelivery is idempotent)."""

    class Trickle(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            return super().read(7)

    data = jsonl(chat_request(f"r{i}") for i in range(10))
    with index_of(data) as whole, index_of(Trickle(data)) as trickled:
        assert whole.content_digest == trickled.content_digest


def test_no_digest_when_the_batch_id_is_known() -> None:
    """``digest=False`` skips hashing; asking for the digest then is a programming error."""
    with RequestIndex.from_stream(io.BytesIO(jsonl([chat_request()])), request_id, digest=False) as index:
        assert index.requests == 1
        with pytest.raises(RuntimeError):
            _ = index.content_digest


def test_empty_input_indexes_nothing() -> None:
    """An empty input file gives an empty index, not an error."""
    with index_of(b"") as index:
        assert index.requests == 0
        assert index.take_entry("a") is None
        assert index.remaining() == []


class GeneratedInput:
    """``count`` chat requests with prompts of ``prompt_bytes`` each, produced lazily while read.

    The input never exists whole in memory, so tracemalloc sees only what the index keeps.
    """

    def __init__(self, count: int, prompt_bytes: int) -> None:
        self.count = count
        self.prompt = "p" * prompt_bytes
        self.size = 0
        self._next = 0
        self._pending = b""

    def read(self, size: int = -1, /) -> bytes:
        while len(self._pending) < size and self._next < self.count:
            line = orjson.dumps(chat_request(f"req-{self._next}", content=self.prompt)) + b"\n"
            self._pending += line
            self.size += len(line)
            self._next += 1
        out, self._pending = self._pending[:size], self._pending[size:]
        return out


def peak_while_indexing(stream: GeneratedInput) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        with RequestIndex.from_stream(stream, request_id) as index:
            assert index.requests == stream.count
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def test_index_memory_does_not_grow_with_input_size() -> None:
    """Indexing holds offsets, not requests: 3x the input (20 MB -> 60 MB) barely moves peak memory.

    The input is generated while it is read, so tracemalloc sees only what the index itself holds.
    """
    small = GeneratedInput(count=200, prompt_bytes=100_000)
    large = GeneratedInput(count=600, prompt_bytes=100_000)
    small_peak = peak_while_indexing(small)
    large_peak = peak_while_indexing(large)
    assert small.size > 20_000_000
    assert large.size > 60_000_000
    assert small_peak < small.size / 3, f"peak {small_peak} bytes for {small.size} bytes of input"
    assert large_peak < large.size / 3, f"peak {large_peak} bytes for {large.size} bytes of input"
    assert large_peak - small_peak < (large.size - small.size) / 10, (small_peak, large_peak)
