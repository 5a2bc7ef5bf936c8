"""Shared fixtures: a real OTLP receiver per test, one moto server per session (clean per test), and on it
a bucket and the idempotency table.

The servers are reached only through the standard environment variables (``OTEL_EXPORTER_OTLP_*``,
``AWS_ENDPOINT_URL_S3`` and friends), set with ``monkeypatch`` so nothing leaks between tests.
The functional and fault tiers also scrub inherited settings (``tests/support/hermetic.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from tests.support.moto_s3 import BUCKET, MotoServer, create_idempotency_table
from tests.support.otlp_receiver import OtlpReceiver

#: The idempotency table's name in tests (``IDEMPOTENCY_TABLE``).
IDEMPOTENCY_TABLE = "batchtrace-idempotency"
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


@pytest.fixture
def s3(moto: MotoServer) -> Any:
    """An S3 client of the session's moto server, with the bucket :data:`~tests.support.moto_s3.BUCKET`."""
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def idempotency_table(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The idempotency table as the template declares it, named by ``IDEMPOTENCY_TABLE``; a boto3 Table."""
    dynamodb = boto3.resource("dynamodb")
    create_idempotency_table(dynamodb.meta.client, IDEMPOTENCY_TABLE)
    monkeypatch.setenv("IDEMPOTENCY_TABLE", IDEMPOTENCY_TABLE)
    return dynamodb.Table(IDEMPOTENCY_TABLE)
