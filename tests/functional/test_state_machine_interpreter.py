"""A small interpreter of the Amazon States Language (JSONPath flavour), for simulated runs.

Supports what ``statemachine/batch_lifecycle.asl.json`` uses, and fails loudly on anything
else: Pass, Task, Choice, Wait, Succeed and Fail states; InputPath, Parameters, ResultSelector,
ResultPath and OutputPath; Retry (MaxAttempts, IntervalSeconds, BackoffRate, MaxDelaySeconds)
and Catch; Choice rules with And/Or/Not, string, numeric, boolean and type tests; the
intrinsic functions States.Format, States.StringToJson, States.JsonToString, States.JsonMerge
and States.Array; Fail states' ErrorPath/CausePath. Tasks are mocked by ``Resource``. Nothing
sleeps: waits and retry delays advance a simulated clock, which the top-level
``TimeoutSeconds`` applies to, and the run counts approximate history events. Every state's
input and output, every task's parameters and result, must fit Step Functions' 256 KB.

The tests at the bottom check the interpreter itself; the state machine's tests are in
``test_state_machine_definition.py`` and ``test_state_machine_contract.py``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

#: Step Functions' limit on a state's input or output (and on a task's result).
PAYLOAD_LIMIT = 256 * 1024
HTTP_INVOKE = "arn:aws:states:::http:invoke"
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"


class StatesError(Exception):
    """An error raised inside an execution (a task failure, States.Runtime, ...)."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


_MISSING = object()


def _path_tokens(path: str) -> list[str | int]:
    if path == "$":
        return []
    if not path.startswith("$"):
        raise StatesError("States.Runtime", f"not a JSONPath: {path!r}")
    tokens: list[str | int] = []
    for match in re.finditer(r"\.([A-Za-z0-9_@-]+)|\[(\d+)\]|\['([^']+)'\]", path[1:]):
        name, index, quoted = match.groups()
        tokens.append(int(index) if index is not None else (name or quoted))
    rebuilt = "".join(f".{t}" if isinstance(t, str) else f"[{t}]" for t in tokens)
    if rebuilt.replace("['", ".").replace("']", "") != path[1:].replace("['", ".").replace("']", ""):
        raise StatesError("States.Runtime", f"unsupported JSONPath {path!r}")
    return tokens


def get_path(data: Any, path: str, context: Mapping[str, Any] | None = None) -> Any:
    """The value at a JSONPath (``$.a.b[0]``; ``$$.`` reads the context object)."""
    if path.startswith("$$"):
        data, path = context or {}, path[1:]
    value = data
    for token in _path_tokens(path):
        if isinstance(token, int):
            if not isinstance(value, list) or token >= len(value):
                return _MISSING
            value = value[token]
        else:
            if not isinstance(value, dict) or token not in value:
                return _MISSING
            value = value[token]
    return value


def require_path(data: Any, path: str, context: Mapping[str, Any] | None = None) -> Any:
    value = get_path(data, path, context)
    if value is _MISSING:
        raise StatesError("States.Runtime", f"the JSONPath {path!r} could not be found in the input")
    return value


def set_path(data: Any, path: str | None, value: Any) -> Any:
    """ResultPath: ``None`` discards the value, ``$`` replaces the input, ``$.a.b`` sets a field."""
    if path is None:
        return data
    tokens = _path_tokens(path)
    if not tokens:
        return value
    out = copy.deepcopy(data) if isinstance(data, dict) else {}
    node = out
    for token in tokens[:-1]:
        if not isinstance(token, str):
            raise StatesError("States.ResultPathMatchFailure", path)
        child = node.get(token)
        if not isinstance(child, dict):
            child = node[token] = {}
        node = child
    last = tokens[-1]
    if not isinstance(last, str):
        raise StatesError("States.ResultPathMatchFailure", path)
    node[last] = value
    return out


# --------------------------------------------------------------------------- intrinsics


@dataclass
class _Literal:
    value: Any
    raw: str = ""  # a string literal as written, escapes kept (for States.Format)


