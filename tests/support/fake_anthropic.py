"""A fake Anthropic Message Batches API on 127.0.0.1, for the tests that run the official SDK against it.

Its :attr:`FakeAnthropic.base_url` has no ``/v1``, as ``ANTHROPIC_BASE_URL`` has none for the
anthropic SDK. It serves what listing and reading past batches touches, in the API's shapes:

* ``GET /v1/messages/batches?limit=&after_id=&before_id=`` (``client.messages.batches.list``):
  the batches newest first, a page of ``limit`` (default 20, at most :attr:`page_cap`) after
  ``after_id`` or before ``before_id``, with ``first_id``, ``last_id`` and ``has_more``.
* ``GET /v1/messages/batches/{id}``: the ``message_batch`` object; its ``results_url`` points at
  this server when results were added for it, else it is ``null`` (results no longer served).
* ``GET /v1/messages/batches/{id}/results`` (the ``results_url``, which
  ``client.messages.batches.results`` follows): the JSONL, streamed in chunks.

Every request must carry the key, as ``x-api-key: <api_key>`` or as ``Authorization: Bearer
<api_key>`` (both are accepted by the API; anthropic SDK 2.x sends the latter), else 401
``authentication_error``; and an ``anthropic-version`` header, else 400; in Anthropic's error
shape. Faults are scripted per path: a status for the next N requests, with a ``retry-after``
header (a 429 the SDK must wait out and retry). Requests are recorded (the path with its query,
the version header, the status answered).

Usage::

    with FakeAnthropic(api_key="sk-ant-test") as api:
        api.add_batch(message_batch("msgbatch_1", "ended"), results=b'{"custom_id": ...}\\n')
        api.fail("/v1/messages/batches", status=429, times=1, retry_after="1")
        anthropic.Anthropic(api_key="sk-ant-test", base_url=api.base_url).messages.batches.list()
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.http_server import LoopbackHandler, LoopbackServer

__all__ = ["FakeAnthropic", "Request", "message_batch"]

_PREFIX = "/v1/messages/batches"
_CHUNK = 64 * 1024


def message_batch(
    batch_id: str,
    processing_status: str = "ended",
    *,
    created_at: str = "2026-08-17T21:40:12.448917Z",
    ended_at: str | None = "2026-08-18T01:12:40.001200Z",
    cancel_initiated_at: str | None = None,
    counts: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A ``message_batch`` object with every field the API returns (``results_url`` is set when served)."""
    ended = processing_status == "ended"
    return {
        "id": batch_id,
        "type": "message_batch",
        "processing_status": processing_status,
        "request_counts": counts or {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
        "ended_at": ended_at if ended else None,
        "created_at": created_at,
        "expires_at": "2026-08-18T21:40:12.448917Z",
        "archived_at": None,
        "cancel_initiated_at": cancel_initiated_at,
        "results_url": None,
    }


@dataclass(frozen=True)
class Request:
    """One request the fake saw."""

    path: str
    authorized: bool
    version: str | None
    status: int


@dataclass
class _Fault:
    status: int
    remaining: int
    retry_after: str | None


class _Handler(LoopbackHandler["FakeAnthropic"]):
    def do_GET(self) -> None:
        self.owner._handle(self)


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}


