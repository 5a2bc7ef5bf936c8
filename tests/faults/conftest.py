"""Fixtures of the fault tier: a hermetic environment, a receiver the tests point at themselves, the handler.

moto, the ``s3`` bucket and the ``idempotency_table`` are the root conftest's.

Everything runs on 127.0.0.1. The handler module reads its settings at import, so
:func:`load_app` sets the environment first and then (re)imports ``app``.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest

from tests.support.hermetic import scrub_environment
from tests.support.otlp_receiver import OtlpReceiver


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No inherited setting may send spans anywhere real, reach AWS, or change a default."""
    scrub_environment(monkeypatch, ("POWERTOOLS_", "_X_AMZN"), ("LAMBDA_TASK_ROOT",))


def _let_batchtrace_logs_propagate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Powertools rewires the ``batchtrace`` logger (no propagation); caplog needs it to propagate.

    Called again after every reload of the handler, which rewires it again.
    """
    core = logging.getLogger("batchtrace")
    monkeypatch.setattr(core, "propagate", True)
    monkeypatch.setattr(core, "level", logging.NOTSET)


@pytest.fixture(autouse=True)
def _batchtrace_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    _let_batchtrace_logs_propagate(monkeypatch)


@pytest.fixture
def rx() -> Iterator[OtlpReceiver]:
    """A healthy OTLP/HTTP receiver on 127.0.0.1 (arm faults with ``set_faults``)."""
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture
def load_app(monkeypatch: pytest.MonkeyPatch) -> Callable[..., ModuleType]:
    """``load_app(endpoint, **env)``: the handler module, imported after the environment is set.

    Defaults: a 2 s OTLP timeout and a 15 s deadline margin, so with :class:`FakeLambdaContext`'s
    20 s the handler has 5 s to deliver before it must give up cleanly.
    """

    def load(endpoint: str, **env: str) -> ModuleType:
        settings = {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "2",
            "BATCHTRACE_DEADLINE_MARGIN_SECONDS": "15",
            "POWERTOOLS_SERVICE_NAME": "batchtrace-faults",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_NAMESPACE": "Batchtrace",
            **env,
        }
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        for module in ("settings", "event_locations"):
            if module in sys.modules:
                importlib.reload(sys.modules[module])
        app = importlib.reload(sys.modules["app"]) if "app" in sys.modules else importlib.import_module("app")
        _let_batchtrace_logs_propagate(monkeypatch)
        return app

    return load
