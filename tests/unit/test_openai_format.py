"""OpenAI Batch API line shapes: what counts as a request, a result, a failure and an expiry."""

from __future__ import annotations

from typing import Any

import pytest
from batchtrace.openai_format import BATCH_EXPIRED, BatchResult, parse_request, parse_result

from tests.unit.samples import chat_request, chat_response_body, expired_line, http_error_line, output_line


def parsed_result(obj: dict[str, Any]) -> BatchResult:
    result, reason = parse_result(obj)
    assert result is not None, reason
    assert reason == ""
    return result


# --- requests -------------------------------------------------------------------------------


def test_parse_request_reads_a_chat_input_line() -> None:
    """An input line gives its custom_id, endpoint and body."""
    request, reason = parse_request(chat_request("req-42"))
    assert reason == ""
    assert request is not None
    assert request.custom_id == "req-42"
    assert request.url == "/v1/chat/completions"
    assert request.body["model"] == "gpt-4o-mini"


@pytest.mark.parametrize("url", ["/v1/responses", "/v1/embeddings", "/v1/completions"])
def test_parse_request_keeps_other_endpoints(url: str) -> None:
    """Requests to other batch endpoints keep their url (it decides the span's operation)."""
    request, _ = parse_request({"custom_id": "a", "method": "POST", "url": url, "body": {"model": "m"}})
    assert request is not None
    assert request.url == url


def test_parse_request_without_url_defaults_to_chat() -> None:
    """A line missing ``url`` (or with ``null``) is still usable, as a chat completion."""
    for line in ({"custom_id": "a", "body": {}}, {"custom_id": "a", "url": None, "body": {}}):
        request, _ = parse_request(line)
        assert request is not None
        assert request.url == "/v1/chat/completions"


@pytest.mark.parametrize(
    "line",
    [
        {"method": "POST", "url": "/v1/chat/completions", "body": {}},
        {"custom_id": None, "body": {}},
        {"custom_id": 17, "body": {}},
        {"custom_id": ["a"], "body": {}},
        {"custom_id": "", "body": {}},
        {"custom_id": "a"},
        {"custom_id": "a", "body": None},
        {"custom_id": "a", "body": "not an object"},
        {"custom_id": "a", "body": [1, 2]},
    ],
)
def test_parse_request_reports_wrong_shapes_with_a_reason(line: dict[str, Any]) -> None:
    """A wrong-shaped input line is rejected with a one-line reason instead of raising."""
    request, reason = parse_request(line)
    assert request is None
    assert reason
    assert "\n" not in reason


# --- results --------------------------------------------------------------------------------


def test_parse_result_reads_a_successful_output_line() -> None:
    """A real output line gives ids, HTTP status and body; it is neither failed nor expired."""
    result = parsed_result(output_line("req-1"))
    assert result.custom_id == "req-1"
    assert result.line_id == "batch_req_6740abc"
    assert result.status_code == 200
    assert result.request_id == "7b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e"
    assert result.body is not None
    assert result.body["id"] == "chatcmpl-AbC123"
    assert result.error is None
    assert not result.failed
    assert not result.expired


def test_expired_error_line_is_failed_and_expired() -> None:
    """``response: null`` with ``error.code = batch_expired`` is an expired failure, with OpenAI's message."""
    result = parsed_result(expired_line("req-2"))
    assert result.status_code is None
    assert result.body is None
    assert result.failed
    assert result.expired
    error_type, message = result.error_type_and_message()
    assert error_type == BATCH_EXPIRED == "batch_expired"
    assert "completion window" in message


def test_http_400_error_line_is_failed_not_expired() -> None:
    """A 400 with ``body.error`` (``code: null``) fails with the error type and OpenAI's message."""
    result = parsed_result(http_error_line("req-3"))
    assert result.status_code == 400
    assert result.request_id == "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    assert result.failed
    assert not result.expired
    error_type, message = result.error_type_and_message()
    assert error_type == "invalid_request_error"
    assert message == "Invalid 'max_tokens': integer below minimum value."


