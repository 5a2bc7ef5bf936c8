"""The built artifact, run the way Lambda runs it.

``sam build`` builds the real ``template.yaml`` into a temporary directory. The *built* function
directory and the *built* layer then run under AWS's runtime interface client (``awslambdaric``)
against a local Lambda Runtime API (:mod:`tests.support.lambda_runtime_api`), with moto's S3 and
DynamoDB servers and a real OTLP receiver. Nothing from the dev venv is importable: the
interpreter runs with ``-S`` (no site-packages) and its ``PYTHONPATH`` is exactly

    <build>/LogBatchResultsFunction : <build>/BatchtraceLayer/python : <awslambdaric + boto3 only>

which is what Lambda offers (task root, ``/opt/python``, the runtime's boto3). So a dependency
missing from the layer, a wrong ``Handler``, a package in the wrong place or a return value
that does not marshal to JSON fails here, even when every in-process test passes.

Handler, code paths, layers, timeout, memory and environment are read from the *built*
template, not repeated here; only the endpoints and the table name are pointed at local servers.

``sam build`` without a container needs ``python3.12`` on PATH. When it is not (pyenv with
another global version), the build gets ``PYENV_VERSION`` set to the newest installed 3.12.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from batchtrace import submission_metadata
from cfnlint.decode import cfn_yaml
from opentelemetry.sdk.trace import TracerProvider

from tests.support.batches import batch_object, fault_batch
from tests.support.fake_lambda_invoke import FakeLambdaInvoke
from tests.support.fake_openai import FakeOpenAI
from tests.support.lambda_runtime_api import InvocationResult, LambdaRuntimeApi
from tests.support.moto_s3 import REGION, MotoServer, create_idempotency_table
from tests.support.openai_webhooks import batch_event_body, function_url_event, new_secret, signed_headers
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"
SAMPLES = ROOT / "samplefiles"
FUNCTION_SOURCE = ROOT / "functions" / "log_batch_results"
PACKAGE_SOURCE = ROOT / "layers" / "batchtrace" / "batchtrace"

FUNCTION = "LogBatchResultsFunction"
BUCKET = "batchtrace-demo"
BATCH_ID = "batch_68f2a1c9d0e84b7fa3c5e2d1"
PREFIX = f"batches/{BATCH_ID}/"
#: Upload order matters: output.jsonl is what triggers the function.
UPLOAD_ORDER = ("input.jsonl", "trace.json", "errors.jsonl", "output.jsonl")
TABLE = "batchtrace-e2e-idempotency"
ACCOUNT = "123456789012"
STACK = "batchtrace-e2e"
#: What the runtime provides besides the interpreter: the runtime interface client and boto3.
RUNTIME_PACKAGES = ("awslambdaric>=3.1,<5", "boto3")

SAM_BUILD_TIMEOUT_S = 600
PIP_TIMEOUT_S = 300
INVOKE_TIMEOUT_S = 120


# --------------------------------------------------------------------------- the sample batch


def _jsonl_ids(path: Path) -> set[str]:
    return {json.loads(line)["custom_id"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


TRACE_JSON = json.loads((SAMPLES / "trace.json").read_text(encoding="utf-8"))
#: One completion span per custom_id seen in any of the three files (incl. results without a request).
EXPECTED_CUSTOM_IDS = _jsonl_ids(SAMPLES / "input.jsonl") | _jsonl_ids(SAMPLES / "output.jsonl")
EXPECTED_CUSTOM_IDS |= _jsonl_ids(SAMPLES / "errors.jsonl")


# --------------------------------------------------------------------------- sam build


def _python312_runs(env: Mapping[str, str]) -> bool:
    exe = shutil.which("python3.12", path=env.get("PATH"))
    if exe is None:
        return False
    try:
        proc = subprocess.run([exe, "-c", "pass"], env=dict(env), capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def _build_env() -> dict[str, str]:
    """The environment this test got, plus a runnable ``python3.12`` for ``sam build``."""
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0"}
    if _python312_runs(env):
        return env
    pyenv = shutil.which("pyenv")
    if pyenv is not None:
        out = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True, timeout=60, check=False)
        found = [v for v in out.stdout.split() if re.fullmatch(r"3\.12(\.\d+)?", v)]
        if found:
            newest = max(found, key=lambda v: tuple(int(p) for p in v.split(".")))
            env["PYENV_VERSION"] = newest
            if _python312_runs(env):
                return env
    pytest.fail("sam build (without a container) needs python3.12 on PATH; install Python 3.12")


def _text(output: str | bytes | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def _sam() -> str:
    local = Path(sys.executable).with_name("sam")
    found = str(local) if local.exists() else shutil.which("sam")
    if found is None:
        pytest.fail("the sam CLI is not installed (it is in the dev extras: pip install -e '.[dev]')")
    return found


@dataclass(frozen=True)
class Built:
    """The build directory and what its template says about the function."""

    root: Path
    template: dict[str, Any]
    function: dict[str, Any]
    function_dir: Path
    layer_paths: tuple[Path, ...]
    handler: str
    runtime: str
    timeout_s: float
    memory_mb: int


def _prop(template: dict[str, Any], function: dict[str, Any], name: str) -> Any:
    value = function["Properties"].get(name)
    if value is None:
        value = template.get("Globals", {}).get("Function", {}).get(name)
    return value


def _layer_paths(built_root: Path, template: dict[str, Any], function: dict[str, Any]) -> tuple[Path, ...]:
    """Where each of the function's layers puts code on ``sys.path`` (``/opt/python``...)."""
    paths: list[Path] = []
    for ref in _prop(template, function, "Layers") or []:
        assert isinstance(ref, dict) and "Ref" in ref, f"only layers of this template are expected, got {ref!r}"
        layer = template["Resources"][ref["Ref"]]
        content = built_root / layer["Properties"]["ContentUri"]
        runtime = _prop(template, function, "Runtime")
        for sub in (f"python/lib/{runtime}/site-packages", "python"):
            if (content / sub).is_dir():
                paths.append(content / sub)
    return tuple(paths)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """``sam build`` of the working tree's template.yaml into a temporary directory."""
    out = tmp_path_factory.mktemp("sam")
    build_dir = out / "build"
    cmd = [
        _sam(),
        "build",
        "--template-file",
        str(TEMPLATE),
        "--build-dir",
        str(build_dir),
        "--base-dir",
        str(ROOT),
    ]
    started = time.monotonic()
    try:
        proc = subprocess.run(
            cmd,
            cwd=ROOT,
            env=_build_env(),
            capture_output=True,
            text=True,
            timeout=SAM_BUILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"sam build took more than {SAM_BUILD_TIMEOUT_S} s:\n{_text(err.stdout)}\n{_text(err.stderr)}")
    assert proc.returncode == 0, f"sam build failed:\n{proc.stdout}\n{proc.stderr}"
    print(f"sam build took {time.monotonic() - started:.1f} s")

    template = cfn_yaml.loads((build_dir / "template.yaml").read_text(encoding="utf-8"))
    function = template["Resources"][FUNCTION]
    assert function["Type"] == "AWS::Serverless::Function"
    return Built(
        root=build_dir,
        template=template,
        function=function,
        function_dir=build_dir / function["Properties"]["CodeUri"],
        layer_paths=_layer_paths(build_dir, template, function),
        handler=function["Properties"]["Handler"],
        runtime=_prop(template, function, "Runtime"),
        timeout_s=float(_prop(template, function, "Timeout") or 3),
        memory_mb=int(_prop(template, function, "MemorySize") or 128),
    )


