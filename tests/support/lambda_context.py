"""A stand-in for the context object Lambda passes to a handler.

Carries what the handlers and Powertools read (names, memory, ARN, request id, log stream)
and a real countdown for ``get_remaining_time_in_millis``, which the log function turns into
its delivery deadline.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field


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
