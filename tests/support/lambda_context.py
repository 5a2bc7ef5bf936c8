"""A stand-in for the context object Lambda passes to a handler, and a function's module loaded by path.

The context carries what the handlers and Powertools read (names, memory, ARN, request id, log
stream) and a real countdown for ``get_remaining_time_in_millis``, which the log function turns
into its delivery deadline.
"""

from __future__ import annotations

import importlib.util
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


@dataclass
class FakeLambdaContext:
    remaining_ms: int = 20_000
    function_name: str = "LogBatchResultsFunction"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1769
    invoked_function_arn: str = ""
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "2026/11/24/[$LATEST]tests"
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.invoked_function_arn = (
            self.invoked_function_arn or f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        )
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(int(self.remaining_ms - (time.monotonic() - self._started) * 1000), 0)


def fetch_context() -> FakeLambdaContext:
    """The fetch function's context: its name and 512 MB, with all of Lambda's 15 minutes."""
    return FakeLambdaContext(remaining_ms=900_000, function_name="FetchBatchFilesFunction", memory_limit_in_mb=512)


def load_function(function: str, module_name: str, handler_module: str = "app") -> ModuleType:
    """A fresh copy of ``functions/<function>/<handler_module>.py`` as module ``module_name``: a cold start.

    The module reads its settings and makes its clients at import, from the environment as it is
    then; a copy under a name of its own (the log function's ``app`` is also on the test path)
    binds the current environment without disturbing the other copies.
    """
    path = FUNCTIONS / function / f"{handler_module}.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
