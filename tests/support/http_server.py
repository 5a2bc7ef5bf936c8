"""The lifecycle every hand-written HTTP fake of the tests shares, so each fake holds only its protocol.

A fake (the OTLP receiver, the fake OpenAI API, the Lambda Runtime API) subclasses
:class:`LoopbackServer` and names its request handler, a :class:`LoopbackHandler` subclass. This
module then does the rest, the same way for all of them:

* binds 127.0.0.1 on an ephemeral port (``port=0``: no probing for a free port, no race);
* serves in a daemon thread (one more daemon thread per connection), so a forgotten fake never
  keeps the test process alive;
* is bounded: :meth:`LoopbackServer.stop` returns within ``stop_timeout_s`` whatever the handlers
  are doing (it closes open keep-alive connections too, or their threads would keep answering),
  and an optional ``lifetime_s`` stops the server even if nobody does;
* is quiet: no per-request log lines; errors inside handlers go to :meth:`LoopbackServer.on_handler_error`.

Usage::

    class Echo(LoopbackServer):
        handler = EchoHandler            # a LoopbackHandler subclass; self.owner is the Echo

    with Echo() as server:
        requests.get(server.base_url)
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar, cast

__all__ = ["LoopbackHandler", "LoopbackServer"]

OwnerT = TypeVar("OwnerT", bound="LoopbackServer")


class LoopbackHandler(BaseHTTPRequestHandler, Generic[OwnerT]):
    """A request handler that keeps no state: everything lives on :attr:`owner`, the fake itself.

    HTTP/1.1 with keep-alive (clients such as the OTLP exporter reuse connections); an idle
    connection gives up after ``timeout`` seconds instead of pinning a thread forever.
    """

    server: _ThreadingServer
    protocol_version = "HTTP/1.1"
    timeout = 30
    #: An answer is written in two sends (headers, then body). With Nagle's algorithm on, the body
    #: waits for the client to acknowledge the headers, which Linux delays by ~40 ms: every answer
    #: took 40 ms more than the fake's own work, and a client posting ~100 requests in a row (the
    #: seed in the benchmark) paid 4 s for it. Real collectors answer in one write.
    disable_nagle_algorithm = True

    @property
    def owner(self) -> OwnerT:
        """The fake this request is for."""
        return cast(OwnerT, self.server.owner)

    def setup(self) -> None:
        super().setup()
        self.server.owner._track_connection(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track_connection(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests with thousands of requests must not flood stderr."""

    def read_body(self) -> bytes:
        """The request body, with ``Content-Length`` or chunked transfer encoding."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline(65537).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)  # the CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send_body(
        self, status: int, body: bytes, content_type: str = "application/json", headers: dict[str, str] | None = None
    ) -> None:
        """Answer ``status`` with ``body`` (and a Content-Length, so keep-alive works)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def send_json(self, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
        self.send_body(status, json.dumps(document).encode(), headers=headers)

    def reset_connection(self) -> None:
        """Close with SO_LINGER 0: the client sees a TCP RST ("connection reset by peer")."""
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True


class _ThreadingServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: LoopbackServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Not to stderr: the fake decides what a handler's exception means (clients hang up all the time)."""
        self.owner.on_handler_error(sys.exc_info()[1], traceback.format_exc(limit=3))


class LoopbackServer:
    """An HTTP server on 127.0.0.1 in a daemon thread; a context manager. Subclasses set :attr:`handler`.

    ``port`` stays readable after :meth:`stop` (a test may check that a stopped fake refuses
    connections). :meth:`start` after :meth:`stop` binds a new port.
    """

    handler: ClassVar[type[LoopbackHandler[Any]]]
    #: How often the serve loop checks for a stop request (seconds).
    poll_interval_s: ClassVar[float] = 0.05
    #: :meth:`stop` returns within this many seconds.
    stop_timeout_s: ClassVar[float] = 5.0

    def __init__(self, port: int = 0, *, lifetime_s: float | None = None) -> None:
        self._requested_port = port
        self.lifetime_s = lifetime_s
        self._life_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: _ThreadingServer | None = None
        self._thread: threading.Thread | None = None
        self._watchdog: threading.Timer | None = None
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Bind and serve in a daemon thread (idempotent while running); returns self."""
        with self._life_lock:
            if self._server is not None and not self._stopping.is_set():
                return self
            server = _ThreadingServer(("127.0.0.1", self._requested_port), self.handler)
            server.owner = self
            self._stopping.clear()
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": self.poll_interval_s},
                name=f"{type(self).__name__}-{self.port}",
                daemon=True,
            )
            self._thread.start()
            if self.lifetime_s is not None:
                self._watchdog = threading.Timer(self.lifetime_s, self.stop)
                self._watchdog.daemon = True
                self._watchdog.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop serving and close open connections; idempotent, returns within ``timeout`` seconds.

        May be called from any thread, a handler's included (the serve loop's shutdown runs in a
        helper thread that is joined with the time limit).
        """
        with self._life_lock:
            server = self._server
            if server is None or self._stopping.is_set():
                return
            self._stopping.set()
        self.before_stop()
        if self._watchdog is not None and self._watchdog is not threading.current_thread():
            self._watchdog.cancel()
        limit = self.stop_timeout_s if timeout is None else timeout
        stopper = threading.Thread(target=server.shutdown, name=f"{type(self).__name__}-stop", daemon=True)
        stopper.start()
        stopper.join(limit)
        with self._life_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(limit)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None and not self._stopping.is_set()

    @property
    def stopping(self) -> bool:
        """True from the moment :meth:`stop` was called."""
        return self._stopping.is_set()

    # ------------------------------------------------------------------ addresses

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started; use it as a context manager or call start()")
        return int(self._server.server_address[1])

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self.address}"

    # ------------------------------------------------------------------ hooks

    def before_stop(self) -> None:
        """Release whatever handlers may be waiting on (long polls) before the server shuts down."""

    def on_handler_error(self, error: BaseException | None, text: str) -> None:
        """A handler raised (``text`` is its short traceback); ignored unless the fake cares."""

    # ------------------------------------------------------------------ internals

    def _track_connection(self, conn: socket.socket, *, add: bool) -> None:
        with self._life_lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)
