"""A fake OpenAI API on 127.0.0.1: batch objects and file contents, for the lifecycle tests.

Its :attr:`FakeOpenAI.base_url` includes ``/v1``, as ``OPENAI_BASE_URL`` does for the openai SDK,
which the code under test calls it through. Serves the two endpoints the batch lifecycle touches
(``client.batches.retrieve`` and ``client.files.content``); any other path is a 404:

* ``GET /v1/batches/{batch_id}``: the batch object; a list of objects is served in order (the
  last one repeats), so a test can script ``in_progress`` -> ``finalizing`` -> ``completed``.
* ``GET /v1/files/{file_id}/content``: the file's bytes, streamed in chunks with a
  Content-Length (from memory or from a file on disk, so a large file never sits in memory).
* ``GET /v1/batches?limit=&after=`` (``client.batches.list``): every batch's current object,
  newest first, a page of ``limit`` (default 20, at most :attr:`FakeOpenAI.page_cap`) after the
  ``after`` id, with ``first_id``, ``last_id`` and ``has_more`` as OpenAI pages them.
* ``POST /v1/files`` (``client.files.create``, multipart) and ``POST /v1/batches``
  (``client.batches.create``, with its ``metadata``): what a submitter calls. The created batch
  is ``validating`` until :meth:`FakeOpenAI.finish` ends it (completed, expired, failed or
  cancelled, with output and error files); :attr:`FakeOpenAI.created` holds the create requests.

Every request must carry ``Authorization: Bearer <api_key>``; otherwise the answer is a 401 in
OpenAI's error shape. Faults are scripted per path: an HTTP status for the next N requests (or
all), or a body cut off halfway (the connection closes before Content-Length bytes are sent).
Requests are recorded (without the Authorization value, with the User-Agent) so tests can count
attempts, check order and see which client called, and ``on_request`` runs before each answer,
so a test can observe the world at that moment (e.g. which S3 objects exist when the output
file is requested).

Usage::

    with FakeOpenAI(api_key="sk-test") as api:
        api.add_file("file-out", b'{"custom_id": "a"}\\n')
        api.fail("/v1/files/file-out/content", status=500, times=2)
        openai.OpenAI(api_key="sk-test", base_url=api.base_url).files.content("file-out")
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.http_server import LoopbackHandler, LoopbackServer

__all__ = ["FakeOpenAI", "RecordedRequest"]

_CHUNK = 256 * 1024


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake saw; ``authorized`` says whether the bearer key matched."""

    method: str
    path: str
    authorized: bool
    status: int
    user_agent: str = ""


@dataclass
class _Fault:
    status: int | None  # None: truncate the body instead
    remaining: int | None  # None: forever


class _Handler(LoopbackHandler["FakeOpenAI"]):
    def do_GET(self) -> None:
        self.owner._handle(self)

    def do_POST(self) -> None:
        self.owner._handle_post(self)


