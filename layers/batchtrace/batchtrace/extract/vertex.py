"""Vertex AI batch prediction for Gemini: ``predictions.jsonl``, each line carrying its own request.

Follows https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/batch-prediction-from-cloud-storage.
Input line: ``{request: GenerateContentRequest}`` (no id). Output line: ``{status, processed_time,
request, response}``: ``status`` is ``""`` on success; on failure it is a message such as ``Bad
Request: {"error": {code, message, status}}`` and there is no ``response``. The request is echoed
with proto (snake_case) field names and ``null`` for unset oneof members.

There is no per-request id, so a request is known by its line number; ``processed_time`` (ISO
8601) is the span's time. The request and response are Gemini's, so everything between the line
and the record is :mod:`.gemini`'s content functions.
"""

from __future__ import annotations

import re
from typing import ClassVar

from batchtrace.extract.base import JsonObject, as_dict, as_str, loads_maybe
from batchtrace.extract.gemini import GeminiAdapter, parse_time, status_failure
from batchtrace.record import Failure, Record

STATUS_PREFIX = re.compile(r"\s*([A-Za-z][A-Za-z ]{0,39}):")


def status_text_failure(status: str) -> tuple[Failure, int | None]:
    """``(failure, HTTP status)`` of a non-empty ``status``: its embedded error JSON when it has one."""
    brace = status.find("{")
    embedded = as_dict(loads_maybe(status[brace:])) if brace >= 0 else {}
    error = embedded.get("error")
    if isinstance(error, dict):
        return status_failure(error)
    prefix = STATUS_PREFIX.match(status)  # "Bad Request: …": the HTTP reason phrase names the failure
    return Failure(prefix.group(1) if prefix else "error", status), None


class VertexAdapter(GeminiAdapter):
    """Vertex AI's Gemini batch output: self-contained lines, known by their line number."""

    name: ClassVar[str] = "vertex"
    provider: ClassVar[str] = "gcp.vertex_ai"
    aliases: ClassVar[tuple[str, ...]] = ("vertex_ai",)
    self_contained: ClassVar[bool] = True
    detect_order: ClassVar[int] = 30

    def request_id(self, line: JsonObject) -> str | None:
        return None  # input lines carry no id; the output echoes each request instead

    def is_request(self, line: JsonObject) -> bool:
        return isinstance(line.get("request"), dict) and "key" not in line

    def result_id(self, line: JsonObject, line_no: int) -> str | None:
        if not isinstance(line.get("request"), dict) or "key" in line:
            return None
        status = line.get("status")
        if isinstance(status, str) or isinstance(line.get("response"), dict):
            return str(line_no)
        return None

    def is_result(self, line: JsonObject) -> bool:
        return "processed_time" in line and self.result_id(line, 0) is not None

    def request_body(self, request: JsonObject | None, result: JsonObject | None) -> JsonObject:
        return as_dict(result.get("request")) if result else as_dict(as_dict(request).get("request"))

    def result_fields(self, record: Record, result: JsonObject) -> None:
        status = as_str(result.get("status"))
        if status:
            record.failure, record.http_status = status_text_failure(status)
        elif not isinstance(result.get("response"), dict):
            record.failure = Failure("no_response", "the line carries neither a response nor a status")
        created = parse_time(result.get("processed_time"))
        if created is not None:
            record.created_s = created


ADAPTER = VertexAdapter()