@dataclass
class _Path:
    path: str


@dataclass
class _Call:
    name: str
    args: list[Any]


class _IntrinsicParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def parse(self) -> _Call:
        call = self._call()
        self._space()
        if self.pos != len(self.text):
            raise StatesError("States.Runtime", f"trailing text in {self.text!r}")
        return call

    def _space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def _call(self) -> _Call:
        match = re.compile(r"States\.[A-Za-z]+").match(self.text, self.pos)
        if not match or self.text[match.end() : match.end() + 1] != "(":
            raise StatesError("States.Runtime", f"not an intrinsic function at {self.text[self.pos :]!r}")
        self.pos = match.end() + 1
        args: list[Any] = []
        self._space()
        if self.text[self.pos] == ")":
            self.pos += 1
            return _Call(match.group(), args)
        while True:
            self._space()
            args.append(self._arg())
            self._space()
            char = self.text[self.pos]
            self.pos += 1
            if char == ")":
                return _Call(match.group(), args)
            if char != ",":
                raise StatesError("States.Runtime", f"expected ',' or ')' in {self.text!r}")

    def _arg(self) -> Any:
        char = self.text[self.pos]
        if char == "'":
            return self._string()
        if char == "$":
            match = re.compile(r"\$\$?[^,) ]*").match(self.text, self.pos)
            assert match is not None
            self.pos = match.end()
            return _Path(match.group())
        if self.text.startswith("States.", self.pos):
            return self._call()
        match = re.compile(r"-?\d+(\.\d+)?|true|false|null").match(self.text, self.pos)
        if not match:
            raise StatesError("States.Runtime", f"bad argument at {self.text[self.pos :]!r}")
        self.pos = match.end()
        return _Literal(json.loads(match.group()))

    def _string(self) -> _Literal:
        self.pos += 1
        raw, value = [], []
        while True:
            char = self.text[self.pos]
            if char == "\\":
                nxt = self.text[self.pos + 1]
                if nxt not in "'{}\\":
                    raise StatesError("States.Runtime", f"bad escape \\{nxt} in {self.text!r}")
                raw.append(char + nxt)
                value.append(nxt)
                self.pos += 2
                continue
            self.pos += 1
            if char == "'":
                return _Literal("".join(value), "".join(raw))
            raw.append(char)
            value.append(char)