class FakeOpenAI(LoopbackServer):
    """The fake API; a context manager that serves in a daemon thread."""

    handler = _Handler

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.on_request: Callable[[str], None] | None = None
        self._files: dict[str, bytes | Path] = {}
        self._batches: dict[str, list[dict[str, Any]]] = {}
        self._faults: dict[str, _Fault] = {}
        self._requests: list[RecordedRequest] = []
        #: The largest page ``GET /v1/batches`` serves (OpenAI's is 100): lower it to get more pages.
        self.page_cap = 100
        #: The bodies of ``POST /v1/batches`` (``client.batches.create``), in order.
        self.created: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``: the value for ``OPENAI_BASE_URL`` (the SDK's meaning: with ``/v1``)."""
        return f"{super().base_url}/v1"

    # ------------------------------------------------------------------ scripting

    def add_file(self, file_id: str, content: bytes | Path) -> None:
        """Serve ``content`` (bytes, or a file streamed from disk) as the file's content."""
        with self._lock:
            self._files[file_id] = content

    def set_batch(self, batch_id: str, *objects: dict[str, Any]) -> None:
        """Serve these batch objects for the batch, one per request; the last one repeats."""
        with self._lock:
            self._batches[batch_id] = [dict(o) for o in objects]

    def fail(self, path: str, *, status: int | None, times: int | None = None) -> None:
        """Answer ``status`` to the next ``times`` requests of ``path`` (all when None).

        ``status=None`` cuts the body off halfway instead (the path must be a file's content).
        """
        with self._lock:
            self._faults[path] = _Fault(status=status, remaining=times)

    def clear(self) -> None:
        with self._lock:
            self._files.clear()
            self._batches.clear()
            self._faults.clear()
            self._requests.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    # ------------------------------------------------------------------ serving

    def _record(self, handler: _Handler, authorized: bool, status: int) -> None:
        with self._lock:
            user_agent = handler.headers.get("User-Agent") or ""
            self._requests.append(RecordedRequest(handler.command, handler.path, authorized, status, user_agent))

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            fault = self._faults.get(path)
            if fault is None:
                return None
            if fault.remaining is not None:
                if fault.remaining <= 0:
                    del self._faults[path]
                    return None
                fault.remaining -= 1
            return fault

    def _handle(self, handler: _Handler) -> None:
        path = handler.path.split("?", 1)[0]
        authorized = handler.headers.get("Authorization") == f"Bearer {self.api_key}"
        if self.on_request is not None:
            self.on_request(path)
        if not authorized:
            self._record(handler, False, 401)
            supplied = (handler.headers.get("Authorization") or "").removeprefix("Bearer ")
            masked = f"{supplied[:3]}***{supplied[-4:]}" if len(supplied) > 8 else "***"
            handler.send_json(
                401,
                {
                    "error": {
                        "message": f"Incorrect API key provided: {masked}.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
            )
            return
        fault = self._take_fault(path)
        if fault is not None and fault.status is not None:
            self._record(handler, True, fault.status)
            handler.send_json(
                fault.status,
                {"error": {"message": f"injected failure {fault.status}", "type": "server_error", "code": None}},
            )
            return
        self._route(handler, path, truncate=fault is not None)

    def _route(self, handler: _Handler, path: str, *, truncate: bool) -> None:
        """Answer a GET that passed the key and fault checks, by its path."""
        parts = path.strip("/").split("/")
        if parts == ["v1", "batches"]:
            self._serve_list(handler)
        elif len(parts) == 3 and parts[:2] == ["v1", "batches"]:
            self._serve_batch(handler, parts[2])
        elif len(parts) == 4 and parts[:2] == ["v1", "files"] and parts[3] == "content":
            self._serve_file(handler, parts[2], truncate=truncate)
        else:
            self._record(handler, True, 404)
            handler.send_json(404, {"error": {"message": f"Invalid URL (GET {path})", "type": "invalid_request_error"}})

    def _serve_batch(self, handler: _Handler, batch_id: str) -> None:
        with self._lock:
            queue = self._batches.get(batch_id)
            obj = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else None
        if obj is None:
            self._record(handler, True, 404)
            handler.send_json(
                404, {"error": {"message": f"No batch found with id '{batch_id}'.", "type": "invalid_request_error"}}
            )
            return
        self._record(handler, True, 200)
        handler.send_json(200, obj)

    def _serve_list(self, handler: _Handler) -> None:
        """``GET /v1/batches``: the batches' current objects, newest first, paged by ``after`` and ``limit``."""
        query = parse_qs(urlsplit(handler.path).query)
        limit = min(int(query.get("limit", ["20"])[0]), self.page_cap)
        with self._lock:
            current = [queue[0] for queue in self._batches.values() if queue]
        ordered = sorted(current, key=lambda o: (o.get("created_at") or 0, o["id"]), reverse=True)
        ids = [o["id"] for o in ordered]
        after = query.get("after", [None])[0]
        start = ids.index(after) + 1 if after in ids else 0
        page = ordered[start : start + limit]
        self._record(handler, True, 200)
        handler.send_json(
            200,
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": start + limit < len(ordered),
            },
        )

    def _serve_file(self, handler: _Handler, file_id: str, *, truncate: bool) -> None:
        with self._lock:
            content = self._files.get(file_id)
        if content is None:
            self._record(handler, True, 404)
            handler.send_json(
                404,
                {
                    "error": {
                        "message": f"No such File object: {file_id}",
                        "type": "invalid_request_error",
                        "param": "id",
                        "code": None,
                    }
                },
            )
            return
        size = content.stat().st_size if isinstance(content, Path) else len(content)
        self._record(handler, True, 200)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(size))
        handler.end_headers()
        limit = size // 2 if truncate else size
        sent = 0
        try:
            if isinstance(content, Path):
                with content.open("rb") as fh:
                    while sent < limit:
                        chunk = fh.read(min(_CHUNK, limit - sent))
                        if not chunk:
                            break
                        handler.wfile.write(chunk)
                        sent += len(chunk)
            else:
                view = memoryview(content)
                while sent < limit:
                    chunk = view[sent : sent + _CHUNK][: limit - sent]
                    handler.wfile.write(chunk)
                    sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            return
        if truncate:
            handler.wfile.flush()
            handler.close_connection = True

    # ------------------------------------------------------------------ submitting (POST) and finishing a batch

    def finish(
        self,
        batch_id: str,
        status: str,
        *,
        output_file: bytes | None = None,
        error_file: bytes | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """End a created batch: from now on its final object is served (``status``, its time stamp,
        file ids for the files given, which are served too; ``fields`` override any field, e.g.
        ``request_counts`` or the times). Returns that object."""
        with self._lock:
            obj = dict(self._batches[batch_id][-1])
        obj.update(status=status, in_progress_at=obj["created_at"])
        obj[f"{status}_at"] = int(time.time())
        for name, content in (("output", output_file), ("error", error_file)):
            if content is not None:
                obj[f"{name}_file_id"] = f"file-{name}-{batch_id}"
                self.add_file(obj[f"{name}_file_id"], content)
        obj.update(fields)
        self.set_batch(batch_id, obj)
        return obj

    def _handle_post(self, handler: _Handler) -> None:
        body = handler.read_body()
        if handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            self._record(handler, False, 401)
            handler.send_json(401, {"error": {"message": "Incorrect API key provided.", "code": "invalid_api_key"}})
            return
        path = handler.path.split("?", 1)[0]
        if path == "/v1/files":
            self._create_file(handler, body)
        elif path == "/v1/batches":
            self._create_batch(handler, json.loads(body))
        else:
            self._record(handler, True, 404)
            handler.send_json(
                404, {"error": {"message": f"Invalid URL (POST {path})", "type": "invalid_request_error"}}
            )

    def _create_file(self, handler: _Handler, body: bytes) -> None:
        """``client.files.create(file=..., purpose="batch")``: a multipart form with ``file`` and ``purpose``."""
        head = f"Content-Type: {handler.headers.get('Content-Type')}\r\n\r\n".encode()
        form = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        fields = {part.get_param("name", header="content-disposition"): part for part in form.iter_parts()}
        content = fields["file"].get_payload(decode=True)
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        self.add_file(file_id, content)
        self._record(handler, True, 200)
        handler.send_json(
            200,
            {
                "id": file_id,
                "object": "file",
                "bytes": len(content),
                "created_at": int(time.time()),
                "filename": fields["file"].get_filename() or "input.jsonl",
                "purpose": fields["purpose"].get_payload(decode=True).decode(),
                "status": "processed",
            },
        )

    def _create_batch(self, handler: _Handler, request: dict[str, Any]) -> None:
        """``client.batches.create(...)``: a ``validating`` batch keeping the request's ``metadata``."""
        batch_id = f"batch_{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        obj: dict[str, Any] = {
            "id": batch_id,
            "object": "batch",
            "endpoint": request["endpoint"],
            "errors": None,
            "input_file_id": request["input_file_id"],
            "completion_window": request["completion_window"],
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": created,
            "in_progress_at": None,
            "expires_at": created + 86_400,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": request.get("metadata"),
        }
        with self._lock:
            self.created.append(request)
        self.set_batch(batch_id, obj)
        self._record(handler, True, 200)
        handler.send_json(200, obj)
