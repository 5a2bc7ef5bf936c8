"""The state machine's failure branches: a failed or cancelled batch is logged before the execution fails.

Walked with the real definition (``tests/support/sfn_walker.py``) and the log function mocked
by resource, as in ``test_state_machine_definition.py``: the batch's state reaches
LogBatchResultsFunction as its payload, the execution still ends in ``BatchFailed`` or
``BatchCancelled`` with the batch's own cause, and a logging failure never hides that cause.
(The real function behind the task is in ``test_state_machine_contract.py``.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.functional.test_state_machine_definition import BATCH_ID, Flaky, batch, named_error, simulate
from tests.support.sfn_walker import PAYLOAD_LIMIT, StatesError

ERRORS = {"object": "list", "data": [{"code": "invalid_json_line", "message": "line 3 is not JSON", "line": 3}]}
LOGGED = {"batch_id": BATCH_ID, "spans_built": 1, "spans_exported": 1, "spans_failed": 0}
ENDS = {"failed": ("LogFailedBatch", "BatchFailed"), "cancelled": ("LogCancelledBatch", "BatchCancelled")}


class Recorder:
    """The log function: records its payloads, answers a summary."""

    def __init__(self) -> None:
        self.payloads: list[Any] = []

    def __call__(self, payload: Any) -> dict[str, Any]:
        self.payloads.append(payload)
        return LOGGED


def unsuccessful(status: str) -> dict[str, Any]:
    return batch(status, errors=ERRORS if status == "failed" else None)


@pytest.mark.parametrize("status", ["failed", "cancelled"])
def test_the_batch_is_logged_then_the_execution_fails_with_its_cause(status: str) -> None:
    log = Recorder()
    execution_input = {"batch_id": BATCH_ID, "trace_id": "f928e55f9973eedc2351a29c36377768"}
    run, _ = simulate(unsuccessful(status), log=log, execution_input=execution_input)
    task, end = ENDS[status]
    assert run.path()[-3:] == ["BatchStatus", task, end]
    assert (run.status, run.error) == ("FAILED", end)
    assert BATCH_ID in (run.cause or "")
    if status == "failed":
        assert "invalid_json_line" in (run.cause or "")
    [payload] = log.payloads
    assert payload["batch"] == {"status": status, "object": unsuccessful(status)}
    assert (payload["bucket"], payload["prefix"], payload["batch_id"]) == ("batchtrace-demo", "batches/", BATCH_ID)
    assert payload["trace_id"] == execution_input["trace_id"]
    assert "output_key" not in payload, "the function tells a status payload by its missing output_key"
    assert run.step(task).output["logged"] == {"summary": LOGGED}
    assert run.visits("FetchBatchFiles") == 0 and run.visits("LogBatchResults") == 0


@pytest.mark.parametrize("status", ["failed", "cancelled"])
@pytest.mark.parametrize("error", ["KeyError", "InputError", "InvalidTraceContextError"])
def test_a_logging_failure_never_hides_the_batchs_own_failure(status: str, error: str) -> None:
    log = Flaky([named_error(error)], Recorder())
    run, _ = simulate(unsuccessful(status), log=log)
    task, end = ENDS[status]
    assert (run.end_state, run.error) == (end, end)
    assert error not in (run.cause or "") and BATCH_ID in (run.cause or "")
    assert run.step(task).output["log_error"]["Error"] == error
    assert log.calls == 1, "only delivery and the Lambda service are retried"


def test_undelivered_spans_are_retried_then_the_batch_still_fails() -> None:
    log = Flaky([named_error("DeliveryError")] * 10, Recorder())
    run, _ = simulate(unsuccessful("failed"), log=log)
    assert run.end_state == "BatchFailed" and log.calls == 4
    assert run.step("LogFailedBatch").output["log_error"]["Error"] == "DeliveryError"


def test_lambda_service_errors_on_the_status_log_are_retried() -> None:
    throttled = StatesError("Lambda.TooManyRequestsException", "Rate exceeded")
    log = Flaky([throttled, throttled], Recorder())
    run, _ = simulate(unsuccessful("cancelled"), log=log)
    assert run.end_state == "BatchCancelled" and log.calls == 3
    assert "log_error" not in run.step("LogCancelledBatch").output


def test_a_large_failed_batch_object_stays_under_the_payload_limit() -> None:
    big = unsuccessful("failed")
    big["metadata"] = {f"key{i}": "v" * 512 for i in range(16)}
    big["errors"] = {"object": "list", "data": [{**ERRORS["data"][0], "line": n} for n in range(1, 300)]}
    run, _ = simulate(big, log=Recorder())
    assert run.end_state == "BatchFailed"
    for step in run.steps:
        for value in (step.input, step.output):
            assert len(json.dumps(value).encode()) < PAYLOAD_LIMIT
