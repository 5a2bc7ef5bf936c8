"""Shared fixtures: a real OTLP receiver per test, one moto S3 server per session (clean per test).

Both are reached only through the standard environment variables (``OTEL_EXPORTER_OTLP_*``,
``AWS_ENDPOINT_URL_S3`` and friends), set with ``monkeypatch`` so nothing leaks between tests.
The functional tier also scrubs inherited settings (``tests/functional/conftest.py``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.moto_s3 import MotoServer
from tests.support.otlp_receiver import OtlpReceiver

#: Short export timeout for tests (seconds): a loopback receiver answers in milliseconds.
TEST_OTLP_TIMEOUT_S = "5"


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    """A running OTLP/HTTP receiver; ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` points at it."""
    with OtlpReceiver() as rx:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", rx.endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", TEST_OTLP_TIMEOUT_S)
        yield rx


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server for the session (starting one takes a moment)."""
    with MotoServer() as server:
        yield server


@pytest.fixture
def moto(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """The session's moto server, wiped clean, with the AWS variables pointing at it."""
    moto_server.reset()
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    return moto_server