def _format_arg(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def evaluate_intrinsic(text: str, data: Any, context: Mapping[str, Any] | None = None) -> Any:
    """Evaluate an intrinsic function call such as ``States.Format('x {}', $.a)``."""

    def value(node: Any) -> Any:
        if isinstance(node, _Literal):
            return node.value
        if isinstance(node, _Path):
            return require_path(data, node.path, context)
        return call(node)

    def call(node: _Call) -> Any:
        args = node.args
        if node.name == "States.Format":
            template, rest = args[0], [value(a) for a in args[1:]]
            if not isinstance(template, _Literal) or not isinstance(template.value, str):
                raise StatesError("States.IntrinsicFailure", "States.Format needs a string literal template")
            out, i, used = [], 0, 0
            raw = template.raw
            while i < len(raw):
                if raw[i] == "\\":
                    out.append(raw[i + 1])
                    i += 2
                elif raw.startswith("{}", i):
                    if used >= len(rest):
                        raise StatesError("States.IntrinsicFailure", "States.Format: too few arguments")
                    out.append(_format_arg(rest[used]))
                    used += 1
                    i += 2
                else:
                    out.append(raw[i])
                    i += 1
            if used != len(rest):
                raise StatesError("States.IntrinsicFailure", "States.Format: too many arguments")
            return "".join(out)
        values = [value(a) for a in args]
        if node.name == "States.StringToJson":
            (text_value,) = values
            return json.loads(text_value)
        if node.name == "States.JsonToString":
            (obj,) = values
            return json.dumps(obj, separators=(",", ":"))
        if node.name == "States.JsonMerge":
            left, right, deep = values
            if deep is not False:
                raise StatesError("States.IntrinsicFailure", "States.JsonMerge: only shallow merges are supported")
            if not isinstance(left, dict) or not isinstance(right, dict):
                raise StatesError("States.IntrinsicFailure", "States.JsonMerge needs two objects")
            return {**left, **right}
        if node.name == "States.Array":
            return values
        raise StatesError("States.Runtime", f"intrinsic {node.name} is not supported by this interpreter")

    return call(_IntrinsicParser(text).parse())


def evaluate_path_or_intrinsic(expression: str, data: Any, context: Mapping[str, Any] | None = None) -> Any:
    if expression.startswith("States."):
        return evaluate_intrinsic(expression, data, context)
    return require_path(data, expression, context)


def apply_template(template: Any, data: Any, context: Mapping[str, Any] | None = None) -> Any:
    """Parameters / ResultSelector: keys ending in ``.$`` take a path or intrinsic's value."""
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$"):
                if not isinstance(value, str):
                    raise StatesError("States.Runtime", f"{key} needs a path or an intrinsic function")
                out[key[:-2]] = evaluate_path_or_intrinsic(value, data, context)
            else:
                out[key] = apply_template(value, data, context)
        return out
    if isinstance(template, list):
        return [apply_template(item, data, context) for item in template]
    return template


# --------------------------------------------------------------------------- choice rules

_TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "IsString": lambda v: isinstance(v, str),
    "IsNull": lambda v: v is None,
    "IsBoolean": lambda v: isinstance(v, bool),
    "IsNumeric": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
}
_NUMERIC = {
    "NumericEquals": lambda a, b: a == b,
    "NumericLessThan": lambda a, b: a < b,
    "NumericGreaterThan": lambda a, b: a > b,
    "NumericLessThanEquals": lambda a, b: a <= b,
    "NumericGreaterThanEquals": lambda a, b: a >= b,
}


def _string_matches(value: str, pattern: str) -> bool:
    regex = "".join(
        ".*" if part == "*" else re.escape(part.replace("\\*", "*")) for part in re.split(r"(?<!\\)(\*)", pattern)
    )
    return re.fullmatch(regex, value, re.DOTALL) is not None


def evaluate_rule(rule: Mapping[str, Any], data: Any) -> bool:
    """A Choice rule (And/Or/Not short-circuit; a missing variable is an error except for IsPresent)."""
    if "And" in rule:
        return all(evaluate_rule(r, data) for r in rule["And"])
    if "Or" in rule:
        return any(evaluate_rule(r, data) for r in rule["Or"])
    if "Not" in rule:
        return not evaluate_rule(rule["Not"], data)
    variable = rule["Variable"]
    operators = [k for k in rule if k not in ("Variable", "Next", "Comment")]
    if len(operators) != 1:
        raise StatesError("States.Runtime", f"a choice rule needs exactly one operator: {rule}")
    (op,) = operators
    expected = rule[op]
    value = get_path(data, variable)
    if op == "IsPresent":
        return (value is not _MISSING) == expected
    if value is _MISSING:
        raise StatesError("States.Runtime", f"Invalid path {variable!r}: the choice state's input has no such field")
    if op in _TYPE_TESTS:
        return _TYPE_TESTS[op](value) == expected
    if op.endswith("Path"):
        expected = require_path(data, expected)
        op = op[: -len("Path")]
    if op == "StringEquals":
        return isinstance(value, str) and value == expected
    if op == "StringMatches":
        return isinstance(value, str) and _string_matches(value, expected)
    if op == "BooleanEquals":
        return isinstance(value, bool) and value == expected
    if op in _NUMERIC:
        return _TYPE_TESTS["IsNumeric"](value) and _NUMERIC[op](value, expected)
    raise StatesError("States.Runtime", f"choice operator {op} is not supported by this interpreter")


# --------------------------------------------------------------------------- execution

TaskHandler = Callable[[Mapping[str, Any]], Any]

#: Approximate history events per state: entered + exited, plus scheduled/started/succeeded
#: for a task (and scheduled/started/failed for each failed attempt).
_EVENTS = {"Task": 5, "Choice": 2, "Wait": 2, "Pass": 2, "Succeed": 2, "Fail": 2}