# --------------------------------------------------------------------------- the function's environment

_NO_VALUE = object()
_PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::StackName": STACK,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}


class _Resolver:
    """Resolves the intrinsics a function's environment uses, with parameter defaults.

    Handles ``Ref`` (parameters, pseudo parameters, the resources given), ``Fn::If`` with its
    conditions and ``Fn::Sub`` (with or without its own variables). Anything else fails the test with a message
    naming the variable, so a new kind of value gets a conscious decision here.
    """

    def __init__(self, template: dict[str, Any], resources: Mapping[str, str]) -> None:
        self.template = template
        self.resources = resources

    def ref(self, name: str) -> Any:
        params = self.template.get("Parameters", {})
        if name in params:
            return str(params[name].get("Default", ""))
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in _PSEUDO:
            return _PSEUDO[name]
        if name in self.resources:
            return self.resources[name]
        raise LookupError(f"no local value for !Ref {name}")

    def value(self, expr: Any) -> Any:
        if isinstance(expr, bool):
            return str(expr).lower()
        if isinstance(expr, str | int | float):
            return str(expr)
        if isinstance(expr, dict) and len(expr) == 1:
            ((fn, arg),) = expr.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Fn::If":
                condition, then, otherwise = arg
                return self.value(then if self.condition(condition) else otherwise)
            if fn == "Fn::Sub":
                return self._sub(*arg) if isinstance(arg, list) else self._sub(arg, {})
        raise LookupError(f"cannot resolve {expr!r}")

    def _sub(self, text: str, variables: Mapping[str, Any]) -> str:
        """The two-argument ``Fn::Sub``: its own variables first, then parameters and pseudo parameters."""
        values = {name: self.value(expr) for name, expr in variables.items()}
        return re.sub(r"\$\{([^}!]+)\}", lambda m: str(values.get(m.group(1)) or self.ref(m.group(1))), text)

    def condition(self, expr: Any) -> bool:
        if isinstance(expr, str):
            return self.condition(self.template["Conditions"][expr])
        ((fn, arg),) = expr.items()
        if fn == "Condition":
            return self.condition(self.template["Conditions"][arg])
        if fn == "Fn::Not":
            return not self.condition(arg[0])
        if fn == "Fn::And":
            return all(self.condition(a) for a in arg)
        if fn == "Fn::Or":
            return any(self.condition(a) for a in arg)
        if fn == "Fn::Equals":
            return self.value(arg[0]) == self.value(arg[1])
        raise LookupError(f"cannot evaluate condition {expr!r}")


