"""Keep a test from inheriting settings that could reach a real backend or change a default."""

from __future__ import annotations

import os

import pytest

#: Variables that could send spans to a real backend or reach real AWS, OpenAI or Anthropic from a test.
SCRUBBED_PREFIXES = ("OTEL_", "RESPAN_", "AWS_", "BATCHTRACE_", "OPENAI_", "ANTHROPIC_")
SCRUBBED_NAMES = ("OTLP_HEADERS_SECRET_ARN", "RESPAN_API_KEY_SECRET_ARN", "IDEMPOTENCY_TABLE")
#: Harmless settings of the machine that tests may need (TLS trust for boto3).
KEPT_NAMES = ("AWS_CA_BUNDLE",)


def scrub_environment(
    monkeypatch: pytest.MonkeyPatch, extra_prefixes: tuple[str, ...] = (), extra_names: tuple[str, ...] = ()
) -> None:
    """Remove (for this test) every inherited variable in the scrubbed families."""
    prefixes, names = SCRUBBED_PREFIXES + extra_prefixes, SCRUBBED_NAMES + extra_names
    for name in list(os.environ):
        if (name.startswith(prefixes) or name in names) and name not in KEPT_NAMES:
            monkeypatch.delenv(name, raising=False)
