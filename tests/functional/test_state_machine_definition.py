"""The batch lifecycle state machine: its definition file, its graph, and simulated runs.

``statemachine/batch_lifecycle.asl.json`` is loaded the way CloudFormation loads it (the
``${...}`` placeholders replaced with the template's ``DefinitionSubstitutions``, dummy ARNs
here). Then:

* it is linted as an inline ``AWS::StepFunctions::StateMachine`` by cfn-lint (``sam validate
  --lint`` does not read a ``DefinitionUri`` file);
* its graph is walked: every target exists, every state is reachable, every path ends;
* the walker (``tests/support/sfn_walker.py``) runs it with tasks mocked by resource, so each
  OpenAI batch status ends where it should and every error a task raises is retried or caught
  as it should be.

``tests/functional/test_state_machine_contract.py`` runs the same walker with the real
functions behind the tasks.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import batchtrace
import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from batchtrace.errors import OpenAIUnavailableError

from tests.support.batches import batch_object
from tests.support.sfn_walker import (
    DUMMY_SUBSTITUTIONS,
    FETCH_ARN,
    HTTP_INVOKE,
    LAMBDA_INVOKE,
    LOG_ARN,
    PAYLOAD_LIMIT,
    AslInterpreter,
    Execution,
    StatesError,
    canned_http,
    definition_text,
    lambda_task,
    load_definition,
    placeholders,
    state_machine_properties,
    template,
)

#: Standard workflows keep at most this many execution history events.
HISTORY_LIMIT = 25_000
BATCH_ID = "batch_68f2a1c9d0e84b7fa3c5e2d1"
NON_TERMINAL = ("validating", "in_progress", "finalizing", "cancelling")


# =========================================================================== fixtures


def batch(status: str, **fields: Any) -> dict[str, Any]:
    return batch_object(BATCH_ID, status, **fields)


COMPLETED = batch("completed", output_file_id="file-out", error_file_id="file-err", total=12, completed=9, failed=3)
SUMMARY = {"batch_id": BATCH_ID, "requests": 12, "spans_built": 14, "spans_exported": 14, "spans_failed": 0}


def fake_fetch(payload: Mapping[str, Any]) -> dict[str, Any]:
    """What FetchBatchFilesFunction returns for a payload (without copying anything)."""
    folder = f"{payload['prefix']}{payload['batch_id']}/"
    out = {
        "bucket": payload["bucket"],
        "batch_id": payload["batch_id"],
        "input_key": folder + "input.jsonl",
        "output_key": folder + "output.jsonl",
        "object_version": "v1",
    }
    if payload["batch"]["object"].get("error_file_id"):
        out["errors_key"] = folder + "errors.jsonl"
    out.update({k: payload[k] for k in ("trace_id", "span_id", "traceparent") if k in payload})
    return out


def fake_log(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {**SUMMARY, "batch_id": payload["batch_id"]}


def simulate(
    *responses: Any,
    execution_input: Mapping[str, Any] | None = None,
    fetch: Callable[[Any], Any] = fake_fetch,
    log: Callable[[Any], Any] = fake_log,
) -> tuple[Execution, list[str]]:
    http, calls = canned_http(*responses)
    tasks = {HTTP_INVOKE: http, LAMBDA_INVOKE: lambda_task({FETCH_ARN: fetch, LOG_ARN: log})}
    run = AslInterpreter(load_definition(), tasks).run(
        dict({"batch_id": BATCH_ID} if execution_input is None else execution_input)
    )
    return run, calls


class Flaky:
    """A task function that raises ``errors`` in turn, then returns ``result``; counts calls."""

    def __init__(self, errors: list[Exception], result: Callable[[Any], Any]) -> None:
        self.errors = list(errors)
        self.result = result
        self.calls = 0

    def __call__(self, payload: Any) -> Any:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result(payload)


def named_error(name: str, message: str = "boom") -> Exception:
    """An exception whose type name is ``name`` (what Lambda reports as errorType)."""
    return type(name, (Exception,), {})(message)


# =========================================================================== the definition file


def test_definition_file_is_wired_with_substitutions() -> None:
    props = state_machine_properties()
    assert "Definition" not in props, "one definition: the file"
    substitutions = props["DefinitionSubstitutions"]
    assert placeholders(definition_text()) == set(substitutions), "placeholders and substitutions differ"
    assert set(substitutions) == set(DUMMY_SUBSTITUTIONS)
    # The file is valid JSON before substitution too (placeholders only inside strings).
    json.loads(definition_text())


def test_definition_passes_cfn_lint_state_machine_schema() -> None:
    """cfn-lint's ASL schema (rule E3601), applied to the definition inlined in a template."""
    from cfnlint.api import ManualArgs, lint

    resource = {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {
            "RoleArn": "arn:aws:iam::123456789012:role/lifecycle",
            "StateMachineType": "STANDARD",
            "Definition": json.loads(definition_text()),
            "DefinitionSubstitutions": DUMMY_SUBSTITUTIONS,
        },
    }
    doc = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"Lifecycle": resource}}
    matches = lint(json.dumps(doc), config=ManualArgs(regions=["us-east-1"], include_checks=["I"]))
    assert not matches, "\n".join(str(m) for m in matches)

    broken = copy.deepcopy(doc)
    broken["Resources"]["Lifecycle"]["Properties"]["Definition"]["States"]["WaitForBatch"]["Bogus"] = 1
    assert lint(json.dumps(broken), config=ManualArgs(regions=["us-east-1"])), "the schema check is not active"