@dataclass
class Step:
    """One state as executed: its input, its output (None when it failed) and its attempts."""

    name: str
    type: str
    input: Any
    output: Any = None
    attempts: int = 1
    error: str | None = None


@dataclass
class Execution:
    status: str  # SUCCEEDED | FAILED | TIMED_OUT
    end_state: str
    output: Any = None
    error: str | None = None
    cause: str | None = None
    steps: list[Step] = field(default_factory=list)
    waited_s: float = 0.0
    history_events: int = 0

    def path(self) -> list[str]:
        return [s.name for s in self.steps]

    def visits(self, name: str) -> int:
        return sum(1 for s in self.steps if s.name == name)

    def step(self, name: str, index: int = -1) -> Step:
        return [s for s in self.steps if s.name == name][index]


def _error_matches(names: list[str], error: str) -> bool:
    if error == "States.Runtime" or error == "States.DataLimitExceeded":
        return False  # never caught or retried
    return error in names or "States.ALL" in names or ("States.TaskFailed" in names and error != "States.Timeout")


def _check_size(what: str, value: Any) -> None:
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > PAYLOAD_LIMIT:
        raise StatesError("States.DataLimitExceeded", f"{what} is {size} bytes, over {PAYLOAD_LIMIT}")


class AslInterpreter:
    """Runs a JSONPath state machine with mocked tasks, without sleeping.

    ``tasks`` maps a task's ``Resource`` to a handler that gets the task's effective
    parameters and returns its result, or raises :class:`StatesError` (a task failure) or any
    exception (reported as ``type(exc).__name__``, like a Lambda function's error type). Waits
    and retry delays advance a simulated clock; the top-level ``TimeoutSeconds`` applies to it.
    """

    def __init__(self, definition: Mapping[str, Any], tasks: Mapping[str, TaskHandler], max_steps: int = 10_000):
        self.definition = definition
        self.tasks = tasks
        self.max_steps = max_steps

    def run(self, execution_input: Any) -> Execution:
        states = self.definition["States"]
        timeout = self.definition.get("TimeoutSeconds")
        context = {"Execution": {"Input": execution_input, "Id": "arn:aws:states:::execution:test"}}
        name = self.definition["StartAt"]
        data = execution_input
        run = Execution(status="RUNNING", end_state=name)
        _check_size("the execution input", data)
        for _ in range(self.max_steps):
            state = states[name]
            step = Step(name, state["Type"], data)
            run.steps.append(step)
            run.end_state = name
            run.history_events += _EVENTS[state["Type"]]
            context["State"] = {"Name": name}
            try:
                outcome = self._state(state, data, context, step, run)
            except StatesError as err:
                step.error = err.error
                run.status, run.error, run.cause = "FAILED", err.error, err.cause
                return run
            if timeout is not None and run.waited_s > timeout:
                run.status, run.error = "TIMED_OUT", "States.Timeout"
                return run
            kind, value = outcome
            step.output = value
            try:
                _check_size(f"the output of {name}", value)
            except StatesError as err:
                run.status, run.error, run.cause = "FAILED", err.error, err.cause
                return run
            if kind == "succeed":
                run.status, run.output = "SUCCEEDED", value
                return run
            if kind == "fail":
                run.status, run.error, run.cause = "FAILED", value["Error"], value.get("Cause")
                run.output = None
                return run
            name, data = kind, value
        raise AssertionError(f"no end after {self.max_steps} states: {run.path()[-20:]}")

    # ------------------------------------------------------------------ states

    def _state(
        self, state: Mapping[str, Any], raw: Any, context: Mapping[str, Any], step: Step, run: Execution
    ) -> tuple[str, Any]:
        kind = state["Type"]
        effective = self._input_path(state, raw)
        if kind == "Pass":
            result = state.get("Result", effective)
            if "Parameters" in state:
                result = apply_template(state["Parameters"], effective, context)
            return self._next(state, self._output(state, raw, result))
        if kind == "Task":
            return self._task(state, raw, effective, context, step, run)
        if kind == "Choice":
            for rule in state["Choices"]:
                if evaluate_rule(rule, effective):
                    return rule["Next"], self._output_path(state, effective)
            if "Default" in state:
                return state["Default"], self._output_path(state, effective)
            raise StatesError("States.NoChoiceMatched", "no choice rule matched and there is no Default")
        if kind == "Wait":
            if "SecondsPath" in state:
                seconds = require_path(effective, state["SecondsPath"])
                if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0:
                    raise StatesError("States.Runtime", f"SecondsPath gave {seconds!r}, not a non-negative integer")
            elif "Seconds" in state:
                seconds = state["Seconds"]
            else:
                raise StatesError("States.Runtime", "only Seconds and SecondsPath waits are supported")
            run.waited_s += seconds
            return self._next(state, self._output_path(state, effective))
        if kind == "Succeed":
            return "succeed", self._output_path(state, effective)
        if kind == "Fail":
            error = state.get("Error")
            if "ErrorPath" in state:
                error = evaluate_path_or_intrinsic(state["ErrorPath"], raw, context)
            cause = state.get("Cause")
            if "CausePath" in state:
                cause = evaluate_path_or_intrinsic(state["CausePath"], raw, context)
            if not isinstance(error, str | None) or not isinstance(cause, str | None):
                raise StatesError("States.Runtime", "ErrorPath/CausePath must give strings")
            return "fail", {"Error": error, "Cause": cause}
        raise StatesError("States.Runtime", f"state type {kind} is not supported by this interpreter")

    def _task(
        self,
        state: Mapping[str, Any],
        raw: Any,
        effective: Any,
        context: Mapping[str, Any],
        step: Step,
        run: Execution,
    ) -> tuple[str, Any]:
        parameters = apply_template(state.get("Parameters", effective), effective, context)
        _check_size(f"the parameters of {step.name}", parameters)
        handler = self.tasks.get(state["Resource"])
        if handler is None:
            raise StatesError("States.Runtime", f"no mock for resource {state['Resource']}")
        retry_counts = [0] * len(state.get("Retry", []))
        while True:
            try:
                try:
                    result = handler(parameters)
                except StatesError:
                    raise
                except Exception as exc:  # a Lambda function's error: its type name is the error
                    raise StatesError(
                        type(exc).__name__, json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__})
                    ) from exc
                _check_size(f"the result of {step.name}", result)
                if "ResultSelector" in state:
                    result = apply_template(state["ResultSelector"], result, context)
                return self._next(state, self._output(state, raw, result))
            except StatesError as err:
                if err.error in ("States.Runtime", "States.DataLimitExceeded"):
                    raise
                for i, retrier in enumerate(state.get("Retry", [])):
                    if _error_matches(retrier["ErrorEquals"], err.error):
                        if retry_counts[i] < retrier.get("MaxAttempts", 3):
                            delay = (
                                retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** retry_counts[i]
                            )
                            run.waited_s += min(delay, retrier.get("MaxDelaySeconds", delay))
                            retry_counts[i] += 1
                            step.attempts += 1
                            run.history_events += 3
                            break
                        retrier = None  # exhausted: fall through to Catch
                        break
                else:
                    retrier = None
                if retrier is not None:
                    continue
                step.error = err.error
                for catcher in state.get("Catch", []):
                    if _error_matches(catcher["ErrorEquals"], err.error):
                        caught = {"Error": err.error, "Cause": err.cause}
                        return catcher["Next"], set_path(raw, catcher.get("ResultPath", "$"), caught)
                raise

    # ------------------------------------------------------------------ data flow

    @staticmethod
    def _input_path(state: Mapping[str, Any], raw: Any) -> Any:
        path = state.get("InputPath", "$")
        return {} if path is None else require_path(raw, path)

    @staticmethod
    def _output_path(state: Mapping[str, Any], value: Any) -> Any:
        path = state.get("OutputPath", "$")
        return {} if path is None else require_path(value, path)

    def _output(self, state: Mapping[str, Any], raw: Any, result: Any) -> Any:
        return self._output_path(state, set_path(raw, state.get("ResultPath", "$"), result))

    @staticmethod
    def _next(state: Mapping[str, Any], value: Any) -> tuple[str, Any]:
        if state.get("End"):
            return "succeed", value
        return state["Next"], value


