"""A walker of the batch lifecycle state machine: the real definition, run with its tasks mocked.

Why not moto's Step Functions: with ``execute_state_machine`` (moto 5.2) it parses the definition
with a port of LocalStack's interpreter, which rejects ``States.Http.*`` error names in a Retry
("Custom Error Names MUST NOT begin with the prefix 'States.'") and has no ``http:invoke``
integration ("Unknown service 'http'"), and its Lambda tasks invoke moto's Lambda, which runs
functions in Docker. Without that flag it only records executions. So the definition is walked here.

:func:`load_definition` loads ``statemachine/batch_lifecycle.asl.json`` the way CloudFormation
does: the ``${...}`` placeholders replaced with the template's ``DefinitionSubstitutions`` (dummy
ARNs here, or the values a test gives). :class:`AslInterpreter` runs it: a small interpreter of
the Amazon States Language (JSONPath flavour) supporting what the definition uses and failing
loudly on anything else: Pass, Task, Choice, Wait, Succeed, Fail and Map states; InputPath,
Parameters, ResultSelector, ResultPath and OutputPath; Retry (MaxAttempts, IntervalSeconds,
BackoffRate, MaxDelaySeconds) and Catch; Choice rules with And/Or/Not, string, numeric, boolean
and type tests; the intrinsic functions States.Format, States.StringToJson, States.JsonToString,
States.JsonMerge and States.Array; Fail states' ErrorPath/CausePath. Tasks are mocked by
``Resource`` (:func:`lambda_task`, :func:`canned_http`, :func:`openai_http_task`). A Map state
(inline or DISTRIBUTED) runs its ItemProcessor over its items one after the other, each as an
execution of its own (ItemsPath, or an ItemReader mocked by resource, e.g. :func:`s3_json_items`;
ItemSelector with ``$$.Map.Item``; MaxConcurrency(Path) recorded, not enforced;
ToleratedFailurePercentage/Count(Path); a ResultWriter mocked by resource, e.g.
:func:`s3_result_writer`, which writes Step Functions' result files). Nothing sleeps:
waits and retry delays advance a simulated clock, which the top-level ``TimeoutSeconds`` applies
to, and the run counts approximate history events. Every state's input and output, every task's
parameters and result, must fit Step Functions' 256 KB.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import requests
from cfnlint.decode import cfn_yaml

__all__ = [
    "BACKFILL_STATE_MACHINE",
    "BACKFILL_SUBSTITUTIONS",
    "DUMMY_SUBSTITUTIONS",
    "FETCH_ARN",
    "HTTP_INVOKE",
    "LAMBDA_INVOKE",
    "LOG_ARN",
    "MAP_RUN_ARN",
    "PAYLOAD_LIMIT",
    "S3_GET_OBJECT",
    "S3_PUT_OBJECT",
    "AslInterpreter",
    "Execution",
    "StatesError",
    "Step",
    "canned_http",
    "definition_text",
    "evaluate_intrinsic",
    "evaluate_rule",
    "get_path",
    "lambda_task",
    "load_definition",
    "openai_http_task",
    "placeholders",
    "s3_json_items",
    "s3_result_writer",
    "set_path",
    "state_machine_properties",
    "template",
]

#: Step Functions' limit on a state's input or output (and on a task's result).
PAYLOAD_LIMIT = 256 * 1024
HTTP_INVOKE = "arn:aws:states:::http:invoke"
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
#: A Distributed Map's ItemReader and ResultWriter resources.
S3_GET_OBJECT = "arn:aws:states:::s3:getObject"
S3_PUT_OBJECT = "arn:aws:states:::s3:putObject"
MAP_RUN_ARN = "arn:aws:states:us-east-1:123456789012:mapRun:stack-Backfill/Backfill:7d3f0c52-7a3e-4a0e"

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
STATE_MACHINE = "BatchLifecycleStateMachine"
FETCH_ARN = "arn:aws:lambda:us-east-1:123456789012:function:stack-FetchBatchFilesFunction"
LOG_ARN = "arn:aws:lambda:us-east-1:123456789012:function:stack-LogBatchResultsFunction"
DUMMY_SUBSTITUTIONS = {
    # The template's default: the API base URL with its version, as the openai SDK reads OPENAI_BASE_URL.
    "OpenAIBaseUrl": "https://api.openai.com/v1",
    "OpenAIConnectionArn": "arn:aws:events:us-east-1:123456789012:connection/openai/0f1e2d3c-4b5a-6978-8796",
    "FetchBatchFilesFunctionArn": FETCH_ARN,
    "LogBatchResultsFunctionArn": LOG_ARN,
    "BatchesBucketName": "batchtrace-demo",
    "BatchPrefix": "batches/",
    "PollIntervalSeconds": "300",
}
BACKFILL_STATE_MACHINE = "BackfillStateMachine"
#: The backfill's substitutions beyond the lifecycle's (the template's defaults).
BACKFILL_SUBSTITUTIONS = {
    "BackfillPrefix": "backfill/",
    "BackfillMaxConcurrency": "5",
    "BackfillToleratedFailurePercentage": "5",
}


# =========================================================================== the definition, as deployed


@cache
def template() -> dict[str, Any]:
    return cfn_yaml.loads(TEMPLATE.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def state_machine_properties(state_machine: str = STATE_MACHINE) -> dict[str, Any]:
    resource = template()["Resources"][state_machine]
    assert resource["Type"] == "AWS::Serverless::StateMachine"
    return resource["Properties"]  # type: ignore[no-any-return]


def definition_text(state_machine: str = STATE_MACHINE) -> str:
    return (ROOT / str(state_machine_properties(state_machine)["DefinitionUri"])).read_text(encoding="utf-8")


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", text))


def load_definition(
    substitutions: Mapping[str, str] | None = None, state_machine: str = STATE_MACHINE
) -> dict[str, Any]:
    """The definition of ``state_machine`` as Step Functions gets it: placeholders replaced, then parsed."""
    values = {**DUMMY_SUBSTITUTIONS, **(substitutions or {})}
    text = definition_text(state_machine)
    missing = placeholders(text) - set(values)
    assert not missing, f"no substitution for {sorted(missing)}"
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    return json.loads(text)  # type: ignore[no-any-return]


# =========================================================================== paths


class StatesError(Exception):
    """An error raised inside an execution (a task failure, States.Runtime, ...)."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