#: Fields the Amazon States Language (JSONPath) allows, per state type; Step Functions rejects others.
_COMMON = {"Type", "Comment", "InputPath", "OutputPath", "QueryLanguage"}
_ALLOWED = {
    "Pass": _COMMON | {"Next", "End", "Result", "ResultPath", "Parameters", "Assign"},
    "Task": _COMMON
    | {"Next", "End", "Resource", "Parameters", "ResultSelector", "ResultPath", "Retry", "Catch"}
    | {"TimeoutSeconds", "TimeoutSecondsPath", "HeartbeatSeconds", "HeartbeatSecondsPath", "Credentials", "Assign"},
    "Choice": _COMMON | {"Choices", "Default", "Assign"},
    "Wait": _COMMON | {"Next", "End", "Seconds", "SecondsPath", "Timestamp", "TimestampPath", "Assign"},
    "Succeed": _COMMON,
    "Fail": {"Type", "Comment", "Error", "ErrorPath", "Cause", "CausePath", "QueryLanguage"},
}
_RETRIER = {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds", "JitterStrategy"}
_CATCHER = {"ErrorEquals", "Next", "ResultPath", "Assign"}


def test_states_use_only_known_fields() -> None:
    definition = load_definition()
    assert set(definition) <= {"Comment", "StartAt", "States", "TimeoutSeconds", "Version", "QueryLanguage"}
    assert definition.get("QueryLanguage", "JSONPath") == "JSONPath"
    for name, state in definition["States"].items():
        assert len(name) <= 80, name
        unknown = set(state) - _ALLOWED[state["Type"]]
        assert not unknown, f"{name}: fields {sorted(unknown)} are not allowed in a {state['Type']} state"
        for retrier in state.get("Retry", []):
            assert set(retrier) <= _RETRIER, f"{name}: retrier fields {sorted(set(retrier) - _RETRIER)}"
            assert retrier.get("JitterStrategy", "NONE") in ("FULL", "NONE")
        for catcher in state.get("Catch", []):
            assert set(catcher) <= _CATCHER, f"{name}: catcher fields {sorted(set(catcher) - _CATCHER)}"
        if state["Type"] == "Fail":
            assert ("Error" in state) != ("ErrorPath" in state), name
            assert ("Cause" in state) != ("CausePath" in state), f"{name} needs a cause"
        if state["Type"] in ("Pass", "Task", "Wait"):
            assert ("Next" in state) != bool(state.get("End")), f"{name}: exactly one of Next and End"


# =========================================================================== the graph


def _targets(state: Mapping[str, Any]) -> Iterator[str]:
    if "Next" in state:
        yield state["Next"]
    if "Default" in state:
        yield state["Default"]
    for rule in state.get("Choices", []):
        yield rule["Next"]
    for catcher in state.get("Catch", []):
        yield catcher["Next"]


def test_every_transition_names_an_existing_state() -> None:
    states = load_definition()["States"]
    assert load_definition()["StartAt"] in states
    for name, state in states.items():
        for target in _targets(state):
            assert target in states, f"{name} -> {target}: no such state"


def test_every_state_is_reachable() -> None:
    definition = load_definition()
    states = definition["States"]
    seen, todo = set(), [definition["StartAt"]]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_targets(states[name]))
    assert seen == set(states), f"unreachable: {sorted(set(states) - seen)}"


