"""Groq batch: OpenAI's lines, with Groq's timings in ``usage`` and its request id in ``x_groq``.

Follows "Groq Batch API" (https://console.groq.com/docs/batch) and the example output line of
groq/groq-api-cookbook ``tutorials/batch-processing``. Input and output lines are OpenAI's
(``{custom_id, method, url, body}`` / ``{id: "batch_req_out_…", custom_id, response:
{status_code, request_id, body}, error}``). A chat body adds ``x_groq: {id}`` (equal to
``response.request_id``) and ``usage.{queue_time, prompt_time, completion_time, total_time}``
in seconds (``total_time`` = prompt + completion, without the queue). Those go on the span as
``groq.usage.<name>`` (floats) and ``groq.x_groq.id``: the output has no start or end time, so
the durations are the only timing there is.

Not detectable from the input (it is OpenAI's): chosen with ``--provider groq``.
"""

from __future__ import annotations

from typing import ClassVar

from batchtrace.extract.base import JsonObject, as_dict, as_number, as_str
from batchtrace.extract.openai import OpenAIAdapter
from batchtrace.record import Record

#: Groq's ``usage`` durations (seconds), copied as ``groq.usage.<name>``.
TIMINGS = ("queue_time", "prompt_time", "completion_time", "total_time")


class GroqAdapter(OpenAIAdapter):
    """OpenAI's adapter plus Groq's usage timings and ``x_groq`` id."""

    name: ClassVar[str] = "groq"
    provider: ClassVar[str] = "groq"
    detectable: ClassVar[bool] = False

    def response_fields(self, record: Record, response: JsonObject) -> None:
        super().response_fields(record, response)
        usage = as_dict(response.get("usage"))
        for name in TIMINGS:
            seconds = as_number(usage.get(name))
            if seconds is not None:
                record.extra[f"groq.usage.{name}"] = float(seconds)
        groq_id = as_str(as_dict(response.get("x_groq")).get("id"))
        if groq_id:
            record.extra["groq.x_groq.id"] = groq_id


ADAPTER = GroqAdapter()
