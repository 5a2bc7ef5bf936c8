"""Realistic OpenAI Batch API lines (input, output and both error-file shapes) shared by the unit tests.

The shapes follow what the Batch API really writes: an output line carries ``response.status_code``,
``response.request_id`` and ``response.body``; an error-file line is either ``response: null`` with a
line-level ``error`` (``batch_expired``), or a ``response`` with ``status_code`` >= 400 whose body holds
``error: {message, type, param, code}``.
"""

from __future__ import annotations

from typing import Any

CREATED = 1_732_000_000  # 2024-11-19, a plausible response `created` (epoch seconds)
BATCH_CREATED_AT = CREATED - 3_600
BATCH_COMPLETED_AT = CREATED + 600


def chat_request(custom_id: str = "req-1", content: str = "Say hello", **body: Any) -> dict[str, Any]:
    """An input line for ``/v1/chat/completions``."""
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": content},
            ],
            "max_tokens": 64,
            **body,
        },
    }


def chat_response_body(content: str = "Hello!", created: int | None = CREATED, **extra: Any) -> dict[str, Any]:
    """A chat completion body as it appears inside an output line."""
    body: dict[str, Any] = {
        "id": "chatcmpl-AbC123",
        "object": "chat.completion",
        "created": created,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 21,
            "completion_tokens": 3,
            "total_tokens": 24,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        "system_fingerprint": "fp_0ba0d124f1",
        "service_tier": "default",
    }
    body.update(extra)
    return body


def output_line(custom_id: str = "req-1", body: dict[str, Any] | None = None) -> dict[str, Any]:
    """A successful output-file line."""
    return {
        "id": "batch_req_6740abc",
        "custom_id": custom_id,
        "response": {
            "status_code": 200,
            "request_id": "7b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e",
            "body": body if body is not None else chat_response_body(),
        },
        "error": None,
    }


def expired_line(custom_id: str = "req-2") -> dict[str, Any]:
    """An error-file line for a request that did not run before the window closed."""
    return {
        "id": "batch_req_6740def",
        "custom_id": custom_id,
        "response": None,
        "error": {
            "code": "batch_expired",
            "message": "This request could not be executed before the completion window expired.",
        },
    }


def http_error_line(custom_id: str = "req-3") -> dict[str, Any]:
    """An error-file line for a request OpenAI rejected with HTTP 400 (``code`` is ``null``, as OpenAI sends it)."""
    return {
        "id": "batch_req_6740ghi",
        "custom_id": custom_id,
        "response": {
            "status_code": 400,
            "request_id": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
            "body": {
                "error": {
                    "message": "Invalid 'max_tokens': integer below minimum value.",
                    "type": "invalid_request_error",
                    "param": "max_tokens",
                    "code": None,
                }
            },
        },
        "error": None,
    }