MISSING = object()


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
    """The value at a JSONPath (``$.a.b[0]``; ``$$.`` reads the context object); :data:`MISSING` if none."""
    if path.startswith("$$"):
        data, path = context or {}, path[1:]
    value = data
    for token in _path_tokens(path):
        if isinstance(token, int):
            if not isinstance(value, list) or token >= len(value):
                return MISSING
        elif not isinstance(value, dict) or token not in value:
            return MISSING
        value = value[token]
    return value


def require_path(data: Any, path: str, context: Mapping[str, Any] | None = None) -> Any:
    value = get_path(data, path, context)
    if value is MISSING:
        raise StatesError("States.Runtime", f"the JSONPath {path!r} could not be found in the input")
    return value


def set_path(data: Any, path: str | None, value: Any) -> Any:
    """ResultPath: ``None`` discards the value, ``$`` replaces the input, ``$.a.b`` sets a field."""
    if path is None:
        return data
    tokens = _path_tokens(path)
    if not tokens:
        return value
    if not all(isinstance(token, str) for token in tokens):
        raise StatesError("States.ResultPathMatchFailure", path)
    out = copy.deepcopy(data) if isinstance(data, dict) else {}
    node = out
    for token in tokens[:-1]:
        child = node.get(token)
        if not isinstance(child, dict):
            child = node[token] = {}
        node = child
    node[tokens[-1]] = value
    return out