def _template_env(built: Built, resources: Mapping[str, str]) -> dict[str, str]:
    """The function's Environment.Variables as deployed with default parameters."""
    resolver = _Resolver(built.template, resources)
    variables = built.function["Properties"].get("Environment", {}).get("Variables", {})
    env: dict[str, str] = {}
    for name, expr in variables.items():
        try:
            value = resolver.value(expr)
        except LookupError as err:
            pytest.fail(f"environment variable {name}: {err}; give it a local value in this test")
        if value is not _NO_VALUE:
            env[name] = value
    return env


# --------------------------------------------------------------------------- the runtime


@pytest.fixture(scope="session")
def runtime_packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """awslambdaric and boto3 (with their dependencies) alone in a ``--target`` directory."""
    target = tmp_path_factory.mktemp("lambda-runtime") / "site"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        "--only-binary=:all:",
        "--target",
        str(target),
        *RUNTIME_PACKAGES,
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"pip install {RUNTIME_PACKAGES} took more than {PIP_TIMEOUT_S} s:\n{_text(err.stderr)}")
    assert proc.returncode == 0, f"pip install {RUNTIME_PACKAGES} failed:\n{proc.stdout}\n{proc.stderr}"
    return target


def _interpreter(built: Built) -> str:
    """The base interpreter of this venv: same version, but none of the venv's packages."""
    exe = getattr(sys, "_base_executable", None) or sys.executable
    wanted = built.runtime.removeprefix("python")
    have = f"{sys.version_info.major}.{sys.version_info.minor}"
    if have != wanted:
        pytest.fail(f"the template's runtime is {built.runtime} but the tests run on Python {have}")
    return exe


