"""Streaming, tolerant JSONL reading.

Batch files reach 200 MB, so nothing here holds a whole file: lines are cut from fixed-size
chunks of any ``read(n)`` stream (a local file, an S3 ``StreamingBody``), and a line that is
not a JSON object is counted and skipped with its line number instead of failing the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
_BOM = b"\xef\xbb\xbf"
#: How many malformed lines per file are logged one by one before only the count goes on.
MAX_LOGGED_MALFORMED = 50


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


@dataclass(slots=True)
class MalformedLines:
    """Malformed-line bookkeeping for one file: a count and the first few line numbers."""

    file: str
    count: int = 0
    examples: list[tuple[int, str]] = field(default_factory=list)

    def add(self, line_no: int, reason: str) -> None:
        """Count a skipped line and log where it is and why (never its content)."""
        self.count += 1
        if self.count <= MAX_LOGGED_MALFORMED:
            self.examples.append((line_no, reason))
            logger.warning("skipped malformed line %d of %s: %s", line_no, self.file, reason)
        elif self.count == MAX_LOGGED_MALFORMED + 1:
            logger.warning("more malformed lines in %s; only the total is reported from here", self.file)


def iter_raw_lines(stream: Readable, chunk_size: int = CHUNK_SIZE) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(line_no, offset, line)`` for each line, without its newline, streaming.

    ``offset`` is the byte position of the line in the stream, so a spooled copy can be
    re-read later. A final line without a newline is still yielded; the empty string after a
    trailing newline is not a line.
    """
    pending = b""
    pending_offset = 0
    line_no = 0
    while True:
        chunk = stream.read(chunk_size)
        if not chunk:
            break
        data = pending + chunk if pending else chunk
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            line_no += 1
            yield line_no, pending_offset + start, data[start:end]
            start = end + 1
        pending_offset += start
        pending = data[start:]
    if pending:
        yield line_no + 1, pending_offset, pending


def parse_object(line: bytes) -> tuple[dict[str, Any] | None, str]:
    """Parse one line into a JSON object, or return ``(None, reason)`` saying why not."""
    stripped = line.strip()
    if stripped.startswith(_BOM):  # files saved by some editors start with one
        stripped = stripped[len(_BOM) :].lstrip()
    if not stripped:
        return None, "blank line"
    try:
        value = orjson.loads(stripped)
    except orjson.JSONDecodeError as err:
        reason = "invalid UTF-8" if "utf-8" in str(err).lower() else "invalid JSON"
        return None, reason
    if not isinstance(value, dict):
        return None, f"expected a JSON object, got {type(value).__name__ if value is not None else 'null'}"
    return value, ""
