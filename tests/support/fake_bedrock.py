"""A fake Amazon Bedrock control plane on 127.0.0.1: batch inference jobs and their tags.

Why not moto: moto 5.2's Bedrock has model customization jobs and tags, but no
``GetModelInvocationJob``. boto3 reaches this fake through ``AWS_ENDPOINT_URL_BEDROCK`` (the
service id is "Bedrock"), so the code under test uses its ordinary client. It speaks the
rest-json protocol the botocore model describes for the two calls the job path makes:

* ``GET /model-invocation-job/{jobIdentifier}`` (the ARN, percent-encoded in the path): the job,
  with its timestamps as ISO 8601 strings, as Bedrock sends them;
* ``POST /listTagsForResource`` with ``{"resourceARN"}``: ``{"tags": [{"key", "value"}]}``.

Every request must be SigV4-signed for service ``bedrock`` (the ``Authorization`` header's
credential scope is checked, not the signature); otherwise the answer is a 403 as AWS gives it.
Errors have Bedrock's shape: the code in ``x-amzn-ErrorType`` and ``{"message"}`` in the body,
e.g. ``ResourceNotFoundException`` (404) for an unknown job. A test can script a refusal or
throttling of either call (:meth:`FakeBedrock.fail`) and read what was asked (:attr:`calls`).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from tests.support.http_server import LoopbackHandler, LoopbackServer

__all__ = ["FakeBedrock", "job_arn"]

REGION = "us-east-1"
ACCOUNT = "123456789012"
_SCOPE = re.compile(r"^AWS4-HMAC-SHA256 Credential=[^/]+/\d{8}/(?P<region>[a-z0-9-]+)/bedrock/aws4_request,")
_STATUS = {
    "ResourceNotFoundException": 404,
    "ValidationException": 400,
    "AccessDeniedException": 403,
    "ThrottlingException": 429,
    "InternalServerException": 500,
}


def job_arn(job_id: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:bedrock:{region}:{account}:model-invocation-job/{job_id}"


@dataclass
class _Fault:
    code: str
    remaining: int | None


class _Handler(LoopbackHandler["FakeBedrock"]):
    def do_GET(self) -> None:
        self.owner._handle(self, "GET")

    def do_POST(self) -> None:
        self.owner._handle(self, "POST")


class FakeBedrock(LoopbackServer):
    """The fake control plane; a context manager that serves in a daemon thread."""

    handler = _Handler

    def __init__(self) -> None:
        super().__init__()
        self._jobs: dict[str, dict[str, Any]] = {}
        self._tags: dict[str, dict[str, str]] = {}
        self._faults: dict[str, _Fault] = {}
        self._calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        """The value for ``AWS_ENDPOINT_URL_BEDROCK``."""
        return self.base_url

    # ------------------------------------------------------------------ scripting

    def add_job(self, job: dict[str, Any], tags: dict[str, str] | None = None) -> str:
        """Serve ``job`` (a GetModelInvocationJob response, ``jobArn`` included) and its tags; its ARN."""
        with self._lock:
            self._jobs[job["jobArn"]] = dict(job)
            self._tags[job["jobArn"]] = dict(tags or {})
        return str(job["jobArn"])

    def fail(self, operation: str, code: str, times: int | None = None) -> None:
        """Answer the next ``times`` calls of ``operation`` with ``code`` (all of them when ``times`` is None).

        ``operation`` is ``GetModelInvocationJob`` or ``ListTagsForResource``.
        """
        with self._lock:
            self._faults[operation] = _Fault(code, times)

    @property
    def calls(self) -> list[tuple[str, str]]:
        """``(operation, ARN)`` of every signed request, in order."""
        with self._lock:
            return list(self._calls)

    # ------------------------------------------------------------------ serving

    def _take_fault(self, operation: str) -> str | None:
        with self._lock:
            fault = self._faults.get(operation)
            if fault is None or fault.remaining == 0:
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
            return fault.code

    @staticmethod
    def _error(handler: _Handler, code: str, message: str) -> None:
        handler.send_json(_STATUS[code], {"message": message}, headers={"x-amzn-ErrorType": code})

    def _route(self, handler: _Handler, method: str) -> tuple[str, str] | None:
        path = handler.path.split("?", 1)[0]
        if method == "GET" and path.startswith("/model-invocation-job/"):
            return "GetModelInvocationJob", unquote(path.removeprefix("/model-invocation-job/"))
        if method == "POST" and path == "/listTagsForResource":
            body = json.loads(handler.read_body() or b"{}")
            return "ListTagsForResource", str(body.get("resourceARN", ""))
        return None

    def _handle(self, handler: _Handler, method: str) -> None:
        if not _SCOPE.match(handler.headers.get("Authorization") or ""):
            handler.send_json(
                403,
                {"message": "Missing Authentication Token"},
                headers={"x-amzn-ErrorType": "MissingAuthenticationTokenException"},
            )
            return
        route = self._route(handler, method)
        if route is None:
            self._error(handler, "ValidationException", f"no such operation: {method} {handler.path}")
            return
        operation, arn = route
        with self._lock:
            self._calls.append((operation, arn))
            job, tags = self._jobs.get(arn), self._tags.get(arn, {})
        code = self._take_fault(operation)
        if code is not None:
            self._error(handler, code, f"injected {code}")
        elif job is None:
            self._error(handler, "ResourceNotFoundException", f"The specified job {arn} does not exist.")
        elif operation == "GetModelInvocationJob":
            handler.send_json(200, job)
        else:
            handler.send_json(200, {"tags": [{"key": k, "value": v} for k, v in tags.items()]})