# --------------------------------------------------------------------------- task mocks


def lambda_task(functions: Mapping[str, Callable[[Any], Any]]) -> TaskHandler:
    """``arn:aws:states:::lambda:invoke``: call ``functions[FunctionName](Payload)``.

    The result has the integration's shape (``Payload``, ``StatusCode``, ...); an exception
    becomes the task error named after its type, as Lambda reports a Python error.
    """

    def invoke(parameters: Mapping[str, Any]) -> Any:
        function = functions[parameters["FunctionName"]]
        payload = json.loads(json.dumps(parameters["Payload"]))  # the JSON round trip Lambda makes
        result = json.loads(json.dumps(function(payload)))
        return {"ExecutedVersion": "$LATEST", "Payload": result, "StatusCode": 200, "SdkHttpMetadata": {}}

    return invoke


def canned_http(*responses: Any, base_url: str = "https://api.openai.com/v1") -> tuple[TaskHandler, list[str]]:
    """An HTTP task mock answering GETs of batches with ``responses`` in order (the last repeats).

    A response is a batch object (200), or an int status (an HTTP error the task reports as
    ``States.Http.StatusCode.<n>``). Returns the handler and the list of URLs it was called with.
    """
    queue = list(responses)
    calls: list[str] = []

    def invoke(parameters: Mapping[str, Any]) -> Any:
        assert parameters["Method"] == "GET"
        assert parameters["Authentication"]["ConnectionArn"].startswith("arn:aws:events:")
        assert parameters["ApiEndpoint"].startswith(f"{base_url}/batches/")
        calls.append(parameters["ApiEndpoint"])
        response = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(response, int):
            raise StatesError(f"States.Http.StatusCode.{response}", json.dumps({"statusCode": response}))
        return {
            "ResponseBody": response,
            "StatusCode": 200,
            "StatusText": "OK",
            "Headers": {"content-type": ["application/json"]},
        }

    return invoke, calls


