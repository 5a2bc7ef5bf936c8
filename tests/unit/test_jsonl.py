"""Streaming JSONL reading: every line found with its number and byte offset, bad lines explained."""

from __future__ import annotations

import io

import pytest
from batchtrace.read.jsonl import MAX_LOGGED_MALFORMED, MalformedLines, iter_raw_lines, parse_object


class TrickleStream:
    """A stream whose ``read(n)`` returns at most ``limit`` bytes, like a slow socket or S3 body."""

    def __init__(self, data: bytes, limit: int) -> None:
        self._buffer = io.BytesIO(data)
        self._limit = limit

    def read(self, size: int = -1, /) -> bytes:
        size = self._limit if size < 0 else min(size, self._limit)
        return self._buffer.read(size)


def reference_lines(data: bytes) -> list[tuple[int, int, bytes]]:
    """What any correct line reader must yield: (1-based number, byte offset, line without ``\\n``)."""
    lines: list[tuple[int, int, bytes]] = []
    offset = 0
    for number, piece in enumerate(data.split(b"\n"), start=1):
        lines.append((number, offset, piece))
        offset += len(piece) + 1
    if lines and lines[-1][2] == b"":
        lines.pop()  # the empty string after a trailing newline is not a line
    return lines


SAMPLE = b'{"a": 1}\n{"b": "two"}\n\n{"c": [3, 4, 5]}\r\n{"d": "\xc3\xa9\xf0\x9f\x98\x80"}\n{"e": "no newline at end"}'


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7, 8, 13, 64, 1 << 20])
def test_lines_spanning_chunk_boundaries_keep_numbers_and_offsets(chunk_size: int) -> None:
    """Whatever the chunk size, each line comes out whole, numbered from 1, at its true byte offset."""
    got = list(iter_raw_lines(io.BytesIO(SAMPLE), chunk_size=chunk_size))
    assert got == reference_lines(SAMPLE)


@pytest.mark.parametrize("limit", [1, 4, 9])
def test_short_reads_do_not_lose_or_split_lines(limit: int) -> None:
    """A stream that returns fewer bytes than asked (network bodies do) still yields the same lines."""
    got = list(iter_raw_lines(TrickleStream(SAMPLE, limit), chunk_size=16))
    assert got == reference_lines(SAMPLE)


def test_offsets_point_at_the_line_in_the_original_bytes() -> None:
    """The offset lets a spooled copy be re-read: ``data[offset:offset+len(line)]`` is the line."""
    for _, offset, line in iter_raw_lines(io.BytesIO(SAMPLE), chunk_size=3):
        assert SAMPLE[offset : offset + len(line)] == line


def test_final_line_without_newline_is_yielded() -> None:
    """A file that does not end with a newline still has its last line read."""
    got = list(iter_raw_lines(io.BytesIO(b'{"x": 1}\n{"y": 2}'), chunk_size=4))
    assert got == [(1, 0, b'{"x": 1}'), (2, 9, b'{"y": 2}')]


def test_trailing_newline_does_not_add_an_empty_line() -> None:
    """The usual ``...\\n`` at the end of a file is not an extra (blank, malformed) line."""
    got = list(iter_raw_lines(io.BytesIO(b'{"x": 1}\n{"y": 2}\n'), chunk_size=5))
    assert [number for number, _, _ in got] == [1, 2]


def test_crlf_lines_parse_and_keep_offsets() -> None:
    """A file written with Windows line endings is read line by line and every line parses."""
    data = b'{"x": 1}\r\n{"y": 2}\r\n'
    got = list(iter_raw_lines(io.BytesIO(data), chunk_size=3))
    assert [(number, offset) for number, offset, _ in got] == [(1, 0), (2, 10)]
    assert [parse_object(line)[0] for _, _, line in got] == [{"x": 1}, {"y": 2}]


def test_blank_lines_in_the_middle_are_counted_as_lines() -> None:
    """Blank lines keep the line numbering aligned with what an editor shows."""
    got = list(iter_raw_lines(io.BytesIO(b"{}\n\n\n{}\n"), chunk_size=2))
    assert [(number, line) for number, _, line in got] == [(1, b"{}"), (2, b""), (3, b""), (4, b"{}")]


