"""A local AWS Lambda ``Invoke`` API on 127.0.0.1: records invocations, runs nothing.

Why: the OpenAI webhook function hands its work to itself with an asynchronous ``Invoke``
(``InvocationType=Event``). moto's Lambda runs functions in Docker; here the test wants the
request itself: that boto3 sent it (SigV4-signed, to the function's name, as ``Event``) and what
payload it carried, so the test can then run that payload through the handler, as Lambda would.
boto3 reaches it through ``AWS_ENDPOINT_URL_LAMBDA``.

``POST /2015-03-31/functions/{name}/invocations`` answers 202 for ``Event`` (what Lambda
answers) and 400 otherwise: the code under test must never wait for its own work.

Usage::

    with FakeLambdaInvoke() as api:
        env["AWS_ENDPOINT_URL_LAMBDA"] = api.base_url
        ...
        (call,) = api.take()
        assert call.invocation_type == "Event"
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from tests.support.http_server import LoopbackHandler, LoopbackServer

__all__ = ["FakeLambdaInvoke", "Invocation"]

_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")


@dataclass(frozen=True)
class Invocation:
    """One ``Invoke`` request: the function named, its invocation type, the JSON payload, whether it was signed."""

    function_name: str
    invocation_type: str
    payload: Any
    signed: bool


class _Handler(LoopbackHandler["FakeLambdaInvoke"]):
    def do_POST(self) -> None:
        self.owner._handle(self)


class FakeLambdaInvoke(LoopbackServer):
    """The fake; a context manager serving in a daemon thread."""

    handler = _Handler

    def __init__(self) -> None:
        super().__init__()
        self._calls: list[Invocation] = []
        self._lock = threading.Lock()

    def take(self) -> list[Invocation]:
        """The invocations received since the last call, oldest first."""
        with self._lock:
            calls, self._calls = self._calls, []
        return calls

    def _handle(self, handler: _Handler) -> None:
        body = handler.read_body()
        match = _PATH.match(handler.path.split("?", 1)[0])
        if match is None:
            handler.send_json(404, {"Type": "User", "message": f"no such path {handler.path}"})
            return
        kind = handler.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        if kind != "Event":
            handler.send_json(400, {"Type": "User", "message": "only asynchronous (Event) invocations are expected"})
            return
        signed = (handler.headers.get("Authorization") or "").startswith("AWS4-HMAC-SHA256 ")
        call = Invocation(unquote(match["name"]), kind, json.loads(body or b"null"), signed)
        with self._lock:
            self._calls.append(call)
        handler.send_body(202, b"", headers={"X-Amz-Executed-Version": "$LATEST"})
