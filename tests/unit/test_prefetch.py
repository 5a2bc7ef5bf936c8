"""Reading S3 objects ahead in a thread: the same bytes, the same errors, bounded memory, no stray thread."""

from __future__ import annotations

import io
import random
import threading
import time

import pytest
from batchtrace.read.jsonl import iter_raw_lines
from batchtrace.read.prefetch import ReadAhead


class Slow(io.BytesIO):
    """A stream that counts its reads and can fail after some of them."""

    def __init__(self, data: bytes, fail_after: int | None = None) -> None:
        super().__init__(data)
        self.reads = 0
        self.fail_after = fail_after

    def read(self, size: int | None = -1, /) -> bytes:
        self.reads += 1
        if self.fail_after is not None and self.reads > self.fail_after:
            raise ConnectionResetError("connection reset by peer")
        return super().read(size)


@pytest.mark.parametrize("sync_reads", [0, 1, 5])
def test_the_bytes_and_lines_are_those_of_the_stream(sync_reads: int) -> None:
    rng = random.Random(sync_reads)
    data = b"".join(b'{"custom_id": "%d", "x": "%s"}\n' % (n, b"y" * rng.randrange(500)) for n in range(2000))
    ahead = ReadAhead(Slow(data), chunk_size=4096, depth=3, sync_reads=sync_reads)
    assert [line for _, _, line in iter_raw_lines(ahead, chunk_size=1000)] == data.split(b"\n")[:-1]
    assert ahead.read(10) == b""
    whole = ReadAhead(Slow(data), chunk_size=777)
    assert whole.read(5) + whole.read() == data


def test_an_error_of_the_stream_is_raised_by_read_in_order() -> None:
    ahead = ReadAhead(Slow(b"a" * 10_000, fail_after=2), chunk_size=1000)
    assert ahead.read(1000) + ahead.read(1000) == b"a" * 2000
    with pytest.raises(ConnectionResetError):
        ahead.read(1000)


def test_at_most_depth_chunks_are_held_and_close_lets_the_thread_go() -> None:
    stream = Slow(b"z" * 100_000)
    ahead = ReadAhead(stream, chunk_size=1000, depth=2)
    assert ahead.read(1000) == b"z" * 1000
    time.sleep(0.2)
    assert stream.reads <= 4, "the thread stops once depth chunks wait"
    ahead.close()
    assert not any(thread.name == "batchtrace-read-ahead" for thread in threading.enumerate())