def test_empty_stream_yields_nothing() -> None:
    """An empty output file (every request failed) is zero lines, not an error."""
    assert list(iter_raw_lines(io.BytesIO(b""))) == []


def test_line_of_several_megabytes_is_read_whole() -> None:
    """A request with a large inline image (MBs on one line) is one line, with the next one after it."""
    big = b'{"custom_id": "big", "body": "' + b"A" * (5 << 20) + b'"}'
    data = b'{"first": 1}\n' + big + b'\n{"last": 3}'
    got = list(iter_raw_lines(io.BytesIO(data), chunk_size=64 << 10))
    assert [(number, offset, len(line)) for number, offset, line in got] == [
        (1, 0, 12),
        (2, 13, len(big)),
        (3, 14 + len(big), 11),
    ]
    assert got[1][2] == big


def test_reading_is_lazy() -> None:
    """Lines come out while the stream is still being read, so a 200 MB file is never held whole."""
    reads: list[int] = []

    class CountingStream(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            reads.append(1)
            return super().read(size)

    lines = iter_raw_lines(CountingStream(b"{}\n" * 1000), chunk_size=30)
    next(lines)
    assert len(reads) == 1


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"custom_id": "a"}', {"custom_id": "a"}),
        (b'  {"k": null}  ', {"k": None}),
        (b'{"k": "\xc3\xa9\xf0\x9f\x98\x80"}', {"k": "é😀"}),
        (b'{"k": 1}\r', {"k": 1}),
    ],
)
def test_parse_object_accepts_json_objects(line: bytes, expected: dict[str, object]) -> None:
    """Objects parse, with surrounding whitespace (and a CR) ignored and UTF-8 decoded."""
    assert parse_object(line) == (expected, "")


@pytest.mark.parametrize(
    ("line", "words"),
    [
        (b"", ("blank",)),
        (b"   \t ", ("blank",)),
        (b"\r", ("blank",)),
        (b'{"custom_id": "a", ', ("invalid", "json")),
        (b"{'single': 'quotes'}", ("invalid", "json")),
        (b"not json at all", ("invalid", "json")),
        (b"[1, 2, 3]", ("object", "list")),
        (b"null", ("object", "null")),
        (b"42", ("object", "int")),
        (b"4.2", ("object", "float")),
        (b'"a string"', ("object", "str")),
        (b"true", ("object", "bool")),
        (b'{"k": "\xff\xfe"}', ("utf-8",)),
        (b"\xc3\x28", ("utf-8",)),
    ],
)
def test_parse_object_explains_why_a_line_is_not_an_object(line: bytes, words: tuple[str, ...]) -> None:
    """A malformed line is rejected with a short, one-line reason naming what is wrong, never an exception."""
    obj, reason = parse_object(line)
    assert obj is None
    assert reason
    assert "\n" not in reason
    for word in words:
        assert word in reason.lower()


def test_reason_never_contains_the_line_content() -> None:
    """Reasons are logged; they must not leak prompt text from the skipped line."""
    _, reason = parse_object(b'{"secret": "hunter2-PROMPT-TEXT"')
    assert "hunter2" not in reason


def test_malformed_lines_are_counted_with_line_numbers() -> None:
    """Every skipped line is counted; the first ones keep their line number and reason for the report."""
    malformed = MalformedLines("output.jsonl")
    for number in range(1, MAX_LOGGED_MALFORMED + 11):
        malformed.add(number, "invalid JSON")
    assert malformed.count == MAX_LOGGED_MALFORMED + 10
    assert malformed.examples[0] == (1, "invalid JSON")
    assert len(malformed.examples) <= MAX_LOGGED_MALFORMED


def test_a_byte_order_mark_does_not_cost_the_first_line() -> None:
    """Some editors save JSONL with a UTF-8 BOM; the first request must not be lost to it."""
    obj, reason = parse_object(b'\xef\xbb\xbf{"custom_id": "first"}')
    assert obj == {"custom_id": "first"}, reason