# =========================================================================== intrinsics


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


def _format(template: Any, args: list[Any]) -> str:
    """States.Format: ``{}`` placeholders filled in order; escapes (``\\{``) kept literal."""
    if not isinstance(template, _Literal) or not isinstance(template.value, str):
        raise StatesError("States.IntrinsicFailure", "States.Format needs a string literal template")
    pieces = re.split(r"(\\.|\{\})", template.raw)
    holes = pieces.count("{}")
    if holes != len(args):
        raise StatesError("States.IntrinsicFailure", f"States.Format: {holes} placeholders, {len(args)} arguments")
    filled = iter(a if isinstance(a, str) else json.dumps(a, separators=(",", ":")) for a in args)
    return "".join(next(filled) if p == "{}" else p[1] if p.startswith("\\") else p for p in pieces)


def _json_merge(left: Any, right: Any, deep: Any) -> dict[str, Any]:
    if deep is not False:
        raise StatesError("States.IntrinsicFailure", "States.JsonMerge: only shallow merges are supported")
    if not isinstance(left, dict) or not isinstance(right, dict):
        raise StatesError("States.IntrinsicFailure", "States.JsonMerge needs two objects")
    return {**left, **right}


_INTRINSICS: dict[str, Callable[..., Any]] = {
    "States.StringToJson": json.loads,
    "States.JsonToString": lambda obj: json.dumps(obj, separators=(",", ":")),
    "States.JsonMerge": _json_merge,
    "States.Array": lambda *values: list(values),
}


def evaluate_intrinsic(text: str, data: Any, context: Mapping[str, Any] | None = None) -> Any:
    """Evaluate an intrinsic function call such as ``States.Format('x {}', $.a)``."""

    def value(node: Any) -> Any:
        if isinstance(node, _Literal):
            return node.value
        if isinstance(node, _Path):
            return require_path(data, node.path, context)
        return call(node)

    def call(node: _Call) -> Any:
        if node.name == "States.Format":
            return _format(node.args[0], [value(a) for a in node.args[1:]])
        if node.name not in _INTRINSICS:
            raise StatesError("States.Runtime", f"intrinsic {node.name} is not supported by this interpreter")
        return _INTRINSICS[node.name](*(value(a) for a in node.args))

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


# =========================================================================== choice rules


def _is_numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _string_matches(value: str, pattern: str) -> bool:
    regex = "".join(
        ".*" if part == "*" else re.escape(part.replace("\\*", "*")) for part in re.split(r"(?<!\\)(\*)", pattern)
    )
    return re.fullmatch(regex, value, re.DOTALL) is not None


_TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "IsString": lambda v: isinstance(v, str),
    "IsNull": lambda v: v is None,
    "IsBoolean": lambda v: isinstance(v, bool),
    "IsNumeric": _is_numeric,
}
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "StringEquals": lambda a, b: isinstance(a, str) and a == b,
    "StringMatches": lambda a, b: isinstance(a, str) and _string_matches(a, b),
    "BooleanEquals": lambda a, b: isinstance(a, bool) and a == b,
    "NumericEquals": lambda a, b: _is_numeric(a) and a == b,
    "NumericLessThan": lambda a, b: _is_numeric(a) and a < b,
    "NumericGreaterThan": lambda a, b: _is_numeric(a) and a > b,
    "NumericLessThanEquals": lambda a, b: _is_numeric(a) and a <= b,
    "NumericGreaterThanEquals": lambda a, b: _is_numeric(a) and a >= b,
}