@dataclass
class Runtime:
    """A running ``python -m awslambdaric`` and the Runtime API it talks to."""

    api: LambdaRuntimeApi
    process: subprocess.Popen[bytes]
    log: Path
    #: Size of the log when the last invocation started: failure messages show what came after.
    log_mark: int = 0

    def invoke(self, event: Any, timeout: float = INVOKE_TIMEOUT_S) -> InvocationResult:
        with contextlib.suppress(OSError):
            self.log_mark = self.log.stat().st_size
        return self.api.invoke(event, timeout=timeout)

    def log_tail(self, limit: int = 6000) -> str:
        """The runtime's output since the last invocation started (its last ``limit`` bytes)."""
        with contextlib.suppress(OSError), self.log.open("rb") as f:
            f.seek(self.log_mark)
            return f.read().decode("utf-8", errors="replace")[-limit:]
        return ""

    def explain(self, result: InvocationResult | None = None) -> str:
        parts = [result.describe()] if result is not None else []
        if self.api.protocol_errors:
            parts.append(f"runtime API protocol errors: {self.api.protocol_errors}")
        parts.append(f"--- runtime log ({self.log}) ---\n{self.log_tail()}")
        return "\n".join(parts)


@contextlib.contextmanager
def run_runtime(
    built: Built,
    packages: Path,
    env: Mapping[str, str],
    log: Path,
    *,
    handler: str | None = None,
    pythonpath: list[Path] | None = None,
) -> Iterator[Runtime]:
    """Start the runtime on ``built``'s function like Lambda does; stop it (bounded) afterwards.

    ``pythonpath`` defaults to task root, layers, runtime packages. The process gets a clean
    environment: only what Lambda sets, the template's variables and ``env``.
    """
    handler = handler or built.handler
    if pythonpath is None:
        pythonpath = [built.function_dir, *built.layer_paths, packages]
    name = built.function["Properties"].get("FunctionName") or FUNCTION
    with LambdaRuntimeApi(
        function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        function_timeout_s=built.timeout_s,
    ) as api:
        config_dir = log.parent / "no-aws-config"
        process_env = {
            # What the Lambda service sets.
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": str(built.function_dir),
            "LAMBDA_RUNTIME_DIR": str(packages),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{built.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(built.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2026/01/01/[$LATEST]e2e",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "PYTHONPATH": os.pathsep.join(str(p) for p in pythonpath),
            # Lambda's code directories are read-only.
            "PYTHONDONTWRITEBYTECODE": "1",
            # Never this machine's AWS config or credentials.
            "AWS_CONFIG_FILE": str(config_dir / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(config_dir / "credentials"),
            **env,
        }
        with log.open("wb") as sink:
            # -S: no site-packages of the interpreter; only PYTHONPATH is importable.
            process = subprocess.Popen(
                [_interpreter(built), "-S", "-m", "awslambdaric", handler],
                cwd=built.function_dir,
                env=process_env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        api.watch(process)
        try:
            yield Runtime(api=api, process=process, log=log)
        finally:
            api.watch(None)
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as rx:
        yield rx


@pytest.fixture(scope="module")
def function_env(built: Built, moto: MotoServer, receiver: OtlpReceiver) -> dict[str, str]:
    """The template's environment, with the endpoints pointed at the local servers."""
    env = _template_env(built, {"IdempotencyTable": TABLE})
    if "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT" in env:
        env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = receiver.endpoint
    return {**env, **moto.env()}


@pytest.fixture(scope="module")
def runtime(
    built: Built,
    runtime_packages: Path,
    function_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Runtime]:
    """One warm runtime for the module, as Lambda reuses an execution environment."""
    log = tmp_path_factory.mktemp("runtime") / "runtime.log"
    with run_runtime(built, runtime_packages, function_env, log) as rt:
        yield rt


@pytest.fixture
def s3(moto: MotoServer, receiver: OtlpReceiver) -> Any:
    """Fresh S3 and DynamoDB state with the bucket and the idempotency table; an empty receiver."""
    moto.reset()
    receiver.reset()
    client = moto.client("s3")
    client.create_bucket(Bucket=BUCKET)
    create_idempotency_table(moto.client("dynamodb"), TABLE)
    return client


def _upload(s3: Any, names: tuple[str, ...] = UPLOAD_ORDER) -> None:
    for name in names:
        s3.upload_file(str(SAMPLES / name), BUCKET, f"{PREFIX}{name}")


def _event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- the artifact's contents


def test_layer_contains_the_package_and_its_dependencies(built: Built) -> None:
    assert built.layer_paths, f"{FUNCTION} has no layer with a python/ directory"
    layer = built.layer_paths[-1]
    for module in (
        "batchtrace/__init__.py",
        "opentelemetry/sdk/trace/__init__.py",
        "opentelemetry/exporter/otlp/proto/http/trace_exporter/__init__.py",
        "aws_lambda_powertools/__init__.py",
        "urllib3/__init__.py",
        "orjson/__init__.py",
        "openai/__init__.py",
        "standardwebhooks/__init__.py",
    ):
        assert any((p / module).is_file() for p in built.layer_paths), f"{module} missing from the layer"
    # orjson is compiled: the extension must match the function's Python and architecture.
    version = built.runtime.removeprefix("python").replace(".", "")
    (architecture,) = _prop(built.template, built.function, "Architectures")
    arch = {"x86_64": "x86_64", "arm64": "aarch64"}[architecture]
    extensions = [p.name for lp in built.layer_paths for p in (lp / "orjson").glob("*.so")]
    assert f"orjson.cpython-{version}-{arch}-linux-gnu.so" in extensions, extensions
    # The packaged core is the working tree's, file for file.
    for source in sorted(PACKAGE_SOURCE.glob("*.py")):
        shipped = layer / "batchtrace" / source.name
        assert shipped.is_file(), f"{source.name} missing from the layer's batchtrace package"
        assert shipped.read_bytes() == source.read_bytes(), f"layer's batchtrace/{source.name} differs from source"


def test_function_dir_has_the_handler_modules_and_not_the_package(built: Built) -> None:
    source_modules = {p.name for p in FUNCTION_SOURCE.glob("*.py")}
    built_modules = {p.name for p in built.function_dir.glob("*.py")}
    handler_module = built.handler.rsplit(".", 1)[0].replace(".", "/") + ".py"
    assert handler_module in built_modules, f"{built.handler}: no {handler_module} in {built.function_dir}"
    assert built_modules == source_modules
    # One package, one place: the core lives in the layer only, and no dependency is vendored here.
    packages = sorted(p.name for p in built.function_dir.iterdir() if p.is_dir())
    assert packages == [], f"the function directory should hold only the handler's modules, has {packages}"


# --------------------------------------------------------------------------- invocations


def _assert_sample_trace(receiver: OtlpReceiver, summary: dict[str, Any], rt: Runtime) -> None:
    expected = len(EXPECTED_CUSTOM_IDS) + 1  # the completions and the batch_results span
    assert summary["spans_built"] == expected, summary
    assert summary["spans_exported"] == summary["spans_built"], summary
    assert summary["spans_failed"] == 0, summary
    assert summary["batch_id"] == BATCH_ID
    assert summary["trace_id"] == TRACE_JSON["trace_id"]
    assert receiver.wait_for_spans(expected, timeout=10), rt.explain()
    spans: list[ReceivedSpan] = receiver.spans
    assert len(spans) == expected, f"receiver got {len(spans)} spans, expected {expected}"
    assert len({s.span_id for s in spans}) == expected, "a span was delivered twice"
    assert {s.trace_id for s in spans} == {TRACE_JSON["trace_id"]}
    (root,) = [s for s in spans if s.name == "batch_results"]
    assert root.parent_span_id == TRACE_JSON["span_id"]
    completions = [s for s in spans if s is not root]
    assert all(s.name.startswith("chat ") for s in completions), sorted({s.name for s in completions})
    assert all(s.parent_span_id == root.span_id for s in completions)
    assert {s.attributes.get("batchtrace.custom_id") for s in completions} == EXPECTED_CUSTOM_IDS


@pytest.mark.parametrize("event_file", ["s3-put.json", "eventbridge-object-created.json", "stepfunctions.json"])
def test_event_exports_the_sample_batch(event_file: str, runtime: Runtime, s3: Any, receiver: OtlpReceiver) -> None:
    _upload(s3)
    result = runtime.invoke(_event(event_file))
    assert result.ok, runtime.explain(result)
    assert isinstance(result.payload, dict), result.payload
    _assert_sample_trace(receiver, result.payload, runtime)
    assert runtime.api.protocol_errors == []


def test_redelivered_event_is_not_exported_twice(runtime: Runtime, s3: Any, receiver: OtlpReceiver) -> None:
    """The template's idempotency table is in use: a redelivered S3 event exports nothing new."""
    _upload(s3)
    event = _event("s3-put.json")
    first = runtime.invoke(event)
    assert first.ok, runtime.explain(first)
    _assert_sample_trace(receiver, first.payload, runtime)
    again = runtime.invoke(event)
    assert again.ok, runtime.explain(again)
    assert again.payload == first.payload
    time.sleep(0.5)  # a (wrong) second export would have arrived by now
    assert receiver.span_count == first.payload["spans_built"]


def test_missing_input_file_is_a_typed_error(runtime: Runtime, s3: Any, receiver: OtlpReceiver) -> None:
    _upload(s3, ("trace.json", "errors.jsonl", "output.jsonl"))
    result = runtime.invoke(_event("s3-put.json"))
    assert not result.ok, result.describe()
    assert result.phase == "invoke"
    assert result.error_type == "MissingFileError", runtime.explain(result)
    assert "input" in (result.error_message or ""), result.error_message
    assert receiver.span_count == 0
    assert runtime.process.poll() is None, "a handled error must not kill the runtime"


# --------------------------------------------------------------------------- the test can fail


def test_without_the_layer_the_handler_cannot_be_imported(
    built: Built, runtime_packages: Path, function_env: dict[str, str], tmp_path: Path
) -> None:
    with run_runtime(
        built,
        runtime_packages,
        function_env,
        tmp_path / "runtime.log",
        pythonpath=[built.function_dir, runtime_packages],
    ) as rt:
        result = rt.invoke(_event("s3-put.json"), timeout=60)
    assert not result.ok
    assert result.phase == "init", rt.explain(result)
    assert result.error_type == "Runtime.ImportModuleError", rt.explain(result)
    assert "No module named" in (result.error_message or ""), result.error_message


def test_a_wrong_handler_name_is_an_init_error(
    built: Built, runtime_packages: Path, function_env: dict[str, str], tmp_path: Path
) -> None:
    module = built.handler.rsplit(".", 1)[0]
    with run_runtime(
        built, runtime_packages, function_env, tmp_path / "runtime.log", handler=f"{module}.no_such_handler"
    ) as rt:
        result = rt.invoke(_event("s3-put.json"), timeout=60)
    assert not result.ok
    assert result.phase == "init", rt.explain(result)
    assert result.error_type == "Runtime.HandlerNotFound", rt.explain(result)


def test_a_return_value_that_is_not_json_fails(
    built: Built, runtime_packages: Path, function_env: dict[str, str], tmp_path: Path
) -> None:
    """The runtime, not the harness, rejects it: the same check a real deployment would hit."""
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "not_json_probe.py").write_text(
        "import datetime\n\n\ndef handler(event, context):\n"
        "    return {'finished_at': datetime.datetime.now(datetime.UTC)}\n",
        encoding="utf-8",
    )
    path = [probe, built.function_dir, *built.layer_paths, runtime_packages]
    with run_runtime(
        built,
        runtime_packages,
        function_env,
        tmp_path / "runtime.log",
        handler="not_json_probe.handler",
        pythonpath=path,
    ) as rt:
        result = rt.invoke({}, timeout=60)
    assert not result.ok
    assert result.error_type == "Runtime.MarshalError", rt.explain(result)


# --------------------------------------------------------------------------- paths the sample batch does not take


def test_forked_span_workers_run_in_the_built_function(
    built: Built,
    runtime_packages: Path,
    function_env: dict[str, str],
    s3: Any,
    receiver: OtlpReceiver,
    tmp_path: Path,
) -> None:
    """The sample is below the size that forks span workers; forced, they run under awslambdaric too."""
    _upload(s3)
    env = {**function_env, "BATCHTRACE_WORKERS": "2"}
    with run_runtime(built, runtime_packages, env, tmp_path / "runtime.log") as rt:
        result = rt.invoke(_event("s3-put.json"), timeout=120)
        assert result.ok, rt.explain(result)
        _assert_sample_trace(receiver, result.payload, rt)


def test_the_built_fetch_function_copies_a_batch_and_rejects_a_bad_payload(
    built: Built, runtime_packages: Path, moto: MotoServer, s3: Any, tmp_path: Path
) -> None:
    """The state machine's copy step, built with the same layer: the core and the openai SDK
    resolve there, and it copies a finished batch from an OpenAI API (a fake) into S3."""
    fetch = built.template["Resources"]["FetchBatchFilesFunction"]
    fetch_built = Built(
        root=built.root,
        template=built.template,
        function=fetch,
        function_dir=built.root / fetch["Properties"]["CodeUri"],
        layer_paths=_layer_paths(built.root, built.template, fetch),
        handler=fetch["Properties"]["Handler"],
        runtime=_prop(built.template, fetch, "Runtime"),
        timeout_s=float(_prop(built.template, fetch, "Timeout") or 3),
        memory_mb=int(_prop(built.template, fetch, "MemorySize") or 128),
    )
    module = fetch_built.handler.split(".")[0]
    assert (fetch_built.function_dir / f"{module}.py").is_file()
    assert not (fetch_built.function_dir / "batchtrace").exists(), "the core comes from the layer only"
    secrets = moto.client("secretsmanager")
    api_key = "sk-e2e-" + "Jd83kWq0zPn5Lx7Vb2Tr9Ys4"
    secret_arn = secrets.create_secret(Name="openai-e2e", SecretString=api_key)["ARN"]
    batch = batch_object(BATCH_ID, "completed", output_file_id="file-e2e-out", error_file_id="file-e2e-err")
    with FakeOpenAI(api_key=api_key) as api:
        api.add_file("file-e2e-out", (SAMPLES / "output.jsonl").read_bytes())
        api.add_file("file-e2e-err", (SAMPLES / "errors.jsonl").read_bytes())
        env = {
            **_template_env(fetch_built, {}),
            **moto.env(),
            "OPENAI_API_KEY_SECRET_ARN": secret_arn,
            "OPENAI_BASE_URL": api.base_url,
        }
        with run_runtime(fetch_built, runtime_packages, env, tmp_path / "runtime.log") as rt:
            rejected = rt.invoke({"batch_id": "../not-a-batch"}, timeout=60)
            copied = rt.invoke({"batch_id": BATCH_ID, "bucket": BUCKET, "batch": batch}, timeout=120)
        assert not rejected.ok
        assert rejected.phase == "invoke", rt.explain(rejected)
        assert rejected.error_type == "InvalidBatchPayloadError", rt.explain(rejected)
        assert copied.ok, rt.explain(copied)
        assert api.paths() == ["/v1/files/file-e2e-err/content", "/v1/files/file-e2e-out/content"]
    # The template's BatchPrefix reaches the function as BATCHTRACE_PREFIX: the default layout.
    assert copied.payload["output_key"] == f"{PREFIX}output.jsonl"
    assert copied.payload["errors_key"] == f"{PREFIX}errors.jsonl"
    for name in ("output.jsonl", "errors.jsonl"):
        body = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}{name}")["Body"].read()
        assert body == (SAMPLES / name).read_bytes(), name


def _built_function(built: Built, logical_id: str) -> Built:
    """Another function of the same build, its fixed ``FunctionName`` (a ``!Sub``) resolved as deployed."""
    function = built.template["Resources"][logical_id]
    name = function["Properties"].get("FunctionName")
    if name is not None:
        resolved = _Resolver(built.template, {}).value(name)
        function = {**function, "Properties": {**function["Properties"], "FunctionName": resolved}}
    return Built(
        root=built.root,
        template=built.template,
        function=function,
        function_dir=built.root / function["Properties"]["CodeUri"],
        layer_paths=_layer_paths(built.root, built.template, function),
        handler=function["Properties"]["Handler"],
        runtime=_prop(built.template, function, "Runtime"),
        timeout_s=float(_prop(built.template, function, "Timeout") or 3),
        memory_mb=int(_prop(built.template, function, "MemorySize") or 128),
    )


def test_the_built_webhook_function_answers_openai_and_logs_the_batch_in_the_submitting_trace(
    built: Built, runtime_packages: Path, moto: MotoServer, s3: Any, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """OpenAIWebhookFunction as Lambda runs it: standardwebhooks and the core resolve from the layer, a
    forged request is refused, a signed one is answered and handed to the function itself (through
    the real Lambda Invoke request), and that job copies the batch and logs it in the submitting trace."""
    webhook = _built_function(built, "OpenAIWebhookFunction")
    assert not (webhook.function_dir / "batchtrace").exists(), "the core comes from the layer only"
    api_key, secret = "sk-e2e-" + "Hk29sLw0Pq7Zr4Tn8Vb1", new_secret()
    secrets = moto.client("secretsmanager")
    with FakeOpenAI(api_key=api_key) as api, FakeLambdaInvoke() as lambda_api:
        client = openai.OpenAI(api_key=api_key, base_url=api.base_url, max_retries=0)
        batch = fault_batch(8, batch_id="batch_e2e_placeholder")
        with TracerProvider().get_tracer("e2e").start_as_current_span("submit") as span:
            uploaded = client.files.create(file=("input.jsonl", batch.input_bytes()), purpose="batch")
            created = client.batches.create(
                input_file_id=uploaded.id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                metadata=submission_metadata(),
            )
        batch = fault_batch(8, batch_id=created.id)
        api.finish(created.id, "completed", output_file=batch.output_bytes(), error_file=batch.errors_bytes())
        env = {
            **_template_env(webhook, {"IdempotencyTable": TABLE, "BatchesBucket": BUCKET}),
            **moto.env(),
            "AWS_ENDPOINT_URL_LAMBDA": lambda_api.base_url,
            "OPENAI_BASE_URL": api.base_url,
            "OPENAI_WEBHOOK_SECRET_ARN": secrets.create_secret(Name="wh", SecretString=secret)["ARN"],
            "OPENAI_API_KEY_SECRET_ARN": secrets.create_secret(Name="key", SecretString=api_key)["ARN"],
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint,
        }
        body = batch_event_body(created.id)
        with run_runtime(webhook, runtime_packages, env, tmp_path / "runtime.log") as rt:
            forged = rt.invoke(function_url_event(body, signed_headers(new_secret(), body)), timeout=60)
            accepted = rt.invoke(function_url_event(body, signed_headers(secret, body)), timeout=60)
            assert accepted.ok, rt.explain(accepted)
            (job,) = lambda_api.take()
            logged = rt.invoke(job.payload, timeout=120)
    assert forged.ok and forged.payload["statusCode"] == 401, rt.explain(forged)
    assert accepted.payload["statusCode"] == 200, rt.explain(accepted)
    assert (job.function_name, job.invocation_type) == (webhook.function["Properties"]["FunctionName"], "Event")
    assert logged.ok, rt.explain(logged)
    context = span.get_span_context()
    assert logged.payload["trace_id"] == f"{context.trace_id:032x}", logged.payload
    assert receiver.wait_for_spans(logged.payload["spans_built"], timeout=10), rt.explain(logged)
    root = next(s for s in receiver.spans if s.name == "batch_results")
    assert root.parent_span_id == f"{context.span_id:016x}"
    folder = f"batches/{created.id}/"
    assert s3.get_object(Bucket=BUCKET, Key=folder + "input.jsonl")["Body"].read() == batch.input_bytes()
