"""The one moto launcher of the tests, the demo and the benchmark: S3, DynamoDB, Secrets Manager on 127.0.0.1.

Why a server rather than ``mock_aws()``: the code under test may run in a subprocess (the CLI, the
built function under ``awslambdaric``, the benchmark's runners), and a server is the only mock that
crosses process boundaries. It is reached through the standard ``AWS_ENDPOINT_URL_*`` variables, so
the code under test needs no test-only hooks. Nothing global is touched on enter: callers apply
:meth:`MotoServer.env` themselves (``monkeypatch.setenv`` or a subprocess ``env``), so tests cannot
leak settings into each other.

Two ways to run it, same interface:

* in-process (the default): moto's ``ThreadedMotoServer`` in a thread; starts in well under a second;
* ``own_process=True``: ``python -m moto.server`` as a child process, when the server must not
  share what is being measured (the benchmark's CPU, a ``tracemalloc`` peak in the test process).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from types import TracebackType
from typing import Any, Self

import boto3
import requests
from moto.server import ThreadedMotoServer

__all__ = ["BUCKET", "REGION", "MotoServer", "aws_env", "create_idempotency_table"]

REGION = "us-east-1"
#: The bucket the ``s3`` fixture creates (tests/conftest.py).
BUCKET = "batchtrace-tests"
#: How long a moto child process may take to answer its first request.
PROCESS_START_TIMEOUT_S = 30.0


def aws_env(endpoint: str) -> dict[str, str]:
    """Environment variables that point boto3 at ``endpoint`` with dummy credentials.

    Both ``AWS_REGION`` (Lambda's) and ``AWS_DEFAULT_REGION`` (boto3's) are set, since code under
    test may read either. The dummy credentials also stop boto3 from looking for real ones.
    Secrets Manager's service id is "Secrets Manager": boto3 reads ``AWS_ENDPOINT_URL_SECRETS_MANAGER``.
    """
    return {
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


def create_idempotency_table(dynamodb: Any, name: str) -> None:
    """The idempotency table as template.yaml declares it (partition key ``id``, a string); waits until it exists."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.get_waiter("table_exists").wait(TableName=name)


class MotoServer:
    """moto on an ephemeral 127.0.0.1 port, in a thread or in its own process; a context manager."""

    def __init__(self, *, own_process: bool = False, quiet: bool = True) -> None:
        self.own_process = own_process
        self._quiet = quiet
        self._threaded: ThreadedMotoServer | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    def start(self) -> Self:
        """Start serving (idempotent); returns self."""
        if self._port is None:
            self._port = self._start_process() if self.own_process else self._start_thread()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent, bounded: werkzeug's serve loop polls every 0.5 s, a child gets 10 s)."""
        if self._threaded is not None:
            self._threaded.stop()
            self._threaded = None
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None
        self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

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

    def client(self, service: str) -> Any:
        """A boto3 client of this server that does not depend on the environment (dummy credentials)."""
        env = self.env()
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )

    def reset(self) -> None:
        """Wipe all moto state (buckets, tables, secrets) between tests sharing one server."""
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()

    # ------------------------------------------------------------------ the two ways to run

    def _start_thread(self) -> int:
        """moto 5.2's ``ThreadedMotoServer`` accepts ``port=0``: werkzeug binds an ephemeral port."""
        self._threaded = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._threaded.start()
        if self._quiet:
            _silence_request_log(self._threaded)
        return int(self._threaded.get_host_and_port()[1])

    def _start_process(self) -> int:
        """``python -m moto.server`` on a free port; a port taken meanwhile by someone else is retried."""
        for _ in range(3):
            port = _free_port()
            self._process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if _answers(f"http://127.0.0.1:{port}", self._process):
                return port
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None
        raise RuntimeError("moto.server did not start")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(endpoint: str, process: subprocess.Popen[bytes]) -> bool:
    """True once moto answers on ``endpoint``; False if the process exits or the start times out."""
    deadline = time.monotonic() + PROCESS_START_TIMEOUT_S
    while process.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            requests.get(f"{endpoint}/moto-api/data.json", timeout=1)
            return True
        time.sleep(0.1)
    return False


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
