"""A small local implementation of the AWS Lambda Runtime API, for running a built function.

Why: ``sam local invoke`` needs Docker. The Lambda runtime itself is only a client
(``awslambdaric``) that long-polls ``next`` for an event, calls the handler, and posts the
outcome to ``response`` or ``error``. Serving those endpoints on 127.0.0.1 lets a test run the
*built* function exactly the way Lambda does: real handler resolution (``_HANDLER``), real import
of the function and layer code, real JSON marshalling of the return value.

Endpoints (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html)::

    GET  /2018-06-01/runtime/invocation/next             the next event (long-polls, bounded)
    POST /2018-06-01/runtime/invocation/{id}/response    the handler's return value (JSON)
    POST /2018-06-01/runtime/invocation/{id}/error       the handler's exception
    POST /2018-06-01/runtime/init/error                  a failure before the first ``next``

Usage::

    with LambdaRuntimeApi() as api:
        proc = subprocess.Popen([...], env={"AWS_LAMBDA_RUNTIME_API": api.address, ...})
        api.watch(proc)
        result = api.invoke({"key": "value"}, timeout=60)
        assert result.ok, result.error_message

Everything is bounded: ``invoke`` waits at most ``timeout``, a ``next`` long-poll at most
``max_poll_s``, and the server stops itself after ``lifetime_s`` even if nobody stops it.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import subprocess
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tests.support.http_server import LoopbackHandler, LoopbackServer

__all__ = ["INVALID_RESPONSE_JSON", "InvocationResult", "LambdaRuntimeApi"]

_PREFIX = "/2018-06-01/runtime"
_INVOCATION_PATH = re.compile(rf"^{_PREFIX}/invocation/(?P<id>[^/]+)/(?P<kind>response|error)$")
_ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
#: Lambda's limit on a synchronous response payload.
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
#: ``error_type`` of a result whose ``response`` body was not valid JSON. Not a Lambda error
#: type: real Lambda passes any bytes through, but this product's callers (S3 retries, Step
#: Functions) need JSON, so the harness treats anything else as a failure.
INVALID_RESPONSE_JSON = "Harness.InvalidResponseJSON"


@dataclass(frozen=True)
class InvocationResult:
    """The outcome of one invocation, as a caller of ``Invoke`` would see it.

    ``ok`` with the parsed JSON ``payload``, or not ``ok`` with ``error_type`` /
    ``error_message`` (Lambda's ``errorType`` / ``errorMessage``) and the whole error document in
    ``error``. ``phase`` is ``"init"`` when the runtime failed before it could take the event
    (e.g. ``Runtime.ImportModuleError``), ``"invoke"`` otherwise. ``Runtime.ExitError`` is
    reported, as Lambda does, when the runtime process died without answering.
    """

    request_id: str
    ok: bool
    payload: Any = None
    error_type: str | None = None
    error_message: str | None = None
    error: dict[str, Any] = field(default_factory=dict)
    phase: str = "invoke"

    def describe(self) -> str:
        """One readable line, for assertion messages."""
        if self.ok:
            return f"ok: {json.dumps(self.payload)[:2000]}"
        trace = "".join(self.error.get("stackTrace") or []) if isinstance(self.error, dict) else ""
        return f"{self.phase} error {self.error_type}: {self.error_message}\n{trace}".rstrip()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _strict_json(body: bytes) -> Any:
    """Parse RFC 8259 JSON: no ``NaN``/``Infinity`` (Python's json accepts them by default)."""
    return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)


@dataclass
class _Pending:
    request_id: str
    body: bytes


class _Handler(LoopbackHandler["LambdaRuntimeApi"]):
    timeout = 120  # the runtime client keeps its connection alive; an idle one eventually lets go

    def do_GET(self) -> None:
        api = self.owner
        if self.path.split("?", 1)[0] != f"{_PREFIX}/invocation/next":
            api._protocol_error(f"GET {self.path}: unknown endpoint")
            self.send_json(404, {"errorType": "NotFound", "errorMessage": f"unknown path {self.path}"})
            return
        pending = api._next_pending()
        if pending is None:
            # Stopping, or nothing to do for max_poll_s: the real API would keep waiting; a test
            # harness must not. The runtime client treats this as fatal and exits.
            self.send_json(503, {"errorType": "Harness.NoInvocation", "errorMessage": "no invocation queued"})
            return
        headers = {
            "Lambda-Runtime-Aws-Request-Id": pending.request_id,
            "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000 + api.function_timeout_s * 1000)),
            "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
            "Lambda-Runtime-Trace-Id": _trace_header(),
        }
        self.send_body(200, pending.body, headers=headers)

    def do_POST(self) -> None:
        api = self.owner
        body = self.read_body()
        path = self.path.split("?", 1)[0]
        header_type = self.headers.get(_ERROR_TYPE_HEADER)
        if path == f"{_PREFIX}/init/error":
            api._record_init_error(body, header_type)
            self.send_json(202, {"status": "OK"})
            return
        match = _INVOCATION_PATH.match(path)
        if match is None:
            api._protocol_error(f"POST {self.path}: unknown endpoint")
            self.send_json(404, {"errorType": "NotFound", "errorMessage": f"unknown path {self.path}"})
            return
        status, answer = api._record_outcome(match["id"], match["kind"], body, header_type)
        self.send_json(status, answer)

    do_PUT = do_DELETE = do_PATCH = do_POST


def _trace_header() -> str:
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


class LambdaRuntimeApi(LoopbackServer):
    """The Runtime API on an ephemeral 127.0.0.1 port; a context manager.

    ``address`` is the value for ``AWS_LAMBDA_RUNTIME_API``. Give the runtime process to
    :meth:`watch` so :meth:`invoke` returns ``Runtime.ExitError`` at once if it dies, instead of
    waiting for its timeout. Anything the runtime did that the API does not allow (unknown
    request id, a second answer, an unknown path) is listed in :attr:`protocol_errors`.
    """

    handler = _Handler
    poll_interval_s: ClassVar[float] = 0.1
    DEFAULT_ARN: ClassVar[str] = "arn:aws:lambda:us-east-1:123456789012:function:LogBatchResultsFunction"

    def __init__(
        self,
        *,
        function_arn: str = DEFAULT_ARN,
        function_timeout_s: float = 900.0,
        max_poll_s: float = 600.0,
        lifetime_s: float = 1800.0,
    ) -> None:
        super().__init__(lifetime_s=lifetime_s)
        self.function_arn = function_arn
        self.function_timeout_s = function_timeout_s
        self.max_poll_s = max_poll_s
        self._cond = threading.Condition()
        self._queue: deque[_Pending] = deque()
        self._in_flight: set[str] = set()
        self._results: dict[str, InvocationResult] = {}
        self._init_error: InvocationResult | None = None
        self._protocol_errors: list[str] = []
        self._served = 0
        self._process: subprocess.Popen[Any] | None = None

    def before_stop(self) -> None:
        """Release waiting long polls: ``next`` answers at once while the server stops."""
        with self._cond:
            self._cond.notify_all()

    def on_handler_error(self, error: BaseException | None, text: str) -> None:
        """A runtime that is stopped mid-connection is normal; anything else is recorded."""
        if not isinstance(error, ConnectionError | TimeoutError):
            self._protocol_error(f"server error: {text}")

    def watch(self, process: subprocess.Popen[Any] | None) -> None:
        """The runtime process whose death ends waiting invocations (None: stop watching)."""
        with self._cond:
            self._process = process

    # ------------------------------------------------------------------ invoking

    def invoke(self, event: Any, timeout: float = 60) -> InvocationResult:
        """Queue ``event`` (JSON-encoded unless bytes) and wait for its outcome.

        Returns early with the init error if the runtime posted one, or with ``Runtime.ExitError``
        if the watched process exited without answering. Raises ``TimeoutError`` after
        ``timeout`` seconds without an outcome (the runtime is then likely stuck in the handler).
        """
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        request_id = str(uuid.uuid4())
        deadline = time.monotonic() + timeout
        with self._cond:
            if not self.running:
                raise RuntimeError("LambdaRuntimeApi is not running")
            pending = _Pending(request_id, body)
            self._queue.append(pending)
            self._cond.notify_all()
            while True:
                result = self._results.get(request_id)
                if result is not None:
                    return result
                if self._init_error is not None:
                    with contextlib.suppress(ValueError):
                        self._queue.remove(pending)
                    return InvocationResult(
                        request_id=request_id,
                        ok=False,
                        error_type=self._init_error.error_type,
                        error_message=self._init_error.error_message,
                        error=self._init_error.error,
                        phase="init",
                    )
                process = self._process
                if process is not None and process.poll() is not None:
                    with contextlib.suppress(ValueError):
                        self._queue.remove(pending)
                    self._in_flight.discard(request_id)
                    return InvocationResult(
                        request_id=request_id,
                        ok=False,
                        error_type="Runtime.ExitError",
                        error_message=f"Runtime exited with error: exit status {process.returncode}",
                        phase="init" if self._served == 0 else "invoke",
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    with contextlib.suppress(ValueError):
                        self._queue.remove(pending)
                    state = "taken by the runtime" if request_id in self._in_flight else "never taken by the runtime"
                    raise TimeoutError(f"invocation {request_id} ({state}) got no outcome within {timeout} s")
                # Short waits: process death is noticed by polling, not by notification.
                self._cond.wait(min(remaining, 0.1))

    @property
    def init_error(self) -> InvocationResult | None:
        """The init error the runtime posted, if any."""
        with self._cond:
            return self._init_error

    def wait_for_init_error(self, timeout: float = 30) -> InvocationResult | None:
        """Block until the runtime posts an init error (None on timeout or if the process exits)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._init_error is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self._process is not None and self._process.poll() is not None):
                    return self._init_error
                self._cond.wait(min(remaining, 0.1))
            return self._init_error

    @property
    def protocol_errors(self) -> list[str]:
        """Requests the API refused (unknown path or request id, a second answer, bad JSON)."""
        with self._cond:
            return list(self._protocol_errors)

    @property
    def invocations_served(self) -> int:
        """How many events the runtime has taken through ``next``."""
        with self._cond:
            return self._served

    # ------------------------------------------------------------------ server side

    def _protocol_error(self, text: str) -> None:
        with self._cond:
            if len(self._protocol_errors) < 1000:
                self._protocol_errors.append(text)

    def _next_pending(self) -> _Pending | None:
        deadline = time.monotonic() + self.max_poll_s
        with self._cond:
            while not self._queue:
                remaining = deadline - time.monotonic()
                if self.stopping or remaining <= 0:
                    return None
                self._cond.wait(remaining)
            if self.stopping:
                return None
            pending = self._queue.popleft()
            self._in_flight.add(pending.request_id)
            self._served += 1
            return pending

    def _record_init_error(self, body: bytes, header_type: str | None) -> None:
        document, problem = _parse_error_document(body)
        result = InvocationResult(
            request_id="",
            ok=False,
            error_type=document.get("errorType") or header_type or "Runtime.Unknown",
            error_message=document.get("errorMessage") or problem,
            error=document,
            phase="init",
        )
        with self._cond:
            if problem:
                self._protocol_errors.append(f"init/error: {problem}")
            if self._init_error is None:
                self._init_error = result
            self._cond.notify_all()

    def _record_outcome(
        self, request_id: str, kind: str, body: bytes, header_type: str | None
    ) -> tuple[int, dict[str, Any]]:
        if kind == "response":
            if len(body) > MAX_RESPONSE_BYTES:
                result = InvocationResult(
                    request_id,
                    ok=False,
                    error_type="Function.ResponseSizeTooLarge",
                    error_message=f"Response payload size ({len(body)} bytes) exceeded maximum allowed payload"
                    f" size ({MAX_RESPONSE_BYTES} bytes).",
                )
            else:
                try:
                    result = InvocationResult(request_id, ok=True, payload=_strict_json(body))
                except ValueError as err:
                    result = InvocationResult(
                        request_id,
                        ok=False,
                        error_type=INVALID_RESPONSE_JSON,
                        error_message=f"the response body is not valid JSON ({err}): {body[:500]!r}",
                    )
        else:
            document, problem = _parse_error_document(body)
            result = InvocationResult(
                request_id,
                ok=False,
                error_type=document.get("errorType") or header_type or "Runtime.Unknown",
                error_message=document.get("errorMessage") or problem,
                error=document,
            )
            if problem:
                self._protocol_error(f"{request_id}/error: {problem}")
        with self._cond:
            if request_id not in self._in_flight:
                known = request_id in self._results
                self._protocol_errors.append(
                    f"{kind} for {'an already answered' if known else 'an unknown'} request id {request_id}"
                )
                return 400, {"errorType": "InvalidRequestID", "errorMessage": f"invalid request id {request_id}"}
            self._in_flight.discard(request_id)
            self._results[request_id] = result
            self._cond.notify_all()
        if result.error_type == "Function.ResponseSizeTooLarge":
            return 413, {"errorType": result.error_type, "errorMessage": result.error_message}
        return 202, {"status": "OK"}


def _parse_error_document(body: bytes) -> tuple[dict[str, Any], str | None]:
    """The runtime's error JSON (``errorType``, ``errorMessage``, ``stackTrace``), or a problem."""
    try:
        document = _strict_json(body)
    except ValueError as err:
        return {}, f"error body is not valid JSON ({err}): {body[:500]!r}"
    if not isinstance(document, dict):
        return {}, f"error body is not a JSON object: {body[:500]!r}"
    return document, None