def evaluate_rule(rule: Mapping[str, Any], data: Any) -> bool:
    """A Choice rule (And/Or/Not short-circuit; a missing variable is an error except for IsPresent)."""
    if "And" in rule:
        return all(evaluate_rule(r, data) for r in rule["And"])
    if "Or" in rule:
        return any(evaluate_rule(r, data) for r in rule["Or"])
    if "Not" in rule:
        return not evaluate_rule(rule["Not"], data)
    operators = [k for k in rule if k not in ("Variable", "Next", "Comment")]
    if len(operators) != 1:
        raise StatesError("States.Runtime", f"a choice rule needs exactly one operator: {rule}")
    (op,) = operators
    variable, expected = rule["Variable"], rule[op]
    value = get_path(data, variable)
    if op == "IsPresent":
        return bool((value is not MISSING) == expected)
    if value is MISSING:
        raise StatesError("States.Runtime", f"Invalid path {variable!r}: the choice state's input has no such field")
    if op in _TYPE_TESTS:
        return bool(_TYPE_TESTS[op](value) == expected)
    if op.endswith("Path"):
        op, expected = op.removesuffix("Path"), require_path(data, expected)
    if op not in _COMPARISONS:
        raise StatesError("States.Runtime", f"choice operator {op} is not supported by this interpreter")
    return _COMPARISONS[op](value, expected)


# =========================================================================== execution

TaskHandler = Callable[[Mapping[str, Any]], Any]

#: Approximate history events per state: entered + exited, plus scheduled/started/succeeded
#: for a task (and scheduled/started/failed for each failed attempt).
_EVENTS = {"Task": 5, "Choice": 2, "Wait": 2, "Pass": 2, "Succeed": 2, "Fail": 2, "Map": 4}
#: Errors no Retry or Catch ever handles.
_UNCATCHABLE = ("States.Runtime", "States.DataLimitExceeded")


@dataclass
class Step:
    """One state as executed: its input, its output (None when it failed) and its attempts."""

    name: str
    type: str
    input: Any
    output: Any = None
    attempts: int = 1
    error: str | None = None
    #: A Map state's child executions, one per item, and its concurrency limit.
    children: list[Execution] = field(default_factory=list)
    max_concurrency: int | None = None


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
    input: Any = None

    def path(self) -> list[str]:
        return [s.name for s in self.steps]

    def visits(self, name: str) -> int:
        return sum(1 for s in self.steps if s.name == name)

    def step(self, name: str, index: int = -1) -> Step:
        return [s for s in self.steps if s.name == name][index]

    def fail(self, error: str | None, cause: str | None, status: str = "FAILED") -> Execution:
        self.status, self.error, self.cause, self.output = status, error, cause, None
        return self


