"""An index of the input file by ``custom_id`` that holds offsets, not parsed requests.

The input of a 50,000-request batch is up to 200 MB: it is spooled once to a temporary file
while each line's offset is recorded, and a request is read back (one ``pread``) and parsed
again only when its result arrives. Memory then grows with the number of ids, not with the
size of the prompts.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator

import orjson

from batchtrace.jsonl import MalformedLines, Readable, iter_raw_lines, parse_object
from batchtrace.openai_format import BatchRequest, parse_request


def request_from_line(line: bytes) -> BatchRequest:
    """A line the index already validated, parsed again."""
    request, _ = parse_request(orjson.loads(line))
    assert request is not None, "indexed lines were validated when spooled"
    return request


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
        self._spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        # custom_id -> packed (offset << 32 | length); a list of them for a duplicated id. One
        # int per request keeps the index near 200 bytes a request at 50,000 requests.
        self._offsets: dict[str, int | list[int]] = {}
        self._digest = hashlib.blake2b(digest_size=16) if digest else None

    @classmethod
    def from_stream(cls, stream: Readable, source_name: str = "input", *, digest: bool = True) -> RequestIndex:
        """Index ``stream``; ``digest=False`` skips hashing when the batch id is already known."""
        index = cls(source_name, digest=digest)
        index.load(stream)
        return index

    def load(self, stream: Readable) -> None:
        """Spool and index ``stream``; malformed lines are counted, never fatal."""
        spool = self._spool
        offsets = self._offsets
        digest = self._digest
        for line_no, _, line in iter_raw_lines(stream):
            offset = spool.tell()
            spool.write(line)
            spool.write(b"\n")
            if digest is not None:
                digest.update(line)
                digest.update(b"\n")
            obj, reason = parse_object(line)
            request = None
            if obj is not None:
                request, reason = parse_request(obj)
            if request is None:
                self.malformed.add(line_no, reason)
                continue
            self.requests += 1
            entry = offset << 32 | len(line)
            known = offsets.get(request.custom_id)
            if known is None:
                offsets[request.custom_id] = entry
            else:
                offsets[request.custom_id] = [*known, entry] if isinstance(known, list) else [known, entry]
                self.duplicate_ids += 1
        spool.flush()

    @property
    def content_digest(self) -> str:
        """A stable digest of the input's bytes: the batch key when no batch id is known."""
        if self._digest is None:
            raise RuntimeError("this index was built with digest=False")
        return self._digest.hexdigest()

    def take_line(self, custom_id: str) -> bytes | None:
        """The raw line of the next unmatched request with ``custom_id``, or ``None``."""
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
        return os.pread(self._spool.fileno(), entry & 0xFFFFFFFF, entry >> 32)

    def take(self, custom_id: str) -> BatchRequest | None:
        """The next unmatched request with ``custom_id``, or ``None`` when there is none left."""
        line = self.take_line(custom_id)
        return None if line is None else request_from_line(line)

    def remaining_lines(self) -> Iterator[bytes]:
        """The raw line of every request no result was matched to, in input order."""
        pending = sorted(
            entry
            for entries in self._offsets.values()
            for entry in (entries if isinstance(entries, list) else (entries,))
        )
        self._offsets = {}
        fd = self._spool.fileno()
        for entry in pending:
            yield os.pread(fd, entry & 0xFFFFFFFF, entry >> 32)

    def remaining(self) -> Iterator[BatchRequest]:
        """Every request no result was matched to, in input order."""
        return map(request_from_line, self.remaining_lines())

    def close(self) -> None:
        self._spool.close()

    def __enter__(self) -> RequestIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
