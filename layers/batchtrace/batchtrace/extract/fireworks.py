"""Fireworks batch inference: flat result rows, no ``response`` wrapper, the model on the job.

Follows "Batch API" (https://docs.fireworks.ai/guides/batch-inference) and "Create Batch
Inference Job" (https://docs.fireworks.ai/api-reference/create-batch-inference-job). Input line:
``{custom_id, body}`` with no ``url`` and no ``body.model`` (the job's model: pass ``--model``).
Result row: the chat completion itself with ``custom_id`` beside its fields (``{custom_id, id,
object, created, model, choices, usage}``), so its ``id`` is the response's, not a line id, and
there is no HTTP status. Error row: ``{custom_id, error: {code, message}}`` where ``code`` is the
HTTP status. A row wrapped in OpenAI's ``response`` (one public script reads it so) is read as
OpenAI's.

Not detectable (the rows are plain chat completions): ``--provider fireworks``.
"""

from __future__ import annotations

from typing import ClassVar

from batchtrace.extract.base import ExtractContext, JsonObject, as_dict, as_int
from batchtrace.extract.openai import OpenAIAdapter
from batchtrace.record import Record


def _wrapped(line: JsonObject) -> bool:
    return "response" in line


class FireworksAdapter(OpenAIAdapter):
    """OpenAI's adapter for rows that are the response body itself (or an error)."""

    name: ClassVar[str] = "fireworks"
    provider: ClassVar[str] = "fireworks_ai"
    detectable: ClassVar[bool] = False

    def result_id(self, line: JsonObject, line_no: int) -> str | None:
        """A flat row needs ``choices`` (a completion) or ``error``; wrapped rows are OpenAI's."""
        if _wrapped(line):
            return super().result_id(line, line_no)
        custom_id = line.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id or "result" in line or "params" in line:
            return None
        completed = isinstance(line.get("choices"), list)
        return custom_id if completed or line.get("error") is not None else None

    def response_of(self, result: JsonObject) -> tuple[JsonObject | None, int | None, str | None]:
        """The row is the body; an error row has none, and its ``error.code`` is the HTTP status."""
        if _wrapped(result):
            return super().response_of(result)
        if result.get("error") is not None:
            return None, as_int(as_dict(result.get("error")).get("code")), None
        return result, None, None

    def extract(
        self, custom_id: str, request: JsonObject | None, result: JsonObject | None, ctx: ExtractContext
    ) -> Record:
        record = super().extract(custom_id, request, result, ctx)
        if result is not None and not _wrapped(result):
            record.line_id = None  # a flat row's ``id`` is the response id (already response_id)
        return record


ADAPTER = FireworksAdapter()