def _error_matches(names: list[str], error: str) -> bool:
    if error in _UNCATCHABLE:
        return False
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
        states, timeout = self.definition["States"], self.definition.get("TimeoutSeconds")
        context: dict[str, Any] = {"Execution": {"Input": execution_input, "Id": "arn:aws:states:::execution:test"}}
        name, data = self.definition["StartAt"], execution_input
        run = Execution(status="RUNNING", end_state=name, input=execution_input)
        _check_size("the execution input", data)
        for _ in range(self.max_steps):
            state = states[name]
            step = Step(name, state["Type"], data)
            run.steps.append(step)
            run.end_state = name
            run.history_events += _EVENTS[state["Type"]]
            context["State"] = {"Name": name}
            try:
                kind, value = self._state(state, data, context, step, run)
            except StatesError as err:
                step.error = err.error
                return run.fail(err.error, err.cause)
            if timeout is not None and run.waited_s > timeout:
                return run.fail("States.Timeout", None, "TIMED_OUT")
            step.output = value
            try:
                _check_size(f"the output of {name}", value)
            except StatesError as err:
                return run.fail(err.error, err.cause)
            if kind == "succeed":
                run.status, run.output = "SUCCEEDED", value
                return run
            if kind == "fail":
                return run.fail(value["Error"], value.get("Cause"))
            name, data = kind, value
        raise AssertionError(f"no end after {self.max_steps} states: {run.path()[-20:]}")

    # ------------------------------------------------------------------ states

    def _state(
        self, state: Mapping[str, Any], raw: Any, context: Mapping[str, Any], step: Step, run: Execution
    ) -> tuple[str, Any]:
        """``(next state, or "succeed"/"fail", the state's output)``."""
        kind = state["Type"]
        effective = self._input_path(state, raw)
        if kind == "Task":
            return self._task(state, raw, effective, context, step, run)
        if kind == "Map":
            return self._map(state, raw, effective, context, step, run)
        handlers = {"Pass": self._pass, "Choice": self._choice, "Wait": self._wait, "Succeed": self._succeed}
        if kind == "Fail":
            return self._fail(state, raw, context)
        if kind not in handlers:
            raise StatesError("States.Runtime", f"state type {kind} is not supported by this interpreter")
        return handlers[kind](state, raw, effective, context, run)

    def _pass(
        self, state: Mapping[str, Any], raw: Any, effective: Any, context: Mapping[str, Any], run: Execution
    ) -> tuple[str, Any]:
        result = state.get("Result", effective)
        if "Parameters" in state:
            result = apply_template(state["Parameters"], effective, context)
        return self._next(state, self._output(state, raw, result))

    def _choice(
        self, state: Mapping[str, Any], raw: Any, effective: Any, context: Mapping[str, Any], run: Execution
    ) -> tuple[str, Any]:
        for rule in state["Choices"]:
            if evaluate_rule(rule, effective):
                return rule["Next"], self._output_path(state, effective)
        if "Default" in state:
            return state["Default"], self._output_path(state, effective)
        raise StatesError("States.NoChoiceMatched", "no choice rule matched and there is no Default")

    def _wait(
        self, state: Mapping[str, Any], raw: Any, effective: Any, context: Mapping[str, Any], run: Execution
    ) -> tuple[str, Any]:
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

    def _succeed(
        self, state: Mapping[str, Any], raw: Any, effective: Any, context: Mapping[str, Any], run: Execution
    ) -> tuple[str, Any]:
        return "succeed", self._output_path(state, effective)

    @staticmethod
    def _fail(state: Mapping[str, Any], raw: Any, context: Mapping[str, Any]) -> tuple[str, Any]:
        error, cause = state.get("Error"), state.get("Cause")
        if "ErrorPath" in state:
            error = evaluate_path_or_intrinsic(state["ErrorPath"], raw, context)
        if "CausePath" in state:
            cause = evaluate_path_or_intrinsic(state["CausePath"], raw, context)
        if not isinstance(error, str | None) or not isinstance(cause, str | None):
            raise StatesError("States.Runtime", "ErrorPath/CausePath must give strings")
        return "fail", {"Error": error, "Cause": cause}

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
        retries = [0] * len(state.get("Retry", []))
        while True:
            try:
                result = _call_task(handler, parameters, step.name)
                if "ResultSelector" in state:
                    result = apply_template(state["ResultSelector"], result, context)
                return self._next(state, self._output(state, raw, result))
            except StatesError as err:
                delay = None if err.error in _UNCATCHABLE else _retry_delay(state.get("Retry", []), retries, err.error)
                if delay is None:
                    step.error = err.error
                    return self._catch(state, raw, err)
                run.waited_s += delay
                step.attempts += 1
                run.history_events += 3

    # ------------------------------------------------------------------ Map

    def _map(
        self,
        state: Mapping[str, Any],
        raw: Any,
        effective: Any,
        context: Mapping[str, Any],
        step: Step,
        run: Execution,
    ) -> tuple[str, Any]:
        """Each item through the ItemProcessor, as an execution of its own; a map's failure is caught like a task's."""
        try:
            step.max_concurrency = _map_limit(state, effective, "MaxConcurrency")
            items = self._map_items(state, effective, context)
            step.children = [self._map_item(state, effective, context, i, item) for i, item in enumerate(items)]
            # The items run side by side: the map takes as long as its slowest.
            run.waited_s += max((child.waited_s for child in step.children), default=0.0)
            # The results are written whether or not the map run then fails on its failure threshold.
            result = self._map_result(state, effective, context, step.children)
            _check_tolerance(state, effective, step.children)
        except StatesError as err:
            step.error = err.error
            return self._catch(state, raw, err)
        return self._next(state, self._output(state, raw, result))

    def _handler(self, resource: str) -> TaskHandler:
        handler = self.tasks.get(resource)
        if handler is None:
            raise StatesError("States.Runtime", f"no mock for resource {resource}")
        return handler

    def _map_items(self, state: Mapping[str, Any], effective: Any, context: Mapping[str, Any]) -> list[Any]:
        reader = state.get("ItemReader")
        if reader is None:
            items = require_path(effective, state.get("ItemsPath", "$"))
        else:  # a Distributed Map reads its items from S3: no 256 KB limit on them
            parameters = apply_template(reader.get("Parameters", {}), effective, context)
            items = self._handler(reader["Resource"])({"Parameters": parameters, **reader.get("ReaderConfig", {})})
        if not isinstance(items, list):
            raise StatesError("States.Runtime", f"the Map state's items are not an array: {type(items).__name__}")
        return items

    def _map_item(
        self, state: Mapping[str, Any], effective: Any, context: Mapping[str, Any], index: int, item: Any
    ) -> Execution:
        item_context = {**context, "Map": {"Item": {"Index": index, "Value": item}}}
        selector = state.get("ItemSelector", state.get("Parameters"))
        child_input = item if selector is None else apply_template(selector, effective, item_context)
        processor = state.get("ItemProcessor") or state["Iterator"]
        return AslInterpreter(processor, self.tasks, self.max_steps).run(child_input)

    def _map_result(
        self, state: Mapping[str, Any], effective: Any, context: Mapping[str, Any], children: list[Execution]
    ) -> Any:
        writer = state.get("ResultWriter")
        if writer is None:
            return [child.output for child in children]
        parameters = apply_template(writer.get("Parameters", {}), effective, context)
        details = self._handler(writer["Resource"])(
            {"Parameters": parameters, "MapRunArn": MAP_RUN_ARN, "Executions": children}
        )
        return {"MapRunArn": MAP_RUN_ARN, "ResultWriterDetails": details}

    @staticmethod
    def _catch(state: Mapping[str, Any], raw: Any, err: StatesError) -> tuple[str, Any]:
        for catcher in state.get("Catch", []):
            if _error_matches(catcher["ErrorEquals"], err.error):
                caught = {"Error": err.error, "Cause": err.cause}
                return catcher["Next"], set_path(raw, catcher.get("ResultPath", "$"), caught)
        raise err

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


