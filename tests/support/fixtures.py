"""The provider format fixtures (``tests/fixtures/formats``): where they are, their lines, and their spans."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # spans only as a type: reading the fixtures needs neither protobuf nor batchtrace
    from tests.support.otlp_receiver import ReceivedSpan

#: One folder per provider or host: its request, result and error files, batch objects and jobs.
FORMATS = Path(__file__).resolve().parents[1] / "fixtures" / "formats"
#: The OpenAI endpoints with a fixture pair in ``FORMATS / "openai"`` (``{endpoint}.requests.jsonl``, ...).
OPENAI_ENDPOINTS = (
    "chat",
    "responses",
    "completions",
    "embeddings",
    "moderations",
    "images_generations",
    "images_edits",
    "videos",
)
CUSTOM_ID = "batchtrace.custom_id"


def lines(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file, one a line (blank lines skipped)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def by_id(spans: Iterable[ReceivedSpan]) -> dict[str, ReceivedSpan]:
    """The completion spans (those with a ``batchtrace.custom_id``) by that id: one span per id."""
    completions = [span for span in spans if CUSTOM_ID in span.attributes]
    found = {str(span.attributes[CUSTOM_ID]): span for span in completions}
    assert len(found) == len(completions), "a custom_id has two spans"
    return found
