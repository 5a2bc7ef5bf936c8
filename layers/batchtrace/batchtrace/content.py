"""What of a request's content goes on its span: captured or not, and how long a text may be.

Read once per run (``BATCHTRACE_CAPTURE_CONTENT`` or OpenTelemetry's GenAI capture switch, and
``BATCHTRACE_MAX_CONTENT_LENGTH``). Adapters truncate each text value as they extract it, so
the JSON stays valid; writers leave message text out entirely when capture is off.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from batchtrace.extract.base import keep

DEFAULT_MAX_CONTENT_LENGTH = 16_384
_CAPTURE_OFF = frozenset({"false", "0", "no", "off", "no_content", "event_only"})


@dataclass(slots=True, frozen=True)
class ContentPolicy:
    """Whether message text is captured, and how long a single text value may be."""

    capture: bool = True
    max_length: int = DEFAULT_MAX_CONTENT_LENGTH
    #: False when the caller knows no value can be longer than ``max_length`` (a short line).
    truncate: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ContentPolicy:
        """``BATCHTRACE_CAPTURE_CONTENT`` (or OTel's GenAI capture switch) and ``BATCHTRACE_MAX_CONTENT_LENGTH``."""
        env = os.environ if env is None else env
        switch = (env.get("BATCHTRACE_CAPTURE_CONTENT") or "").strip().lower()
        if not switch:
            # OTel GenAI's switch: true/false, or a mode where NO_CONTENT and EVENT_ONLY keep
            # content off spans (batchtrace emits no events).
            switch = (env.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT") or "true").strip().lower()
        raw_limit = env.get("BATCHTRACE_MAX_CONTENT_LENGTH", "").strip()
        limit = int(raw_limit) if raw_limit.isdigit() and int(raw_limit) > 0 else DEFAULT_MAX_CONTENT_LENGTH
        return cls(capture=switch not in _CAPTURE_OFF, max_length=limit)

    def for_line(self, line_length: int) -> ContentPolicy:
        """This policy for values decoded from a raw line of ``line_length`` bytes.

        A JSON string never decodes to more characters than its line has bytes, so a line no
        longer than ``max_length`` needs no truncation, and skipping the walk is measurable.
        """
        if line_length <= self.max_length and self.truncate:
            return ContentPolicy(self.capture, self.max_length, truncate=False)
        return self

    def cutter(self) -> Callable[[str], str]:
        return self.cut if self.truncate else keep

    def cut(self, text: str) -> str:
        if len(text) <= self.max_length:
            return text
        return f"{text[: self.max_length]}…[truncated {len(text) - self.max_length} chars]"
