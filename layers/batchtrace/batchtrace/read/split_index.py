"""Indexing a large local input on two cores: most of it in a forked helper, its digest in a thread.

Nothing else can start until the input is indexed (results come in any order), so on the
two-core machines batchtrace runs on, one core sat idle for the 0.25 to 0.85 s that indexing
50,000 requests takes. A local file can be read anywhere at once, so the main process indexes
the lines before the split point while a forked helper indexes the rest and sends
back ``(custom_id, entry)`` pairs and its malformed lines; merged in file order, the index is the
one a single pass builds (duplicates keep their order, malformed lines their numbers). The
digest (the batch's key when it has no id) is taken by a thread over the raw bytes: ``hashlib``
releases the interpreter lock on large blocks, and the bytes hashed are the ones the single pass
hashed, line by line with a newline after each.

Only for a local file, and only when the caller will use worker processes anyway (a library call
with ``workers=0`` stays in its process); an input read from a stream is spooled as before. If
the helper fails, its part is indexed here: slower, never lost.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from batchtrace.read.jsonl import CHUNK_SIZE, iter_raw_lines

logger = logging.getLogger(__name__)

#: Below this many bytes a helper process costs more than it saves.
SPLIT_MIN_BYTES = 16 << 20
#: The part of the file the helper indexes when the main process has start-up work to do first
#: (half otherwise). A run loads the price data meanwhile (~0.15 s: importing genai-prices and
#: reading its snapshot, which the span workers must inherit); with 75% to the helper both finish
#: together (measured on 160 MB of 50,000 requests, two cores: the helper also pickles its
#: entries back).
HELPER_SHARE = 0.75
#: How long the helper may take beyond the main part before its part is indexed here instead.
HELPER_TIMEOUT_S = 600.0

#: ``(custom_id, None)`` or ``(None, reason)`` for one line (see ``RequestIndex``).
LineId = Callable[[bytes, int], tuple[str | None, str]]


class RangeReader:
    """``read(n)`` over bytes ``[start, stop)`` of a file descriptor, by ``pread`` (no shared offset)."""

    def __init__(self, fd: int, start: int, stop: int) -> None:
        self.fd, self.position, self.stop = fd, start, stop

    def read(self, size: int = CHUNK_SIZE, /) -> bytes:
        size = min(size, self.stop - self.position)
        if size <= 0:
            return b""
        data = os.pread(self.fd, size, self.position)
        self.position += len(data)
        return data


@dataclass(slots=True)
class RangeIndex:
    """The index of one byte range: entries in file order, and malformed lines."""

    entries: list[tuple[str, int]] = field(default_factory=list)
    malformed: list[tuple[int, str]] = field(default_factory=list)


def index_range(fd: int, start: int, stop: int, line_id: LineId) -> RangeIndex:
    """Index the lines of ``[start, stop)`` (``start`` opens a line); line numbers count from 1 here."""
    part = RangeIndex()
    for line_no, position, line in iter_raw_lines(RangeReader(fd, start, stop)):
        custom_id, reason = line_id(line, line_no)
        if custom_id is None:
            part.malformed.append((line_no, reason))
        else:
            part.entries.append((custom_id, (start + position) << 32 | len(line)))
    return part


def split_point(fd: int, start: int, stop: int, helper_share: float = 0.5) -> int | None:
    """Where the helper's part begins: just after the first newline once ``helper_share`` of the bytes
    are left; ``None`` if there is none."""
    probe = stop - int((stop - start) * helper_share)
    while probe < stop:
        block = os.pread(fd, min(CHUNK_SIZE, stop - probe), probe)
        newline = block.find(b"\n")
        if newline >= 0:
            at = probe + newline + 1
            return at if at < stop else None
        probe += len(block)
    return None


def _serve_range(conn: Connection, fd: int, start: int, stop: int, line_id: LineId) -> None:
    # The helper only builds tuples; its collector would walk (and copy the pages of) the heap it
    # inherited for nothing: 10% of its time.
    gc.disable()
    try:
        conn.send(index_range(fd, start, stop, line_id))
    finally:
        conn.close()


class RangeHelper:
    """A forked process indexing ``[start, stop)``; :meth:`result` is its index, or ``None`` if it failed."""

    def __init__(self, fd: int, start: int, stop: int, line_id: LineId) -> None:
        self.start = start
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe(duplex=False)
        self._process = context.Process(target=_serve_range, args=(child, fd, start, stop, line_id), daemon=True)
        self._process.start()
        child.close()

    def result(self) -> RangeIndex | None:
        try:
            if not self._conn.poll(HELPER_TIMEOUT_S):
                raise TimeoutError("no answer")
            part: RangeIndex = self._conn.recv()
            return part
        except (EOFError, OSError, TimeoutError) as err:
            logger.warning("the helper's part of the input is indexed here: its process failed (%s)", err)
            return None
        finally:
            self._conn.close()
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()


def _blocks(fd: int, start: int, stop: int) -> Iterator[bytes]:
    reader = RangeReader(fd, start, stop)
    while block := reader.read(4 * CHUNK_SIZE):
        yield block


class FileDigest:
    """The blake2b digest a line-by-line pass takes of ``[start, stop)``, taken by a thread.

    That pass hashes each line and a newline after it, so the raw bytes hash the same, plus one
    newline when the last line has none.
    """

    def __init__(self, fd: int, start: int, stop: int) -> None:
        self._hash = hashlib.blake2b(digest_size=16)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fd, start, stop), name="input-digest", daemon=True)
        self._thread.start()

    def _run(self, fd: int, start: int, stop: int) -> None:
        try:
            last = b"\n"
            for block in _blocks(fd, start, stop):
                self._hash.update(block)
                last = block[-1:]
            if last != b"\n":
                self._hash.update(b"\n")
        except OSError as err:  # re-raised in the caller's thread by result()
            self._error = err

    def result(self) -> Any:
        """The finished hash object (``hexdigest()`` as the single pass's)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._hash
