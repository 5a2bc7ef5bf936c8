"""The benchmark's OTLP receiver, in a process of its own.

The receiver must read each request fully and answer at once, or the runners' times include
its own. In the benchmark's process it would share one interpreter (and its lock) with the
thread that samples the runners' memory, so its answers would wait for that thread; in a
process of its own it answers as soon as the body is read. It is the tests' ``OtlpReceiver``
in counting mode (``parse_bodies`` parses every body in full first, as a collector does).
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Self

from tests.support.otlp_receiver import OtlpReceiver


def _serve(conn: Connection, parse_bodies: bool, nagle: bool) -> None:
    # A class attribute, set in this forked process only: the other receivers keep Nagle off.
    OtlpReceiver.handler.disable_nagle_algorithm = not nagle
    with OtlpReceiver(count_only=True, parse_bodies=parse_bodies, max_requests=10_000_000) as receiver:
        conn.send(receiver.base_url)
        while conn.recv() is not None:
            conn.send(receiver.span_count)


class ReceiverProcess:
    """A counting OTLP receiver in a forked process; ``span_count`` asks it over a pipe.

    ``nagle=True`` leaves Nagle's algorithm on, as Python's ``http.server`` does by default: each
    answer then waits ~40 ms for the client's delayed acknowledgement (``seed_receivers`` shows it).
    """

    def __init__(self, *, parse_bodies: bool = False, nagle: bool = False) -> None:
        self.parse_bodies = parse_bodies
        self.nagle = nagle
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        self.base_url = ""

    def start(self) -> Self:
        parent, child = multiprocessing.get_context("fork").Pipe()
        self._process = multiprocessing.get_context("fork").Process(
            target=_serve, args=(child, self.parse_bodies, self.nagle), daemon=True
        )
        self._process.start()
        child.close()
        self._conn = parent
        self.base_url = parent.recv()
        return self

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/v1/traces"

    @property
    def span_count(self) -> int:
        assert self._conn is not None, "start() first"
        self._conn.send(True)
        return int(self._conn.recv())

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.send(None)
            self._conn.close()
        if self._process is not None:
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()
