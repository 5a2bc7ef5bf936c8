"""An in-process moto server (S3, DynamoDB, ...) on 127.0.0.1 for end-to-end tests and the demo.

Why a server rather than ``mock_aws()``: the handler under test may run in a subprocess (the CLI,
``sam local``-like runs, the demo), and a server is the only mock that crosses process boundaries.
It is reached through the standard ``AWS_ENDPOINT_URL_*`` variables, so the code under test needs
no test-only hooks. Nothing global is touched on enter: callers apply :func:`aws_env` themselves
(``monkeypatch.setenv`` or a subprocess ``env``), so tests cannot leak settings into each other.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from moto.server import ThreadedMotoServer

__all__ = ["MotoServer", "aws_env"]

REGION = "us-east-1"


def aws_env(endpoint: str) -> dict[str, str]:
    """Environment variables that point boto3 at ``endpoint`` with dummy credentials.

    Both ``AWS_REGION`` (Lambda's) and ``AWS_DEFAULT_REGION`` (boto3's) are set, since code under
    test may read either. The dummy credentials also stop boto3 from looking for real ones.
    """
    return {
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


class MotoServer:
    """``ThreadedMotoServer`` on an ephemeral 127.0.0.1 port; a context manager.

    moto 5.2's ``ThreadedMotoServer`` accepts ``port=0`` (werkzeug binds an ephemeral port and
    ``get_host_and_port()`` reports it), which avoids the race of probing for a free port.
    Per-request access logging is silenced: werkzeug logs every request to stderr even with
    ``verbose=False``, which drowns test output.
    """

    def __init__(self, port: int = 0, *, quiet: bool = True) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._quiet = quiet
        self._port: int | None = None

    def start(self) -> MotoServer:
        """Start serving (idempotent); returns self."""
        if self._port is None:
            self._server.start()
            if self._quiet:
                _silence_request_log(self._server)
            self._port = int(self._server.get_host_and_port()[1])
        return self

    def stop(self) -> None:
        """Stop serving (idempotent). Bounded: werkzeug's serve loop polls every 0.5 s."""
        if self._port is not None:
            self._server.stop()
            self._port = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("MotoServer is not started; use it as a context manager or call start()")
        return self._port

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``: the value for ``endpoint_url`` / ``AWS_ENDPOINT_URL_*``."""
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """Shortcut for ``aws_env(self.endpoint)``."""
        return aws_env(self.endpoint)

    def reset(self) -> None:
        """Wipe all moto state (buckets, tables) between tests sharing one server."""
        import requests

        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _silence_request_log(server: ThreadedMotoServer) -> None:
    """Swap the running werkzeug server's handler class for one that does not log requests.

    ``ThreadedMotoServer`` offers no option for this, and changing the ``werkzeug`` logger level
    would be a global side effect. ``RequestHandlerClass`` is read per connection, so swapping it
    right after start (before anyone knows the port) covers every request. Uses moto's private
    ``_server`` attribute; if that ever disappears the server still works, just noisily.
    """
    wsgi_server: Any = getattr(server, "_server", None)
    base = getattr(wsgi_server, "RequestHandlerClass", None)
    if wsgi_server is None or base is None:
        return

    class _QuietHandler(base):  # type: ignore[misc, valid-type]
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    wsgi_server.RequestHandlerClass = _QuietHandler
