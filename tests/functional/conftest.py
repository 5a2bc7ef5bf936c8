"""Functional-tier fixtures: no test may ever talk to a real backend or read the machine's settings."""

from __future__ import annotations

import os

import pytest

#: Variables that could send spans to a real backend or reach real AWS from a test.
_SCRUBBED_PREFIXES = ("OTEL_", "RESPAN_", "AWS_", "BATCHTRACE_")
_SCRUBBED_NAMES = ("OTLP_HEADERS_SECRET_ARN", "RESPAN_API_KEY_SECRET_ARN", "IDEMPOTENCY_TABLE")
#: Harmless settings of the machine that tests may need (TLS trust for boto3).
_KEPT_NAMES = ("AWS_CA_BUNDLE",)


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove inherited settings that could reach a real backend or change defaults."""
    for name in list(os.environ):
        if (name.startswith(_SCRUBBED_PREFIXES) or name in _SCRUBBED_NAMES) and name not in _KEPT_NAMES:
            monkeypatch.delenv(name, raising=False)
