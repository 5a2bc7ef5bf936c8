"""Functional-tier fixtures: no test may ever talk to a real backend or read the machine's settings."""

from __future__ import annotations

import pytest

from tests.support.hermetic import scrub_environment


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove inherited settings that could reach a real backend or change defaults."""
    scrub_environment(monkeypatch)
