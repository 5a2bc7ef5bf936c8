"""Reading a remote stream ahead in a thread, so fetching it overlaps with indexing or matching it.

An S3 object read chunk by chunk on the thread that indexes it waits for the network, then the
network waits for the indexing: the two add up. A :class:`ReadAhead` fetches the next chunks in
a thread (the socket reads release the interpreter's lock) while the caller works on the last
one, holding at most ``depth`` chunks: the input (200 MB) is spooled and indexed while it
downloads, and the output file is matched while it streams. Memory stays bounded by
``depth * chunk_size``.

Several ranged GETs at once would pay where one connection is slow (S3 from a small Lambda, about
90 MB/s a connection); against the benchmark's local S3 API one GET already streams at 1 GB/s and
ranged ones are ten times slower, so one connection read ahead is what is used.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import Any

from batchtrace.read.jsonl import CHUNK_SIZE, Readable

#: Chunks held ahead of the reader.
DEPTH = 4
_END = b""


class ReadAhead:
    """``stream`` read ``chunk_size`` at a time by a thread, started after ``sync_reads`` reads.

    Errors of the underlying stream are raised by :meth:`read`, in order, as if read directly.
    ``sync_reads`` chunks are read in the caller's thread first: a run forks its span workers once
    the first results are read, and a process should fork before it starts threads, not after.
    """

    def __init__(
        self, stream: Readable, chunk_size: int = CHUNK_SIZE, depth: int = DEPTH, *, sync_reads: int = 0
    ) -> None:
        self._stream = stream
        self._sync_reads = sync_reads
        self._chunk_size = chunk_size
        self._chunks: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self._pending = b""
        self._done = False

    def _pump(self) -> None:
        try:
            while not self._closed.is_set():
                chunk = self._stream.read(self._chunk_size)
                self._chunks.put(chunk)
                if not chunk:
                    return
        except BaseException as err:  # handed to the reader, which raises it
            self._chunks.put(err)

    def _next_chunk(self) -> bytes:
        if self._done:
            return _END
        if self._sync_reads > 0:
            self._sync_reads -= 1
            chunk = self._stream.read(self._chunk_size)
        else:
            chunk = self._ahead()
        self._done = not chunk
        return chunk

    def _ahead(self) -> bytes:
        if self._thread is None:
            self._thread = threading.Thread(target=self._pump, name="batchtrace-read-ahead", daemon=True)
            self._thread.start()
        item = self._chunks.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        return item

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes (all that is left for a negative ``size``); ``b""`` at the end."""
        if size < 0:
            parts = [self._pending]
            while chunk := self._next_chunk():
                parts.append(chunk)
            self._pending = b""
            return b"".join(parts)
        data = self._pending or self._next_chunk()
        self._pending = data[size:]
        return data[:size]

    def close(self) -> None:
        """Stop reading ahead and close the stream (a thread blocked on a full queue is let go)."""
        self._closed.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._chunks.get_nowait()
        if self._thread is not None:
            self._thread.join(timeout=5)
        close: Any = getattr(self._stream, "close", None)
        if close is not None:
            close()