def _map_limit(state: Mapping[str, Any], effective: Any, name: str) -> int | float | None:
    """A Map limit, as given or read from its ``...Path`` (which must give a number)."""
    if f"{name}Path" in state:
        value = require_path(effective, state[f"{name}Path"])
        if not _is_numeric(value) or value < 0:
            raise StatesError("States.Runtime", f"{name}Path gave {value!r}, not a non-negative number")
        return value  # type: ignore[no-any-return]
    return state.get(name)  # type: ignore[no-any-return]


def _distributed(state: Mapping[str, Any]) -> bool:
    processor = state.get("ItemProcessor") or state.get("Iterator") or {}
    return bool(processor.get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED")


def _exceeds(limit: float | None, value: float) -> bool:
    return limit is not None and value > limit


def _over_threshold(state: Mapping[str, Any], effective: Any, failed: int, total: int) -> bool:
    """Whether ``failed`` of ``total`` items exceed a tolerated threshold (none given: any failure does)."""
    percentage = _map_limit(state, effective, "ToleratedFailurePercentage")
    count = _map_limit(state, effective, "ToleratedFailureCount")
    if percentage is None and count is None:
        return True
    return _exceeds(percentage, failed * 100 / total) or _exceeds(count, failed)


def _check_tolerance(state: Mapping[str, Any], effective: Any, children: list[Execution]) -> None:
    """An inline Map fails with its first failed item; a Distributed Map once a tolerated threshold is exceeded."""
    failed = [child for child in children if child.status != "SUCCEEDED"]
    if not failed:
        return
    if not _distributed(state):
        raise StatesError(failed[0].error or "States.TaskFailed", failed[0].cause or "")
    if _over_threshold(state, effective, len(failed), len(children)):
        raise StatesError(
            "States.ExceedToleratedFailureThreshold",
            f"{len(failed)} of {len(children)} items failed, over the tolerated threshold",
        )


def _call_task(handler: TaskHandler, parameters: Any, name: str) -> Any:
    """The task's result; any exception but a StatesError is a Lambda function's error, named by its type."""
    try:
        result = handler(parameters)
    except StatesError:
        raise
    except Exception as exc:
        document = {"errorMessage": str(exc), "errorType": type(exc).__name__}
        raise StatesError(type(exc).__name__, json.dumps(document)) from exc
    _check_size(f"the result of {name}", result)
    return result


def _retry_delay(retriers: list[Mapping[str, Any]], counts: list[int], error: str) -> float | None:
    """The delay before the next attempt, or None when no retrier (with attempts left) takes ``error``.

    The first retrier whose ErrorEquals matches decides, as in Step Functions; ``counts`` is updated.
    """
    for i, retrier in enumerate(retriers):
        if not _error_matches(retrier["ErrorEquals"], error):
            continue
        if counts[i] >= retrier.get("MaxAttempts", 3):
            return None
        delay = retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** counts[i]
        counts[i] += 1
        return float(min(delay, retrier.get("MaxDelaySeconds", delay)))
    return None


# =========================================================================== task mocks


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


def _http_result(body: Any, status: int = 200, reason: str = "OK", headers: Mapping[str, str] | None = None) -> Any:
    """What ``http:invoke`` returns for an answer."""
    return {
        "ResponseBody": body,
        "StatusCode": status,
        "StatusText": reason,
        "Headers": {k.lower(): [v] for k, v in (headers or {"content-type": "application/json"}).items()},
    }


def canned_http(
    *responses: Any,
    base_url: str = DUMMY_SUBSTITUTIONS["OpenAIBaseUrl"],
    connection_arn: str = DUMMY_SUBSTITUTIONS["OpenAIConnectionArn"],
) -> tuple[TaskHandler, list[str]]:
    """An HTTP task mock answering GETs of batches with ``responses`` in order (the last repeats).

    A response is a batch object (200), an int status (an HTTP error the task reports as
    ``States.Http.StatusCode.<n>``) or a string (that task error, e.g. ``States.Http.Socket``).
    Every call must be a GET of ``{base_url}/batches/...`` (``base_url`` includes ``/v1``),
    authenticated by the stack's connection alone (no headers of the definition's own). Returns
    the handler and the URLs it was called with.
    """
    queue = list(responses)
    calls: list[str] = []

    def invoke(parameters: Mapping[str, Any]) -> Any:
        assert parameters["Method"] == "GET"
        assert parameters["Authentication"] == {"ConnectionArn": connection_arn}
        assert "Headers" not in parameters, "the Authorization header comes from the connection only"
        assert parameters["ApiEndpoint"].startswith(f"{base_url}/batches/")
        calls.append(parameters["ApiEndpoint"])
        response = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(response, int):
            raise StatesError(f"States.Http.StatusCode.{response}", json.dumps({"statusCode": response}))
        if isinstance(response, str):
            raise StatesError(response, "injected")
        return _http_result(response)

    return invoke, calls


def openai_http_task(api_key: str) -> TaskHandler:
    """``arn:aws:states:::http:invoke`` against a real (fake) API, with the header the connection adds."""

    def invoke(parameters: Mapping[str, Any]) -> Any:
        assert parameters["Method"] == "GET" and "Headers" not in parameters
        response = requests.get(parameters["ApiEndpoint"], headers={"Authorization": f"Bearer {api_key}"}, timeout=10)
        if response.status_code >= 400:
            raise StatesError(f"States.Http.StatusCode.{response.status_code}", response.text)
        return _http_result(response.json(), response.status_code, response.reason, dict(response.headers))

    return invoke


def s3_json_items(s3: Any) -> TaskHandler:
    """A Distributed Map's ItemReader (``s3:getObject``, ``InputType: JSON``) over a real (moto) S3: the array."""

    def read(request: Mapping[str, Any]) -> Any:
        assert request.get("InputType") == "JSON", "only JSON manifests are mocked"
        parameters = request["Parameters"]
        try:
            body = s3.get_object(Bucket=parameters["Bucket"], Key=parameters["Key"])["Body"].read()
        except s3.exceptions.NoSuchKey:
            raise StatesError("States.ItemReaderFailed", f"no object {parameters['Key']}") from None
        return json.loads(body)

    return read


def _result_entry(child: Execution, state_machine_arn: str, index: int) -> dict[str, Any]:
    """One execution as Step Functions lists it in a map run's SUCCEEDED_n.json / FAILED_n.json."""
    entry = {
        "ExecutionArn": f"{state_machine_arn.replace(':stateMachine:', ':execution:')}/Backfill:{index}",
        "Input": json.dumps(child.input),
        "InputDetails": {"Included": True},
        "Name": str(index),
        "StartDate": "2026-09-01T10:00:00.000Z",
        "StateMachineArn": state_machine_arn,
        "Status": child.status,
        "StopDate": "2026-09-01T10:00:30.000Z",
    }
    if child.status == "SUCCEEDED":
        entry.update(Output=json.dumps(child.output), OutputDetails={"Included": True})
    else:
        entry.update(Error=child.error, Cause=child.cause)
    return entry


def s3_result_writer(s3: Any, state_machine_arn: str) -> TaskHandler:
    """A Distributed Map's ResultWriter (``s3:putObject``) over a real (moto) S3, in Step Functions' layout.

    ``<Prefix>/<map run id>/SUCCEEDED_0.json`` and ``FAILED_0.json`` (arrays of executions, each
    with its input and its output or error) and ``manifest.json`` naming them; returns the
    ``ResultWriterDetails`` (the manifest's bucket and key).
    """

    def write(request: Mapping[str, Any]) -> Any:
        bucket, prefix = request["Parameters"]["Bucket"], request["Parameters"].get("Prefix", "")
        folder = f"{prefix.rstrip('/')}/{request['MapRunArn'].rsplit(':', 1)[-1]}/".lstrip("/")
        files: dict[str, list[dict[str, Any]]] = {"SUCCEEDED": [], "FAILED": [], "PENDING": []}
        for kind in ("SUCCEEDED", "FAILED"):
            entries = [
                _result_entry(child, state_machine_arn, i)
                for i, child in enumerate(request["Executions"])
                if (child.status == "SUCCEEDED") == (kind == "SUCCEEDED")
            ]
            if entries:
                body = json.dumps(entries).encode()
                s3.put_object(Bucket=bucket, Key=f"{folder}{kind}_0.json", Body=body)
                files[kind].append({"Key": f"{folder}{kind}_0.json", "Size": len(body)})
        manifest = {"DestinationBucket": bucket, "MapRunArn": request["MapRunArn"], "ResultFiles": files}
        s3.put_object(Bucket=bucket, Key=f"{folder}manifest.json", Body=json.dumps(manifest).encode())
        return {"Bucket": bucket, "Key": f"{folder}manifest.json"}

    return write