def test_every_path_can_end() -> None:
    """From every state an end (Succeed, Fail, End) is reachable: no loop without an exit."""
    states = load_definition()["States"]
    terminal = {n for n, s in states.items() if s["Type"] in ("Succeed", "Fail") or s.get("End")}
    assert terminal
    can_end = set(terminal)
    changed = True
    while changed:
        changed = False
        for name, state in states.items():
            if name not in can_end and any(t in can_end for t in _targets(state)):
                can_end.add(name)
                changed = True
    assert can_end == set(states), f"states that can never end: {sorted(set(states) - can_end)}"
    for name, state in states.items():
        if state["Type"] in ("Succeed", "Fail"):
            assert not list(_targets(state)), f"{name} is terminal but has a transition"
        else:
            assert list(_targets(state)) or state.get("End"), f"{name} neither transitions nor ends"


def test_batch_status_choice_covers_every_openai_status() -> None:
    states = load_definition()["States"]
    choice = states["BatchStatus"]
    routes: dict[str, str] = {}
    for rule in choice["Choices"]:
        leaves = rule.get("Or", [rule])
        for leaf in leaves:
            assert leaf["Variable"] == "$.batch.status"
            routes[leaf["StringEquals"]] = rule["Next"]
    assert routes["completed"] == routes["expired"] == "FetchBatchFiles"
    for status, error in (("failed", "BatchFailed"), ("cancelled", "BatchCancelled")):
        # The batch's span is logged first; whatever becomes of that, the execution fails clearly.
        log = states[routes[status]]
        assert log["Type"] == "Task" and log["Parameters"]["FunctionName"] == LOG_ARN, status
        assert {log["Next"], *(catch["Next"] for catch in log["Catch"])} == {error}, status
        assert states[error]["Type"] == "Fail" and states[error]["Error"] == error
    for status in NON_TERMINAL:
        assert states[routes[status]]["Type"] == "Wait", status
        assert states[routes[status]]["Next"] == "GetBatch"
    assert states[choice["Default"]]["Type"] == "Fail"


def test_lambda_tasks_have_timeouts_beyond_the_functions() -> None:
    states = load_definition()["States"]
    functions = template()["Resources"]
    for task, function in (
        ("FetchBatchFiles", "FetchBatchFilesFunction"),
        ("LogBatchResults", "LogBatchResultsFunction"),
    ):
        assert states[task]["TimeoutSeconds"] > functions[function]["Properties"]["Timeout"]


# =========================================================================== simulated runs


def test_completed_batch_is_fetched_logged_and_summarised() -> None:
    run, calls = simulate(COMPLETED)
    assert run.status == "SUCCEEDED", (run.error, run.cause)
    assert run.end_state == "BatchCompleted"
    assert run.path() == [
        "ApplyDefaults",
        "ResolveInput",
        "CheckInput",
        "GetBatch",
        "BatchStatus",
        "FetchBatchFiles",
        "LogBatchResults",
        "BatchLogged",
        "ExpiredRequests",
        "BatchCompleted",
    ]
    assert calls == [f"https://api.openai.com/v1/batches/{BATCH_ID}"]
    fetch_payload = run.step("FetchBatchFiles").input
    assert fetch_payload["bucket"] == "batchtrace-demo" and fetch_payload["prefix"] == "batches/"
    assert fetch_payload["batch"] == {"status": "completed", "object": COMPLETED}
    folder = f"batches/{BATCH_ID}/"
    assert run.output == {
        "batch_id": BATCH_ID,
        "status": "completed",
        "files": {
            "bucket": "batchtrace-demo",
            "batch_id": BATCH_ID,
            "input_key": folder + "input.jsonl",
            "output_key": folder + "output.jsonl",
            "errors_key": folder + "errors.jsonl",
            "object_version": "v1",
        },
        "summary": SUMMARY,
    }


def test_expired_batch_is_logged_and_visible() -> None:
    expired = batch("expired", output_file_id="file-out", error_file_id="file-err", total=12, completed=5, failed=7)
    run, _ = simulate(expired)
    assert run.status == "SUCCEEDED"
    assert run.end_state == "CompletedWithExpiredRequests"
    assert run.output["status"] == "expired"
    assert run.visits("LogBatchResults") == 1


