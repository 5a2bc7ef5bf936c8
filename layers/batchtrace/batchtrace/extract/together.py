"""Together AI batch: OpenAI-like lines without ``method``/``url``, ``eos`` finishes, flat errors.

Follows "Run a batch job" and "Manage batch jobs"
(https://docs.together.ai/docs/inference/batch/manage) and together-python's batch types.
Input line: ``{custom_id, body}`` (``method`` and ``url`` may be missing: the endpoint is the
job's, chat completions). Output line: ``{custom_id, response: {status_code, body}}`` with an
OpenAI chat body that adds ``prompt: []``, ``choices[].seed`` and ``usage.cached_tokens`` (read
as the cache-read part of ``prompt_tokens``); ``finish_reason`` may be ``eos`` (a ``stop``,
mapped in ``base.FINISH_REASONS``). Error-file line: ``{custom_id, error: {message, code}}``
where ``code`` is the HTTP status (a number) and there is no ``response``.

Not detectable (the lines carry nothing Together-specific up front): ``--provider together``.
"""

from __future__ import annotations

from typing import ClassVar

from batchtrace.extract.base import JsonObject, as_dict, as_int
from batchtrace.extract.openai import OpenAIAdapter
from batchtrace.record import Record


class TogetherAdapter(OpenAIAdapter):
    """OpenAI's adapter reading Together's flat error lines and top-level ``cached_tokens``."""

    name: ClassVar[str] = "together"
    provider: ClassVar[str] = "together_ai"
    detectable: ClassVar[bool] = False

    def response_of(self, result: JsonObject) -> tuple[JsonObject | None, int | None, str | None]:
        """OpenAI's, with the HTTP status of an error-file line taken from ``error.code``."""
        body, status, request_id = super().response_of(result)
        if status is None:
            status = as_int(as_dict(result.get("error")).get("code"))
        return body, status, request_id

    def response_fields(self, record: Record, response: JsonObject) -> None:
        super().response_fields(record, response)
        cached = as_int(as_dict(response.get("usage")).get("cached_tokens"))
        if cached is not None and record.usage.cache_read_tokens is None:
            record.usage.cache_read_tokens = cached


ADAPTER = TogetherAdapter()