class FakeAnthropic(LoopbackServer):
    """The fake API; a context manager that serves in a daemon thread."""

    handler = _Handler

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        #: The largest page served (Anthropic's is 1000): lower it to get more pages.
        self.page_cap = 1000
        self._batches: dict[str, dict[str, Any]] = {}
        self._results: dict[str, bytes] = {}
        self._faults: dict[str, _Fault] = {}
        self._requests: list[Request] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ scripting

    def add_batch(self, obj: dict[str, Any], results: bytes | None = None) -> None:
        """Serve the batch; with ``results``, its ``results_url`` and the results behind it."""
        with self._lock:
            self._batches[obj["id"]] = dict(obj)
            if results is not None:
                self._results[obj["id"]] = results

    def fail(self, path: str, *, status: int, times: int = 1, retry_after: str | None = None) -> None:
        """Answer ``status`` (with ``retry-after`` if given) to the next ``times`` requests of ``path``."""
        with self._lock:
            self._faults[path] = _Fault(status, times, retry_after)

    def clear(self) -> None:
        with self._lock:
            self._batches.clear()
            self._results.clear()
            self._faults.clear()
            self._requests.clear()

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    # ------------------------------------------------------------------ serving

    def _record(self, handler: _Handler, authorized: bool, status: int) -> None:
        with self._lock:
            version = handler.headers.get("anthropic-version")
            self._requests.append(Request(handler.path, authorized, version, status))

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            fault = self._faults.get(path)
            if fault is None or fault.remaining <= 0:
                return None
            fault.remaining -= 1
            return fault

    def _refuse(self, handler: _Handler) -> bool:
        """Answer a request without the right key or version; ``True`` when it was refused."""
        bearer = (handler.headers.get("Authorization") or "").removeprefix("Bearer ")
        if self.api_key not in (handler.headers.get("x-api-key"), bearer):
            self._record(handler, False, 401)
            handler.send_json(401, _error("authentication_error", "invalid x-api-key"))
            return True
        if not handler.headers.get("anthropic-version"):
            self._record(handler, True, 400)
            handler.send_json(400, _error("invalid_request_error", "anthropic-version: header is required"))
            return True
        fault = self._take_fault(urlsplit(handler.path).path)
        if fault is not None:
            self._record(handler, True, fault.status)
            headers = {"retry-after": fault.retry_after} if fault.retry_after else None
            handler.send_json(fault.status, _error("rate_limit_error", "injected failure"), headers=headers)
            return True
        return False

    def _handle(self, handler: _Handler) -> None:
        if self._refuse(handler):
            return
        path = urlsplit(handler.path).path.rstrip("/")
        rest = path.removeprefix(_PREFIX).strip("/").split("/") if path.startswith(_PREFIX) else None
        if rest == [""]:
            self._serve_list(handler)
        elif rest is not None and len(rest) == 1:
            self._serve_batch(handler, rest[0])
        elif rest is not None and len(rest) == 2 and rest[1] == "results":
            self._serve_results(handler, rest[0])
        else:
            self._not_found(handler, f"{path} not found")

    def _not_found(self, handler: _Handler, message: str) -> None:
        self._record(handler, True, 404)
        handler.send_json(404, _error("not_found_error", message))

    def _current(self, batch_id: str) -> dict[str, Any] | None:
        with self._lock:
            obj = self._batches.get(batch_id)
            has_results = batch_id in self._results
        if obj is None:
            return None
        results_url = f"{self.base_url}{_PREFIX}/{batch_id}/results" if has_results else None
        return {**obj, "results_url": results_url}

    def _serve_batch(self, handler: _Handler, batch_id: str) -> None:
        obj = self._current(batch_id)
        if obj is None:
            self._not_found(handler, f"no message batch {batch_id}")
            return
        self._record(handler, True, 200)
        handler.send_json(200, obj)

    def _page(self, query: dict[str, list[str]]) -> tuple[list[dict[str, Any]], bool]:
        """The page the query asks for, newest first, and whether there is more beyond it."""
        limit = min(int(query.get("limit", ["20"])[0]), self.page_cap)
        with self._lock:
            ids = sorted(self._batches, key=lambda i: (self._batches[i]["created_at"], i), reverse=True)
        objects = [obj for i in ids if (obj := self._current(i)) is not None]
        if "before_id" in query:
            end = ids.index(query["before_id"][0]) if query["before_id"][0] in ids else 0
            start = max(end - limit, 0)
            return objects[start:end], start > 0
        after = query.get("after_id", [None])[0]
        start = ids.index(after) + 1 if after in ids else 0
        return objects[start : start + limit], start + limit < len(objects)

    def _serve_list(self, handler: _Handler) -> None:
        page, has_more = self._page(parse_qs(urlsplit(handler.path).query))
        self._record(handler, True, 200)
        first, last = (page[0]["id"], page[-1]["id"]) if page else (None, None)
        handler.send_json(200, {"data": page, "has_more": has_more, "first_id": first, "last_id": last})

    def _serve_results(self, handler: _Handler, batch_id: str) -> None:
        with self._lock:
            body = self._results.get(batch_id)
        if body is None:
            self._not_found(handler, f"no results for message batch {batch_id}")
            return
        self._record(handler, True, 200)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/binary")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        for start in range(0, len(body), _CHUNK):
            handler.wfile.write(body[start : start + _CHUNK])
        handler.wfile.flush()
