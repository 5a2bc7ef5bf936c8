"""Mistral batch inference: OpenAI-like lines without ``url`` or ``model``, and string error bodies.

Follows "Batch Inference" (https://docs.mistral.ai/capabilities/batch) and the Batch API
reference (https://docs.mistral.ai/api/endpoint/batch). Input line: ``{custom_id, body}``, with
no ``method`` or ``url`` (the endpoint is the job's) and usually no ``body.model`` (the model is
the job's: pass it as ``--model``, it becomes ``ctx.model``). Output line: ``{id, custom_id,
response: {status_code, body}, error}``, with no ``response.request_id``; a chat body is
OpenAI's. A failed request's ``response.body`` is often a JSON *string* of ``{object: "error",
message, type, param, code}`` (no ``error`` wrapper), and ``message`` may itself be an object
(a 422's ``{detail: [{loc, msg, ...}]}``) or the body a bare, non-JSON string.

Not detectable: the lines are OpenAI's without the fields that would tell them apart, so the
format is chosen with ``--provider mistral``.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from batchtrace.extract.base import JsonObject, as_dict, as_list, as_str, loads_maybe
from batchtrace.extract.openai import OpenAIAdapter
from batchtrace.record import Failure


def message_text(value: Any) -> str | None:
    """A human message from Mistral's ``message``: a string, a validation ``detail`` list, or any JSON."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    details = value if isinstance(value, list) else as_list(as_dict(value).get("detail"))
    if details and all(isinstance(item, dict) for item in details):
        return "; ".join(_detail_text(item) for item in details)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _detail_text(item: JsonObject) -> str:
    location = ".".join(str(part) for part in as_list(item.get("loc")))
    text = str(item.get("msg") or item.get("type") or "invalid")
    return f"{location}: {text}" if location else text


def _error_text(error: JsonObject, status: int | None) -> str:
    text = message_text(error.get("message")) or message_text(error.get("detail"))
    return text or (f"HTTP {status}" if status else "the request failed")


def error_failure(body: Any, status: int | None) -> Failure:
    """The failure of an error body: Mistral's error object, OpenAI's ``{error}``, or a bare string."""
    fallback = str(status or "error")
    if isinstance(body, str) and body:
        return Failure(fallback, body)
    error = as_dict(as_dict(body).get("error")) or as_dict(body)
    code = error.get("code")
    code_text = str(code) if code not in (None, "") else None
    kind = as_str(error.get("type")) or code_text or fallback
    text = _error_text(error, status)
    if code_text is not None and code_text != kind:
        text = f"{text} (code {code_text})"
    return Failure(kind, text)


class MistralAdapter(OpenAIAdapter):
    """OpenAI's adapter reading Mistral's error bodies; the model comes from the job when absent."""

    name: ClassVar[str] = "mistral"
    provider: ClassVar[str] = "mistral_ai"
    detectable: ClassVar[bool] = False

    def failure_of(self, result: JsonObject, body: JsonObject | None, status: int | None) -> Failure | None:
        """HTTP errors from Mistral's own error body; line-level errors and successes as OpenAI's."""
        raw = loads_maybe(as_dict(result.get("response")).get("body"))
        errored = (status is not None and status >= 400) or as_dict(raw).get("object") == "error"
        if result.get("error") is None and errored:
            return error_failure(raw, status)
        return super().failure_of(result, body, status)


ADAPTER = MistralAdapter()
