"""An index of the input file by ``custom_id`` that holds offsets, not parsed requests.

The input of a 50,000-request batch is up to 200 MB: it is spooled once to a temporary file
(a local file is used in place) while each line's offset is recorded, and a request is read
back (one ``pread``) and parsed again only when its result arrives. Memory then grows with the
number of ids, not with the size of the prompts. An entry is one packed int, so forked
workers can read requests themselves from the shared file instead of receiving their bytes.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import stat
import tempfile
from collections.abc import Callable
from functools import partial
from typing import IO, Any

import orjson

from batchtrace.read.jsonl import MalformedLines, Readable, iter_raw_lines, parse_object
from batchtrace.read.split_index import (
    HELPER_SHARE,
    SPLIT_MIN_BYTES,
    FileDigest,
    LineId,
    RangeHelper,
    RangeIndex,
    RangeReader,
    index_range,
    split_point,
)
from batchtrace.tally import Tally

logger = logging.getLogger(__name__)

#: A request line's id, or ``(None, reason)`` when the line is not a request of the batch's format.
RequestId = Callable[[dict[str, Any], int], tuple[str | None, str]]


def _nothing() -> None:
    """No start-up work to overlap with indexing."""


def _helper(fd: int, start: int, stop: int, line_id: LineId, share: float) -> RangeHelper | None:
    """A helper indexing the last ``share`` of ``[start, stop)``, when the range is large enough to pay."""
    split = split_point(fd, start, stop, share) if stop - start >= SPLIT_MIN_BYTES else None
    return RangeHelper(fd, split, stop, line_id) if split is not None else None


def _line_id(line: bytes, line_no: int, request_id: RequestId) -> tuple[str | None, str]:
    obj, reason = parse_object(line)
    return request_id(obj, line_no) if obj is not None else (None, reason)


def parse_request(line: bytes, entry: int, source_name: str, answered: bool, tally: Tally) -> dict[str, Any] | None:
    """The request behind an index entry, parsed; ``None`` when it is not a JSON object after all.

    The index parsed every line it kept, so this fails only for a local input file that changed
    under the run; the line is then counted as the index would have counted it: a malformed line
    of the input, not a request; its result an orphan, or, without a result, nothing.
    """
    try:
        request = orjson.loads(line)
    except orjson.JSONDecodeError:
        request = None
    if isinstance(request, dict):
        return request
    logger.warning("skipped malformed line at byte %d of %s: invalid JSON", entry >> 32, source_name)
    tally.requests -= 1
    tally.malformed_lines += 1
    tally.malformed_by_file[source_name] = tally.malformed_by_file.get(source_name, 0) + 1
    if answered:
        tally.orphan_results += 1
    else:
        tally.no_result -= 1
    return None


def _local_file_offset(stream: Readable) -> int | None:
    """Where ``stream`` stands in the regular local file it reads, or ``None`` if it is not one.

    A local file need not be copied: offsets into it are as good as offsets into a spool.
    """
    if not isinstance(stream, io.BufferedReader | io.FileIO):
        return None
    try:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            return None
        return stream.tell()
    except (OSError, ValueError):
        return None


class RequestIndex:
    """Requests by ``custom_id``, each id's occurrences consumed in input order.

    A duplicated ``custom_id`` keeps every occurrence: the n-th result for that id is matched
    to its n-th request, and whatever is left over has no result.
    """

    def __init__(self, source_name: str = "input", *, digest: bool = True) -> None:
        self.source_name = source_name
        self.malformed = MalformedLines(source_name)
        self.requests = 0
        self.duplicate_ids = 0
        self._spool: IO[bytes] | None = None
        self._fd = -1
        # custom_id -> packed (offset << 32 | length); a list of them for a duplicated id. One
        # int per request keeps the index near 200 bytes a request at 50,000 requests.
        self._offsets: dict[str, int | list[int]] = {}
        self._digest = hashlib.blake2b(digest_size=16) if digest else None

    @classmethod
    def from_stream(
        cls,
        stream: Readable,
        request_id: RequestId,
        source_name: str = "input",
        *,
        digest: bool = True,
        parallel: bool = False,
        meanwhile: Callable[[], object] = _nothing,
    ) -> RequestIndex:
        """Index ``stream``; ``digest=False`` skips hashing when the batch id is already known.

        ``parallel`` lets a large local file be indexed on two cores (:mod:`batchtrace.read.split_index`).
        ``meanwhile`` is start-up work the caller needs done before its workers fork (loading the
        price data): it runs while the helper indexes, or first when there is no helper.
        """
        index = cls(source_name, digest=digest)
        index.load(stream, request_id, parallel=parallel, meanwhile=meanwhile)
        return index

    def load(
        self,
        stream: Readable,
        request_id: RequestId,
        *,
        parallel: bool = False,
        meanwhile: Callable[[], object] = _nothing,
    ) -> None:
        """Index ``stream`` (spooling it unless it is a local file); malformed lines are counted."""
        base = _local_file_offset(stream)
        if base is None:
            meanwhile()
            self._load_spooled(stream, request_id)
        else:
            self._load_local(stream.fileno(), base, request_id, parallel, meanwhile)  # type: ignore[attr-defined]

    def _load_spooled(self, stream: Readable, request_id: RequestId) -> None:
        spool = self._spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._fd = spool.fileno()
        digest = self._digest
        for line_no, _, line in iter_raw_lines(stream):
            offset = spool.tell()
            spool.write(line)
            spool.write(b"\n")
            if digest is not None:
                digest.update(line)
                digest.update(b"\n")
            self._index_line(line, line_no, offset, request_id)
        spool.flush()

    def _load_local(
        self, fd: int, start: int, request_id: RequestId, parallel: bool, meanwhile: Callable[[], object]
    ) -> None:
        """Index a local file in place: the first part here, the rest in a helper when it pays."""
        self._fd = fd
        stop = os.fstat(fd).st_size
        line_id: LineId = partial(_line_id, request_id=request_id)
        helper = _helper(fd, start, stop, line_id, 0.5 if meanwhile is _nothing else HELPER_SHARE) if parallel else None
        split = stop if helper is None else helper.start
        meanwhile()
        digest = FileDigest(fd, start, stop) if self._digest is not None else None  # a thread: after the fork
        line_no = 0
        for line_no, position, line in iter_raw_lines(RangeReader(fd, start, split)):
            self._index_line(line, line_no, start + position, request_id)
        if helper is not None:
            self._merge(helper.result() or index_range(fd, helper.start, stop, line_id), line_no)
        if digest is not None:
            self._digest = digest.result()

    def _merge(self, part: RangeIndex, lines_before: int) -> None:
        for line_no, reason in part.malformed:
            self.malformed.add(lines_before + line_no, reason)
        add = self._add
        for custom_id, entry in part.entries:
            add(custom_id, entry)

    def _index_line(self, line: bytes, line_no: int, offset: int, request_id: RequestId) -> None:
        custom_id, reason = _line_id(line, line_no, request_id)
        if custom_id is None:
            self.malformed.add(line_no, reason)
        else:
            self._add(custom_id, offset << 32 | len(line))

    def _add(self, custom_id: str, entry: int) -> None:
        self.requests += 1
        known = self._offsets.get(custom_id)
        if known is None:
            self._offsets[custom_id] = entry
        else:
            self._offsets[custom_id] = [*known, entry] if isinstance(known, list) else [known, entry]
            self.duplicate_ids += 1

    @property
    def content_digest(self) -> str:
        """A stable digest of the input's bytes: the batch key when no batch id is known."""
        if self._digest is None:
            raise RuntimeError("this index was built with digest=False")
        return self._digest.hexdigest()

    def take_entry(self, custom_id: str) -> int | None:
        """The entry (see :meth:`read`) of the next unmatched request with ``custom_id``."""
        entries = self._offsets.get(custom_id)
        if entries is None:
            return None
        if isinstance(entries, list):
            entry = entries.pop(0)
            if len(entries) == 1:
                self._offsets[custom_id] = entries[0]
        else:
            entry = entries
            del self._offsets[custom_id]
        return entry

    def read(self, entry: int) -> bytes:
        """The raw line behind ``entry``; safe from a forked process (``pread`` keeps no offset)."""
        return os.pread(self._fd, entry & 0xFFFFFFFF, entry >> 32)

    def remaining(self) -> list[tuple[int, str]]:
        """``(entry, custom_id)`` of every request no result was matched to, in input order."""
        pending = sorted(
            (entry, custom_id)
            for custom_id, entries in self._offsets.items()
            for entry in (entries if isinstance(entries, list) else (entries,))
        )
        self._offsets = {}
        return pending

    @staticmethod
    def length(entry: int) -> int:
        """The byte length of the line behind ``entry``."""
        return entry & 0xFFFFFFFF

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()

    def __enter__(self) -> RequestIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