def test_expired_batch_without_output_is_still_logged() -> None:
    run, _ = simulate(batch("expired", output_file_id=None, error_file_id="file-err"))
    assert run.end_state == "CompletedWithExpiredRequests"
    assert "errors_key" in run.output["files"]


@pytest.mark.parametrize(
    ("status", "end", "error"),
    [("failed", "BatchFailed", "BatchFailed"), ("cancelled", "BatchCancelled", "BatchCancelled")],
)
def test_failed_and_cancelled_batches_end_in_a_clear_failure(status: str, end: str, error: str) -> None:
    errors = {"object": "list", "data": [{"code": "invalid_json_line", "message": "line 3 is not JSON", "line": 3}]}
    run, _ = simulate(batch(status, errors=errors if status == "failed" else None))
    assert run.status == "FAILED"
    assert run.end_state == end
    assert run.error == error
    assert BATCH_ID in (run.cause or "")
    if status == "failed":
        assert "invalid_json_line" in (run.cause or ""), "the batch's errors belong in the cause"
    assert run.visits("FetchBatchFiles") == 0 and run.visits("LogBatchResults") == 0


def test_in_progress_batch_is_polled_until_completed() -> None:
    run, calls = simulate(
        batch("validating"), batch("in_progress"), batch("in_progress"), batch("finalizing"), COMPLETED
    )
    assert run.status == "SUCCEEDED" and run.end_state == "BatchCompleted"
    assert len(calls) == 5
    assert run.visits("WaitForBatch") == 4
    assert run.waited_s == 4 * 300


def test_cancelling_batch_waits_for_cancelled() -> None:
    run, _ = simulate(batch("cancelling"), batch("cancelled"))
    assert run.end_state == "BatchCancelled"
    assert run.visits("WaitForBatch") == 1


def test_unknown_status_fails_instead_of_polling_forever() -> None:
    run, _ = simulate(batch("paused_by_openai"))
    assert run.status == "FAILED" and run.end_state == "UnexpectedBatchStatus"
    assert "paused_by_openai" in (run.cause or "")


@pytest.mark.parametrize("execution_input", [{}, {"batch_id": ""}, {"batch_id": 42}, {"batch_id": "file-abc"}])
def test_execution_input_without_a_batch_id_is_rejected(execution_input: dict[str, Any]) -> None:
    run, calls = simulate(COMPLETED, execution_input=execution_input)
    assert run.status == "FAILED" and run.end_state == "InvalidExecutionInput"
    assert calls == []


def test_execution_input_overrides_defaults_and_carries_trace_context() -> None:
    execution_input = {
        "batch_id": BATCH_ID,
        "bucket": "other-bucket",
        "prefix": "batches/team-a/",
        "poll_interval_seconds": 600,
        "trace_id": "f928e55f9973eedc2351a29c36377768",
        "span_id": "fedc642ff8c46be9",
    }
    run, _ = simulate(batch("in_progress"), COMPLETED, execution_input=execution_input)
    assert run.status == "SUCCEEDED"
    assert run.waited_s == 600
    fetch_payload = run.step("FetchBatchFiles").input
    assert {k: fetch_payload[k] for k in execution_input} == execution_input
    log_payload = run.step("LogBatchResults").input["fetched"]["payload"]
    assert log_payload["trace_id"] == execution_input["trace_id"]
    assert log_payload["span_id"] == execution_input["span_id"]
    assert log_payload["output_key"] == f"batches/team-a/{BATCH_ID}/output.jsonl"


def test_transient_poll_errors_are_retried() -> None:
    run, calls = simulate(503, 429, COMPLETED)
    assert run.status == "SUCCEEDED"
    assert run.step("GetBatch").attempts == 3
    assert len(calls) == 3


@pytest.mark.parametrize("failure", [429, 500, 502, 503, 504, "States.Http.Socket"])
def test_each_transient_poll_error_is_retried(failure: int | str) -> None:
    run, calls = simulate(failure, COMPLETED)
    assert run.status == "SUCCEEDED", (run.end_state, run.error)
    assert len(calls) == 2