# =========================================================================== the interpreter itself


def test_interpreter_paths_and_intrinsics() -> None:
    data = {"a": {"b": [1, {"c": "x"}]}, "s": "it's"}
    assert get_path(data, "$.a.b[1].c") == "x"
    assert get_path(data, "$.nope") is _MISSING
    assert set_path(data, "$.a.d", 5)["a"] == {"b": [1, {"c": "x"}], "d": 5}
    assert set_path(data, "$", 5) == 5 and set_path(data, None, 5) == data
    assert evaluate_intrinsic("States.Format('{} \\{\\} \\'q\\' {}', $.a.b[1].c, $.a.b[0])", data) == "x {} 'q' 1"
    merged = evaluate_intrinsic("States.JsonMerge($.a, States.StringToJson('\\{\"z\": 1\\}'), false)", data)
    assert merged == {"b": [1, {"c": "x"}], "z": 1}
    assert evaluate_intrinsic("States.StringToJson('300')", {}) == 300
    assert evaluate_intrinsic("States.JsonToString($.a)", data) == '{"b":[1,{"c":"x"}]}'
    assert evaluate_intrinsic("States.JsonMerge($.a, $.a, false)", data) == data["a"]
    with pytest.raises(StatesError, match=r"States\.Runtime"):
        evaluate_intrinsic("States.Format('{}', $.missing)", data)
    assert _string_matches("batch_abc", "batch_*") and not _string_matches("file-abc", "batch_*")
    assert evaluate_rule(
        {"And": [{"Variable": "$.s", "IsString": True}, {"Variable": "$.s", "StringEquals": "it's"}]}, data
    )
    with pytest.raises(StatesError):
        evaluate_rule({"Variable": "$.missing", "StringEquals": "x"}, data)
