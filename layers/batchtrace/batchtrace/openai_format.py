"""OpenAI Batch API line shapes: input requests, output results and both error-file shapes.

Every accessor tolerates ``null`` in optional fields; a line whose required fields have the
wrong type is reported as wrong-shaped (and skipped by the caller) rather than raising.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The Batch API's own code for requests that did not run before the completion window closed.
BATCH_EXPIRED = "batch_expired"


@dataclass(slots=True, frozen=True)
class BatchRequest:
    custom_id: str
    url: str
    body: dict[str, Any]


@dataclass(slots=True, frozen=True)
class BatchResult:
    """One output or error-file line, normalised.

    ``error`` is the line-level ``error`` object (``batch_expired`` and friends); an HTTP failure
    keeps its details in ``body["error"]`` with ``status_code`` >= 400.
    """

    custom_id: str
    line_id: str | None
    status_code: int | None
    request_id: str | None
    body: dict[str, Any] | None
    error: dict[str, Any] | None

    @property
    def failed(self) -> bool:
        return (
            self.error is not None
            or (self.status_code is not None and self.status_code >= 400)
            or (self.body is not None and isinstance(self.body.get("error"), dict))
            or (self.status_code is None and self.body is None)
        )

    @property
    def expired(self) -> bool:
        return self.error is not None and self.error.get("code") == BATCH_EXPIRED

    def error_type_and_message(self) -> tuple[str, str]:
        """What went wrong, as (``error.type`` value, human message)."""
        if self.error is not None:
            code = self.error.get("code") or self.error.get("type") or "error"
            return str(code), str(self.error.get("message") or code)
        body_error = self.body.get("error") if self.body else None
        if isinstance(body_error, dict):
            code = body_error.get("code") or body_error.get("type") or self.status_code or "error"
            message = body_error.get("message") or f"HTTP {self.status_code}"
            return str(code), str(message)
        if self.status_code is not None and self.status_code >= 400:
            return str(self.status_code), f"HTTP {self.status_code}"
        return "no_response", "the result line carries neither a response nor an error"


def _optional_dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse_request(obj: dict[str, Any]) -> tuple[BatchRequest | None, str]:
    """An input line as a :class:`BatchRequest`, or ``(None, reason)``."""
    custom_id = obj.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return None, "no string custom_id"
    body = obj.get("body")
    if not isinstance(body, dict):
        return None, f"request {custom_id!r} has no JSON object body"
    url = obj.get("url")
    return BatchRequest(custom_id, url if isinstance(url, str) else "/v1/chat/completions", body), ""


def parse_result(obj: dict[str, Any]) -> tuple[BatchResult | None, str]:
    """An output or error-file line as a :class:`BatchResult`, or ``(None, reason)``."""
    custom_id = obj.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return None, "no string custom_id"
    response = obj.get("response")
    if response is not None and not isinstance(response, dict):
        return None, f"result {custom_id!r}: response is not an object"
    error = obj.get("error")
    if error is not None and not isinstance(error, dict):
        error = {"code": "error", "message": str(error)}
    status = response.get("status_code") if response else None
    if isinstance(status, bool) or not isinstance(status, int):
        status = None
    return (
        BatchResult(
            custom_id=custom_id,
            line_id=_optional_str(obj.get("id")),
            status_code=status,
            request_id=_optional_str(response.get("request_id")) if response else None,
            body=_optional_dict(response.get("body")) if response else None,
            error=error,
        ),
        "",
    )