@pytest.mark.parametrize("status", [401, 404])
def test_unknown_batch_or_bad_key_fails_without_retrying(status: int) -> None:
    run, calls = simulate(status)
    assert run.status == "FAILED" and run.end_state == "BatchStatusUnavailable"
    assert run.error == "BatchStatusUnavailable"
    assert str(status) in (run.cause or "")
    assert len(calls) == 1


def test_poll_retries_give_up_eventually() -> None:
    run, calls = simulate(503)
    assert run.end_state == "BatchStatusUnavailable"
    max_attempts = load_definition()["States"]["GetBatch"]["Retry"][0]["MaxAttempts"]
    assert len(calls) == max_attempts + 1


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _fetch_errors() -> dict[str, type[Exception]]:
    """The fetch function's typed errors (what Lambda reports as errorType), by name: the core's
    errors that copying a batch's files raises (``batchtrace.sources.openai_files``), with their subclasses."""
    from batchtrace.sources import openai_files

    base = batchtrace.BatchtraceError
    roots = {cls for cls in vars(openai_files).values() if isinstance(cls, type) and issubclass(cls, base)} - {base}
    return {cls.__name__: cls for root in roots for cls in (root, *_subclasses(root))}


@pytest.fixture(scope="module")
def fetch_errors() -> dict[str, type[Exception]]:
    return _fetch_errors()


def test_only_the_transient_download_error_is_retried(fetch_errors: dict[str, type[Exception]]) -> None:
    """A rename of the transient error in the code, or of its name in the definition, fails here."""
    assert "OpenAIFileError" in fetch_errors
    assert {"OpenAIFileNotFoundError", "OpenAIAuthError", "InvalidBatchPayloadError", "FetchConfigurationError"} <= set(
        fetch_errors
    )
    for name, cls in fetch_errors.items():
        fetch = Flaky([named_error(name)], fake_fetch)
        run, _ = simulate(COMPLETED, fetch=fetch)
        if name == "OpenAIFileError":
            assert run.status == "SUCCEEDED" and fetch.calls == 2, name
            # Retried: the transient kind, which the CLI too reports as "run it again" (exit 1).
            assert issubclass(cls, OpenAIUnavailableError) and not issubclass(cls, batchtrace.InputError)
        else:
            assert run.end_state == "BatchFilesNotCopied" and fetch.calls == 1, name
            assert name in (run.cause or ""), "the function's error is in the cause"


def test_missing_openai_file_fails_the_copy() -> None:
    fetch = Flaky(
        [named_error("OpenAIFileNotFoundError", "OpenAI output file file-out not found (HTTP 404)")], fake_fetch
    )
    run, _ = simulate(COMPLETED, fetch=fetch)
    assert run.status == "FAILED" and run.end_state == "BatchFilesNotCopied"
    assert "file-out" in (run.cause or "") and "OpenAIFileNotFoundError" in (run.cause or "")
    assert fetch.calls == 1
    assert run.visits("LogBatchResults") == 0


def test_transient_download_errors_are_retried() -> None:
    fetch = Flaky([named_error("OpenAIFileError"), named_error("OpenAIFileError")], fake_fetch)
    run, _ = simulate(COMPLETED, fetch=fetch)
    assert run.status == "SUCCEEDED"
    assert fetch.calls == 3

    always = Flaky([named_error("OpenAIFileError")] * 10, fake_fetch)
    run, _ = simulate(COMPLETED, fetch=always)
    assert run.end_state == "BatchFilesNotCopied"
    assert always.calls == 4


def test_delivery_errors_are_retried_then_reported() -> None:
    flaky = Flaky([named_error("DeliveryError"), named_error("DeliveryError")], fake_log)
    run, _ = simulate(COMPLETED, log=flaky)
    assert run.status == "SUCCEEDED" and flaky.calls == 3

    failing = Flaky([named_error("DeliveryError", "batch x: 3 of 14 spans not delivered")] * 10, fake_log)
    run, _ = simulate(COMPLETED, log=failing)
    assert run.status == "FAILED" and run.end_state == "TracesNotDelivered"
    assert run.error == "TracesNotDelivered"
    assert "3 of 14 spans not delivered" in (run.cause or "")
    retrier = next(
        r for r in load_definition()["States"]["LogBatchResults"]["Retry"] if "DeliveryError" in r["ErrorEquals"]
    )
    assert failing.calls == retrier["MaxAttempts"] + 1