def test_http_error_code_is_preferred_over_type() -> None:
    """When OpenAI gives a specific ``code`` it becomes ``error.type``."""
    line = http_error_line()
    line["response"]["status_code"] = 429
    line["response"]["body"]["error"].update(code="rate_limit_exceeded", type="requests")
    assert parsed_result(line).error_type_and_message()[0] == "rate_limit_exceeded"


def test_http_500_without_error_body_is_failed() -> None:
    """A status >= 400 fails even when the body carries no ``error`` object."""
    line = output_line()
    line["response"]["status_code"] = 500
    line["response"]["body"] = None
    result = parsed_result(line)
    assert result.failed
    error_type, message = result.error_type_and_message()
    assert "500" in error_type
    assert "500" in message


def test_error_body_with_null_everything_still_explains_itself() -> None:
    """``error: {message: null, type: null, param: null, code: null}`` still gives a type and message."""
    line = http_error_line()
    line["response"]["body"]["error"] = {"message": None, "type": None, "param": None, "code": None}
    error_type, message = parsed_result(line).error_type_and_message()
    assert error_type
    assert message


def test_expired_error_with_null_message_still_explains_itself() -> None:
    """A line-level error with ``message: null`` still gives a non-empty message."""
    line = expired_line()
    line["error"]["message"] = None
    result = parsed_result(line)
    assert result.expired
    assert result.error_type_and_message() == ("batch_expired", "batch_expired")


def test_result_with_neither_response_nor_error_is_failed() -> None:
    """A line with ``response: null`` and ``error: null`` got no answer: it counts as failed."""
    result = parsed_result({"id": "batch_req_x", "custom_id": "a", "response": None, "error": None})
    assert result.failed
    assert not result.expired
    error_type, message = result.error_type_and_message()
    assert error_type
    assert message


def test_nulls_in_optional_fields_are_tolerated() -> None:
    """``null`` id, request_id, status_code and body parse to ``None`` instead of failing the line."""
    line = {
        "id": None,
        "custom_id": "a",
        "response": {"status_code": None, "request_id": None, "body": None},
        "error": None,
    }
    result = parsed_result(line)
    assert result.line_id is None
    assert result.request_id is None
    assert result.status_code is None
    assert result.body is None


def test_wrong_typed_optional_fields_are_ignored_not_fatal() -> None:
    """Odd types in optional fields (status as a string, ``true``) are dropped, the line still counts."""
    line = output_line()
    line["id"] = 123
    line["response"]["status_code"] = "200"
    line["response"]["request_id"] = 5
    result = parsed_result(line)
    assert result.line_id is None
    assert result.status_code is None
    assert result.request_id is None
    line["response"]["status_code"] = True
    assert parsed_result(line).status_code is None


def test_error_that_is_not_an_object_still_fails_the_result() -> None:
    """A line-level ``error`` given as a plain string is kept as the failure's message."""
    result = parsed_result({"custom_id": "a", "response": None, "error": "something broke"})
    assert result.failed
    assert "something broke" in result.error_type_and_message()[1]


@pytest.mark.parametrize(
    "line",
    [
        {"id": "batch_req_1", "response": None, "error": None},
        {"custom_id": None, "response": None},
        {"custom_id": 7, "response": {"status_code": 200, "body": chat_response_body()}},
        {"custom_id": "", "response": None},
        {"custom_id": "a", "response": [200, {}]},
        {"custom_id": "a", "response": "ok"},
        {"custom_id": "a", "response": 200},
    ],
)
def test_parse_result_reports_wrong_shapes_with_a_reason(line: dict[str, Any]) -> None:
    """A result line with a non-string custom_id or a non-object response is wrong-shaped, with a reason."""
    result, reason = parse_result(line)
    assert result is None
    assert reason
    assert "\n" not in reason