def test_every_typed_error_of_the_log_function_ends_in_traces_not_delivered() -> None:
    """Each error batchtrace raises is caught by name (a rename in the code cannot fall through to States.ALL).

    All but the fetch function's own (copying from OpenAI), which the log function never raises, and
    those of reading a Bedrock job (an EventBridge event's path, never this state machine's), and
    the webhook receiver's refusal (answered to OpenAI as a 401/400, never raised into a state
    machine); ``ConfigurationError`` is both's (a bad ``BATCHTRACE_*_NAME``).
    """
    from batchtrace.errors import BedrockJobError, BedrockUnavailableError, WebhookRejected

    elsewhere = {*_fetch_errors(), BedrockJobError.__name__, BedrockUnavailableError.__name__, WebhookRejected.__name__}
    raised = sorted({cls.__name__ for cls in _subclasses(batchtrace.BatchtraceError)} - elsewhere)
    assert {"DeliveryError", "MissingFileError", "InvalidTraceContextError", "InputError"} <= set(raised)
    assert "ConfigurationError" in raised
    for name in raised:
        run, _ = simulate(COMPLETED, log=Flaky([named_error(name)] * 10, fake_log))
        assert run.end_state == "TracesNotDelivered", name
        assert name in (run.cause or ""), name


@pytest.mark.parametrize(
    "error", [batchtrace.MissingFileError, batchtrace.InvalidTraceContextError, batchtrace.InputError]
)
def test_unusable_batches_are_not_retried(error: type[Exception]) -> None:
    error_name = error.__name__
    log = Flaky([named_error(error_name)], fake_log)
    run, _ = simulate(COMPLETED, log=log)
    assert run.end_state == "TracesNotDelivered"
    assert error_name in (run.cause or "")
    assert log.calls == 1


def test_concurrent_s3_triggered_run_is_waited_for() -> None:
    log = Flaky([named_error(IdempotencyAlreadyInProgressError.__name__)] * 2, fake_log)
    run, _ = simulate(COMPLETED, log=log)
    assert run.status == "SUCCEEDED"
    assert log.calls == 3


def test_unexpected_function_errors_have_their_own_failure() -> None:
    run, _ = simulate(COMPLETED, log=Flaky([named_error("KeyError")], fake_log))
    assert run.end_state == "LogBatchResultsFailed"


@pytest.mark.parametrize("task", ["fetch", "log"])
def test_lambda_service_errors_are_retried(task: str) -> None:
    """Throttling or a service hiccup on the invocation is retried, for both functions."""
    error = StatesError("Lambda.TooManyRequestsException", "Rate exceeded")
    flaky = Flaky([error, error], fake_fetch if task == "fetch" else fake_log)
    run, _ = simulate(COMPLETED, **{task: flaky})
    assert run.status == "SUCCEEDED" and flaky.calls == 3


def test_polling_hits_the_execution_timeout_before_the_history_limit() -> None:
    """At the smallest allowed poll interval, a batch that never finishes times the execution out
    before its history reaches Standard workflows' 25,000-event limit."""
    minimum = template()["Parameters"]["PollIntervalSeconds"]["MinValue"]
    definition = load_definition({"PollIntervalSeconds": str(minimum)})
    http, calls = canned_http(batch("in_progress"))
    tasks = {HTTP_INVOKE: http, LAMBDA_INVOKE: lambda_task({FETCH_ARN: fake_fetch, LOG_ARN: fake_log})}
    run = AslInterpreter(definition, tasks, max_steps=100_000).run({"batch_id": BATCH_ID})
    assert run.status == "TIMED_OUT"
    assert run.waited_s > 24 * 3600 * 2, "OpenAI's 24 h window (and the expiry after it) must fit"
    assert run.history_events < HISTORY_LIMIT * 0.85, run.history_events
    assert len(calls) == run.visits("GetBatch")


def test_every_state_stays_under_the_payload_limit_for_a_large_batch_object() -> None:
    """Batch objects carry metadata and errors; the states pass only what they need onward."""
    big = batch("completed", output_file_id="file-out", error_file_id="file-err")
    big["metadata"] = {f"key{i}": "v" * 512 for i in range(16)}  # OpenAI's metadata maximum
    run, _ = simulate(big)
    assert run.status == "SUCCEEDED"
    for step in run.steps:
        for value in (step.input, step.output):
            assert len(json.dumps(value).encode()) < PAYLOAD_LIMIT
