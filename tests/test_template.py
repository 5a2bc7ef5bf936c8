"""Static checks of the SAM template, the sample batch and the sample events.

The template is read with cfn-lint's YAML loader, which turns the short intrinsic tags
(`!Ref`, `!Sub`, `!If`, ...) into their long JSON forms (`{"Ref": ...}`, `{"Fn::Sub": ...}`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
SAMPLES = ROOT / "samplefiles"
EVENTS = ROOT / "events"

BATCH_ID = "batch_68f2a1c9d0e84b7fa3c5e2d1"
SAMPLE_BUCKET = "batchtrace-demo"
SAMPLE_PREFIX = f"batches/{BATCH_ID}/"
SAMPLE_OUTPUT_KEY = f"{SAMPLE_PREFIX}output.jsonl"
ORPHAN_ID = "ticket-classify-0099"
FUNCTION = "LogBatchResultsFunction"
FETCH_FUNCTION = "FetchBatchFilesFunction"
STATE_MACHINE = "BatchLifecycleStateMachine"
CONNECTION = "OpenAIConnection"
EVENT_RULE = "LogBatchResultsEventRule"
LAYER = "BatchtraceLayer"
#: Resources that exist only when OpenAIApiKeySecretArn is set.
LIFECYCLE_RESOURCES = (
    FETCH_FUNCTION,
    "FetchBatchFilesLogGroup",
    CONNECTION,
    "BatchLifecycleLogGroup",
    STATE_MACHINE,
)
#: Actions whose APIs take no resource ARN: the only ones allowed on Resource '*'.
RESOURCELESS_ACTIONS = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
}

# Services whose actions touch data; their Allow statements must name resources.
DATA_SERVICES = ("s3", "dynamodb", "secretsmanager", "sqs", "kms", "ssm")


# --------------------------------------------------------------------------- helpers


@cache
def _template() -> dict[str, Any]:
    return cfn_yaml.loads(TEMPLATE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return _template()


def _resource(template: dict[str, Any], logical_id: str, type_: str) -> dict[str, Any]:
    res = template["Resources"].get(logical_id)
    assert res is not None, f"{logical_id} missing from template.yaml"
    assert res["Type"] == type_
    return res


def _of_type(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _is_no_value(node: Any) -> bool:
    return node == {"Ref": "AWS::NoValue"}


def _function_policy_docs(
    template: dict[str, Any], logical_id: str = FUNCTION, type_: str = "AWS::Serverless::Function"
) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """(condition, policy document) of each entry of a resource's Policies; Fn::If unwrapped."""
    policies = _resource(template, logical_id, type_)["Properties"].get("Policies", [])
    for entry in _listify(policies):
        if isinstance(entry, dict) and "Fn::If" in entry:
            condition, then, otherwise = entry["Fn::If"]
            for branch in (then, otherwise):
                if not _is_no_value(branch):
                    yield condition, branch
        else:
            yield None, entry


def _function_statements(
    template: dict[str, Any], logical_id: str = FUNCTION, type_: str = "AWS::Serverless::Function"
) -> list[tuple[str | None, dict[str, Any]]]:
    out = []
    for condition, doc in _function_policy_docs(template, logical_id, type_):
        assert isinstance(doc, dict) and "Statement" in doc, (
            f"{logical_id} policy {doc!r} is not an inline statement document; managed policies and SAM "
            "policy templates are too broad or opaque here"
        )
        for statement in _listify(doc["Statement"]):
            if isinstance(statement, dict) and "Fn::If" in statement:
                for branch in statement["Fn::If"][1:]:
                    if not _is_no_value(branch):
                        out.append((condition, branch))
            else:
                out.append((condition, statement))
    return out


def _refs(node: Any) -> Iterator[str]:
    """Every logical id or parameter the node mentions through Ref, GetAtt or ${...} in Sub."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                yield str(value)
            elif key == "Fn::GetAtt":
                yield str(value[0]) if isinstance(value, list) else str(value).split(".")[0]
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                for name in re.findall(r"\$\{([^}!]+)\}", str(text)):
                    yield name.split(".")[0]
                if isinstance(value, list) and len(value) > 1:
                    yield from _refs(value[1])
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _sub_text(node: Any) -> str:
    if isinstance(node, dict) and "Fn::Sub" in node:
        value = node["Fn::Sub"]
        return str(value[0] if isinstance(value, list) else value)
    return str(node)


def _if_branches(node: Any) -> list[Any]:
    """Every value a node can take, nested Fn::If unwrapped (AWS::NoValue left out)."""
    if isinstance(node, dict) and "Fn::If" in node:
        return [leaf for b in node["Fn::If"][1:] if not _is_no_value(b) for leaf in _if_branches(b)]
    return [node]


def _bucket_names(node: Any) -> list[Any]:
    """The bucket names a ``!Sub [text, {Bucket: ...}]`` ARN can name (each Fn::If branch)."""
    if isinstance(node, dict) and isinstance(node.get("Fn::Sub"), list):
        return _if_branches(node["Fn::Sub"][1].get("Bucket"))
    return []


#: The three names the stack's bucket can have: an existing bucket's, BucketName, or the computed one.
EFFECTIVE_BUCKET_NAMES = [
    {"Ref": "ExistingBucketName"},
    {"Ref": "BucketName"},
    {"Fn::Sub": "${AWS::StackName}-batches-${AWS::AccountId}-${AWS::Region}"},
]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _env(template: dict[str, Any]) -> dict[str, Any]:
    globals_env = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    fn_env = _resource(template, FUNCTION, "AWS::Serverless::Function")["Properties"].get("Environment", {})
    return {**globals_env, **fn_env.get("Variables", {})}


def _fn_prop(template: dict[str, Any], name: str) -> Any:
    props = _resource(template, FUNCTION, "AWS::Serverless::Function")["Properties"]
    if name in props:
        return props[name]
    return template.get("Globals", {}).get("Function", {}).get(name)


def _assert_handler_exists(props: dict[str, Any]) -> None:
    """``Handler`` names a function defined in a module of ``CodeUri`` (what Lambda imports)."""
    module, function = props["Handler"].rsplit(".", 1)
    source = ROOT / props["CodeUri"] / f"{module.replace('.', '/')}.py"
    assert source.is_file(), f"{props['Handler']}: no {source}"
    assert f"def {function}(" in source.read_text(encoding="utf-8"), f"{props['Handler']}: no {function} in {source}"


# --------------------------------------------------------------------------- lint


def _sam_executable() -> str | None:
    local = Path(sys.executable).with_name("sam")
    if local.exists():
        return str(local)
    return shutil.which("sam")


@pytest.mark.slow
def test_sam_validate_lint_passes() -> None:
    sam = _sam_executable()
    if sam is None:
        pytest.skip("sam CLI not installed")
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}
    proc = subprocess.run(
        [sam, "validate", "--lint", "-t", str(TEMPLATE)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"sam validate --lint failed:\n{proc.stdout}\n{proc.stderr}"


def test_cfn_lint_reports_nothing() -> None:
    """The same linter sam validate --lint runs, in-process, including informational rules."""
    from cfnlint.api import ManualArgs, lint

    matches = lint(
        TEMPLATE.read_text(encoding="utf-8"),
        config=ManualArgs(regions=["us-east-1"], include_checks=["I"]),
    )
    assert not matches, "\n".join(str(m) for m in matches)


def test_is_a_sam_template(template: dict[str, Any]) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"


# --------------------------------------------------------------------------- code: function + layer


def test_layer(template: dict[str, Any]) -> None:
    """The layer is built from the package and its pinned dependencies, for the functions' runtime."""
    layer = _resource(template, LAYER, "AWS::Serverless::LayerVersion")
    props = layer["Properties"]
    content = ROOT / props["ContentUri"]
    assert (content / "batchtrace" / "__init__.py").is_file() and (content / "requirements.txt").is_file()
    runtime = _fn_prop(template, "Runtime")
    assert runtime in props["CompatibleRuntimes"]
    assert layer["Metadata"]["BuildMethod"] == runtime


def test_function_code_and_sizing(template: dict[str, Any]) -> None:
    props = _resource(template, FUNCTION, "AWS::Serverless::Function")["Properties"]
    _assert_handler_exists(props)
    assert {"Ref": LAYER} in _listify(props["Layers"])
    # Sized from the benchmark: a whole vCPU (Lambda grants one per 1,769 MB) for CPU-bound work
    # whose 50,000-request peak is ~105 MB; a timeout well past ~10 s of work but below the
    # 15-minute maximum, with the handler's 15 s deadline margin inside it.
    assert _fn_prop(template, "MemorySize") >= 1769
    assert 60 <= _fn_prop(template, "Timeout") <= 900
    assert props["EphemeralStorage"]["Size"] >= 512, "/tmp holds a spooled 200 MB input"


def test_environment(template: dict[str, Any]) -> None:
    env = _env(template)
    expected_refs = {
        "OTEL_SERVICE_NAME": "ServiceName",
        "OTLP_HEADERS_SECRET_ARN": "OtlpHeadersSecretArn",
        "RESPAN_API_KEY_SECRET_ARN": "RespanApiKeySecretArn",
        "RESPAN_BASE_URL": "RespanBaseUrl",
        "BATCHTRACE_CAPTURE_CONTENT": "CaptureContent",
        "BATCHTRACE_TIMESTAMPS": "Timestamps",
        "IDEMPOTENCY_TABLE": "IdempotencyTable",
        "POWERTOOLS_LOG_LEVEL": "LogLevel",
    }
    for name, ref in expected_refs.items():
        assert env.get(name) == {"Ref": ref}, f"{name} should be !Ref {ref}, is {env.get(name)!r}"
    # The core prefers an explicit OTLP endpoint to the Respan shortcut, so the endpoint must be
    # left unset when a Respan key is configured, and be OtlpTracesEndpoint otherwise.
    endpoint = env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    if isinstance(endpoint, dict) and "Fn::If" in endpoint:
        condition, then, otherwise = endpoint["Fn::If"]
        assert _is_no_value(then) and otherwise == {"Ref": "OtlpTracesEndpoint"}
        assert "RespanApiKeySecretArn" in set(_refs(template["Conditions"][condition]))
    else:
        pytest.fail(f"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must be unset when Respan is used: {endpoint!r}")
    # Powertools publishes no metrics without a namespace (and logs the service name on every line).
    assert env["POWERTOOLS_SERVICE_NAME"] and env["POWERTOOLS_METRICS_NAMESPACE"]


# --------------------------------------------------------------------------- secrets


SECRETISH_NAME = re.compile(r"key|secret|token|password|passwd|header|credential|auth", re.I)
SECRETISH_VALUE = re.compile(
    r"(?i)bearer\s|authorization\s*=|api[-_]?key\s*=|\bsk-[A-Za-z0-9_-]{8,}|^[A-Za-z0-9+/_=-]{32,}$"
)


def test_secrets_only_as_arn_parameters(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    for name, param in params.items():
        default = str(param.get("Default", ""))
        assert not SECRETISH_VALUE.search(default), f"parameter {name} has a secret-looking default"
        if SECRETISH_NAME.search(name):
            assert name.endswith("Arn"), f"{name} looks like it carries a secret; pass an ARN instead"
            assert default == "", f"{name} must default to '' (optional)"
            assert str(param.get("AllowedPattern", "")).startswith("^$|^arn:"), f"{name} must only take ARNs"
    for name in ("OtlpHeadersSecretArn", "RespanApiKeySecretArn", "OpenAIApiKeySecretArn"):
        assert ":secretsmanager:" in params[name]["AllowedPattern"]

    env = _env(template)
    for forbidden in ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "RESPAN_API_KEY"):
        assert forbidden not in env, f"{forbidden} would put a secret in plain text in the environment"
    for name, value in env.items():
        if isinstance(value, str):
            assert not SECRETISH_VALUE.search(value), f"env {name} looks like a plain-text secret"
        if SECRETISH_NAME.search(name):
            assert name.endswith("_ARN"), f"env {name} should hold an ARN"


def test_secret_access_is_conditional_and_scoped(template: dict[str, Any]) -> None:
    conditions = template["Conditions"]
    seen = {}
    for condition, statement in _function_statements(template):
        actions = [str(a) for a in _listify(statement["Action"])]
        if not any(a.startswith("secretsmanager:") for a in actions):
            continue
        assert actions == ["secretsmanager:GetSecretValue"]
        resources = _listify(statement["Resource"])
        assert len(resources) == 1 and set(resources[0]) == {"Ref"}, resources
        param = resources[0]["Ref"]
        assert param in {"OtlpHeadersSecretArn", "RespanApiKeySecretArn"}
        # Granted only when the parameter is set.
        assert condition is not None, f"GetSecretValue on {param} must sit under an Fn::If"
        assert param in set(_refs(conditions[condition])), f"condition {condition} does not test {param}"
        seen[param] = condition
    assert set(seen) == {"OtlpHeadersSecretArn", "RespanApiKeySecretArn"}


# --------------------------------------------------------------------------- IAM scope


POLICY_HOLDERS = (
    (FUNCTION, "AWS::Serverless::Function"),
    (FETCH_FUNCTION, "AWS::Serverless::Function"),
    (STATE_MACHINE, "AWS::Serverless::StateMachine"),
    ("OpenAIWebhookFunction", "AWS::Serverless::Function"),
    ("BackfillStateMachine", "AWS::Serverless::StateMachine"),
)


@pytest.mark.parametrize(("logical_id", "type_"), POLICY_HOLDERS, ids=[p[0] for p in POLICY_HOLDERS])
def test_policies_are_least_privilege(template: dict[str, Any], logical_id: str, type_: str) -> None:
    statements = _function_statements(template, logical_id, type_)
    assert statements
    for _, statement in statements:
        assert statement.get("Effect") == "Allow"
        assert "NotAction" not in statement and "NotResource" not in statement
        actions = [str(a) for a in _listify(statement["Action"])]
        for action in actions:
            assert action != "*" and not action.endswith(":*"), f"wildcard action {action}"
        resources = [r for node in _listify(statement["Resource"]) for r in _if_branches(node)]
        if "*" in resources:
            assert set(actions) <= RESOURCELESS_ACTIONS, f"{actions} on Resource '*'"
        if any(a.split(":")[0] in DATA_SERVICES for a in actions):
            assert "*" not in resources, f"{actions} on Resource '*'"
            for r in resources:
                text = _sub_text(r)
                assert not text.endswith(":::*"), f"{actions} on every bucket"


def test_s3_read_limited_to_prefix(template: dict[str, Any]) -> None:
    s3_actions: set[str] = set()
    for _, statement in _function_statements(template):
        actions = {str(a) for a in _listify(statement["Action"])}
        s3 = {a for a in actions if a.startswith("s3:")}
        if not s3:
            continue
        s3_actions |= s3
        resources = [r for node in _listify(statement["Resource"]) for r in _if_branches(node)]
        if s3 & {"s3:GetObject", "s3:GetObjectVersion"}:
            for r in resources:
                text = _sub_text(r)
                assert text.startswith(("arn:${AWS::Partition}:s3:::", "arn:aws:s3:::")), text
                assert text.endswith(("/${BatchPrefix}*", "/${BedrockOutputPrefix}*")), f"beyond the prefixes: {text}"
        for r in resources:
            # The created bucket's name (either way) or the existing bucket's, never another.
            assert _bucket_names(r) == EFFECTIVE_BUCKET_NAMES, r
        if "s3:ListBucket" in s3:
            prefixes = _listify(statement["Condition"]["StringLike"]["s3:prefix"])
            assert sorted(_sub_text(p) for p in prefixes) == ["${BatchPrefix}*", "${BedrockOutputPrefix}*"]
    assert {"s3:GetObject", "s3:GetObjectVersion"} <= s3_actions
    # Read-only: the function never writes, deletes or reconfigures the bucket.
    assert s3_actions <= {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"}, s3_actions


def test_role_does_not_reference_bucket_resource(template: dict[str, Any]) -> None:
    """Bucket -> notification -> permission -> function -> role -> bucket would be a cycle."""
    for _, doc in _function_policy_docs(template):
        assert "BatchesBucket" not in set(_refs(doc))


def test_dynamodb_access_limited_to_idempotency_table(template: dict[str, Any]) -> None:
    found = False
    for _, statement in _function_statements(template):
        actions = {str(a) for a in _listify(statement["Action"])}
        if not any(a.startswith("dynamodb:") for a in actions):
            continue
        found = True
        assert actions <= {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
        assert _listify(statement["Resource"]) == [{"Fn::GetAtt": ["IdempotencyTable", "Arn"]}]
    assert found


# --------------------------------------------------------------------------- storage


def test_bucket_hardening(template: dict[str, Any]) -> None:
    props = _resource(template, "BatchesBucket", "AWS::S3::Bucket")["Properties"]
    pab = props["PublicAccessBlockConfiguration"]
    for flag in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
        assert pab[flag] is True, flag
    rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    algorithms = {r["ServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in rules}
    assert algorithms and algorithms <= {"AES256", "aws:kms", "aws:kms:dsse"}
    assert props["VersioningConfiguration"]["Status"] == "Enabled"
    # A computed name, so that policies can name the bucket without referencing the resource.
    assert "BucketName" in props


def test_bucket_policy_denies_insecure_transport(template: dict[str, Any]) -> None:
    policies = [
        p
        for p in _of_type(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": "BatchesBucket"}
    ]
    assert len(policies) == 1
    statements = _listify(policies[0]["Properties"]["PolicyDocument"]["Statement"])
    tls = [
        s
        for s in statements
        if s["Effect"] == "Deny"
        and str(s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport", "")).lower() == "false"
    ]
    assert tls, "no statement denies aws:SecureTransport=false"
    statement = tls[0]
    assert statement["Principal"] in ("*", {"AWS": "*"})
    assert set(_listify(statement["Action"])) & {"s3:*", "*"}
    resources = [_sub_text(r) for r in _listify(statement["Resource"])]
    assert {"Fn::GetAtt": ["BatchesBucket", "Arn"]} in _listify(statement["Resource"])
    assert "${BatchesBucket.Arn}/*" in resources


def test_idempotency_table(template: dict[str, Any]) -> None:
    props = _resource(template, "IdempotencyTable", "AWS::DynamoDB::Table")["Properties"]
    # Powertools' DynamoDB persistence layer keys records on "id" and expires them on "expiration".
    assert list(props["KeySchema"]) == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert {"AttributeName": "id", "AttributeType": "S"} in props["AttributeDefinitions"]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


# --------------------------------------------------------------------------- trigger + failures


def test_trigger_mode_parameter(template: dict[str, Any]) -> None:
    param = template["Parameters"]["TriggerMode"]
    assert sorted(param["AllowedValues"]) == ["eventbridge", "none", "s3"]
    conditions = template["Conditions"]
    assert conditions["TriggerS3"] == {"Fn::Equals": [{"Ref": "TriggerMode"}, "s3"]}
    assert conditions["TriggerEventBridge"] == {"Fn::Equals": [{"Ref": "TriggerMode"}, "eventbridge"]}
    # Triggers are plain resources switched by conditions (SAM event sources cannot be conditional).
    assert "Events" not in _resource(template, FUNCTION, "AWS::Serverless::Function")["Properties"]


def test_s3_trigger(template: dict[str, Any]) -> None:
    bucket = _resource(template, "BatchesBucket", "AWS::S3::Bucket")
    condition, s3_mode, other = bucket["Properties"]["NotificationConfiguration"]["Fn::If"]
    assert condition == "TriggerS3"
    batches, bedrock_if = s3_mode["LambdaConfigurations"]
    # Bedrock outputs reach the function object by object only when BedrockTrigger is "objects".
    bedrock_condition, bedrock, no_value = bedrock_if["Fn::If"]
    assert bedrock_condition == "BedrockObjectTrigger" and _is_no_value(no_value)
    for config in (batches, bedrock):
        assert config["Event"] == "s3:ObjectCreated:*"
        assert config["Function"] == {"Fn::GetAtt": [FUNCTION, "Arn"]}
    rules = {r["Name"].lower(): r["Value"] for r in batches["Filter"]["S3Key"]["Rules"]}
    assert rules["suffix"] == "output.jsonl"
    assert rules["prefix"] == {"Ref": "BatchPrefix"}
    # Bedrock writes <prefix><job id>/<input name>.jsonl.out (and manifest.json.out, which must not match).
    rules = {r["Name"].lower(): r["Value"] for r in bedrock["Filter"]["S3Key"]["Rules"]}
    assert rules == {"suffix": ".jsonl.out", "prefix": {"Ref": "BedrockOutputPrefix"}}
    # In the other modes: EventBridge notifications, or none at all.
    assert other == {
        "Fn::If": [
            "TriggerEventBridge",
            {"EventBridgeConfiguration": {"EventBridgeEnabled": True}},
            {"Ref": "AWS::NoValue"},
        ]
    }
    # S3 validates the destination when the notification is set: the permission must exist first.
    permission_id = bucket["DependsOn"] if isinstance(bucket["DependsOn"], str) else bucket["DependsOn"][0]
    permission = _resource(template, permission_id, "AWS::Lambda::Permission")
    assert permission["Condition"] == bucket["Condition"] == "CreateBucket"
    props = permission["Properties"]
    assert props["Principal"] == "s3.amazonaws.com"
    assert props["Action"] == "lambda:InvokeFunction"
    assert props["FunctionName"] == {"Ref": FUNCTION}
    assert props["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert _sub_text(props["SourceArn"]) == "arn:${AWS::Partition}:s3:::${Bucket}"
    assert _bucket_names(props["SourceArn"]) == EFFECTIVE_BUCKET_NAMES[1:]


def test_eventbridge_trigger(template: dict[str, Any]) -> None:
    rule = _resource(template, EVENT_RULE, "AWS::Events::Rule")
    assert rule["Condition"] == "TriggerEventBridge"
    props = rule["Properties"]
    assert props["State"] == "ENABLED"
    pattern = props["EventPattern"]
    assert pattern["source"] == ["aws.s3"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"] == [
        {"Fn::If": ["HasExistingBucket", {"Ref": "ExistingBucketName"}, {"Ref": "BatchesBucket"}]}
    ]
    # One wildcard matches prefix AND suffix (separate prefix/suffix matchers would be OR'ed).
    key_filter, bedrock_if = pattern["detail"]["object"]["key"]
    bedrock_condition, bedrock_filter, no_value = bedrock_if["Fn::If"]
    assert bedrock_condition == "BedrockObjectTrigger" and _is_no_value(no_value)
    bedrock_text, bedrock_variables = bedrock_filter["wildcard"]["Fn::Sub"]
    assert bedrock_text == "${Prefix}*.jsonl.out"
    assert bedrock_variables["Prefix"] == {"Fn::Join": ["\\*", {"Fn::Split": ["*", {"Ref": "BedrockOutputPrefix"}]}]}
    text, variables = key_filter["wildcard"]["Fn::Sub"]
    assert text == "${Prefix}*/output.jsonl", "the rule must only match output.jsonl files"
    assert text.endswith("output.jsonl")
    # A literal '*' in the prefix is escaped for the wildcard matcher.
    assert variables["Prefix"] == {"Fn::Join": ["\\*", {"Fn::Split": ["*", {"Ref": "BatchPrefix"}]}]}
    (target,) = props["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [FUNCTION, "Arn"]}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86400

    permissions = [
        r
        for r in _of_type(template, "AWS::Lambda::Permission").values()
        if r["Properties"]["Principal"] == "events.amazonaws.com" and r["Condition"] == "TriggerEventBridge"
    ]
    assert len(permissions) == 1
    assert permissions[0]["Condition"] == "TriggerEventBridge"
    assert permissions[0]["Properties"]["SourceArn"] == {"Fn::GetAtt": [EVENT_RULE, "Arn"]}
    assert permissions[0]["Properties"]["FunctionName"] == {"Ref": FUNCTION}

    # The rule's dead letters may reach the DLQ, from this rule only.
    queue_policy = _resource(template, "DeadLetterQueuePolicy", "AWS::SQS::QueuePolicy")
    statements = queue_policy["Properties"]["PolicyDocument"]["Statement"]
    allows = [
        b
        for s in statements
        if s.get("Fn::If", [None])[0] == "TriggerEventBridge"
        for b in _if_branches(s)
        if b.get("Effect") == "Allow"
    ]
    assert len(allows) == 1
    assert allows[0]["Principal"] == {"Service": "events.amazonaws.com"}
    assert allows[0]["Action"] == "sqs:SendMessage"
    assert allows[0]["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Fn::GetAtt": [EVENT_RULE, "Arn"]}


BEDROCK_JOB_RULE = "BedrockJobStateRule"


def test_bedrock_jobs_are_logged_by_one_path_at_a_time(template: dict[str, Any]) -> None:
    param = template["Parameters"]["BedrockTrigger"]
    assert sorted(param["AllowedValues"]) == ["job", "none", "objects"]
    assert param["Default"] == "job", "the job signal is the recommended path"
    conditions = template["Conditions"]
    # Both conditions test the one parameter for different values: never both paths at once.
    assert conditions["BedrockJobTrigger"] == {"Fn::Equals": [{"Ref": "BedrockTrigger"}, "job"]}
    assert conditions["BedrockObjectTrigger"] == {"Fn::Equals": [{"Ref": "BedrockTrigger"}, "objects"]}
    rule = _resource(template, BEDROCK_JOB_RULE, "AWS::Events::Rule")
    assert rule["Condition"] == "BedrockJobTrigger"
    objects = json.dumps([template["Resources"]["BatchesBucket"], template["Resources"][EVENT_RULE]])
    assert objects.count(".jsonl.out") == objects.count('"BedrockObjectTrigger"') == 2


def test_bedrock_job_rule(template: dict[str, Any]) -> None:
    from batchtrace.sources.bedrock_job import FINAL_STATUSES

    props = _resource(template, BEDROCK_JOB_RULE, "AWS::Events::Rule")["Properties"]
    pattern = props["EventPattern"]
    # Final states only: the function reads the job once it has stopped changing.
    assert (props["State"], set(pattern["detail"]["status"])) == ("ENABLED", FINAL_STATUSES)
    sample = json.loads((EVENTS / "eventbridge-bedrock-job-state-change.json").read_text(encoding="utf-8"))
    matched = (sample["source"], sample["detail-type"], sample["detail"]["status"])
    assert matched in {(s, d, st) for s in pattern["source"] for d in pattern["detail-type"] for st in FINAL_STATUSES}
    (target,) = props["Targets"]
    assert (target["Arn"], target["DeadLetterConfig"]["Arn"]) == (
        {"Fn::GetAtt": [FUNCTION, "Arn"]},
        {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
    )


def test_bedrock_job_rule_may_invoke_the_function_and_dead_letter(template: dict[str, Any]) -> None:
    rule_arn = {"Fn::GetAtt": [BEDROCK_JOB_RULE, "Arn"]}
    permissions = _of_type(template, "AWS::Lambda::Permission").values()
    (permission,) = [r for r in permissions if r["Properties"].get("SourceArn") == rule_arn]
    assert (permission["Condition"], permission["Properties"]["Principal"]) == (
        "BedrockJobTrigger",
        "events.amazonaws.com",
    )
    statements = _resource(template, "DeadLetterQueuePolicy", "AWS::SQS::QueuePolicy")["Properties"]["PolicyDocument"]
    dead_letters = [s["Fn::If"] for s in statements["Statement"] if "Fn::If" in s]
    sources = {(c, then["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::GetAtt"][0]) for c, then, _ in dead_letters}
    assert ("BedrockJobTrigger", BEDROCK_JOB_RULE) in sources


def test_bedrock_job_reading_is_scoped_to_the_accounts_jobs(template: dict[str, Any]) -> None:
    found = [
        (c, s)
        for c, s in _function_statements(template)
        if any(str(a).startswith("bedrock:") for a in _listify(s["Action"]))
    ]
    ((condition, statement),) = found
    assert condition == "BedrockJobTrigger"
    assert set(statement["Action"]) == {"bedrock:GetModelInvocationJob", "bedrock:ListTagsForResource"}
    assert _sub_text(statement["Resource"]) == (
        "arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:model-invocation-job/*"
    )
    # Which jobs are this stack's: those writing under the bucket's Bedrock prefix.
    uri = _env(template)["BATCHTRACE_BEDROCK_OUTPUT_URI"]
    assert _sub_text(uri) == "s3://${Bucket}/${BedrockOutputPrefix}"
    assert _bucket_names(uri) == EFFECTIVE_BUCKET_NAMES


def test_existing_bucket_option(template: dict[str, Any]) -> None:
    param = template["Parameters"]["ExistingBucketName"]
    assert param["Default"] == ""
    assert param["AllowedPattern"] == template["Parameters"]["BucketName"]["AllowedPattern"]
    conditions = template["Conditions"]
    assert conditions["CreateBucket"] == {"Fn::Equals": [{"Ref": "ExistingBucketName"}, ""]}
    for logical_id in ("BatchesBucket", "BatchesBucketPolicy"):
        assert template["Resources"][logical_id]["Condition"] == "CreateBucket"
    # An existing bucket cannot get an S3 notification from this stack, nor be combined with BucketName.
    rule = template["Rules"]["ExistingBucketNeedsEventBridgeOrNone"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ExistingBucketName"}, ""]}]}
    asserts = [a["Assert"] for a in rule["Assertions"]]
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "TriggerMode"}, "s3"]}]} in asserts
    assert {"Fn::Equals": [{"Ref": "BucketName"}, ""]} in asserts
    assert all(a["AssertDescription"] for a in rule["Assertions"])
    # Whatever mode, the output names the bucket in use.
    value = template["Outputs"]["BatchesBucketName"]["Value"]
    assert value == {"Fn::If": ["HasExistingBucket", {"Ref": "ExistingBucketName"}, {"Ref": "BatchesBucket"}]}


def test_failed_async_invocations_go_to_encrypted_dlq(template: dict[str, Any]) -> None:
    config = _resource(template, FUNCTION, "AWS::Serverless::Function")["Properties"]["EventInvokeConfig"]
    assert config["MaximumRetryAttempts"] >= 1, "a failed invocation is retried before it is dead-lettered"
    on_failure = config["DestinationConfig"]["OnFailure"]
    assert on_failure["Type"] == "SQS"
    queue_id = on_failure["Destination"]["Fn::GetAtt"][0]
    queue = _resource(template, queue_id, "AWS::SQS::Queue")["Properties"]
    assert queue.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in queue


def test_reserved_concurrency(template: dict[str, Any]) -> None:
    value = _resource(template, FUNCTION, "AWS::Serverless::Function")["Properties"]["ReservedConcurrentExecutions"]
    condition, then, otherwise = value["Fn::If"]
    assert then == {"Ref": "ReservedConcurrency"}
    assert _is_no_value(otherwise)
    assert "ReservedConcurrency" in set(_refs(template["Conditions"][condition]))


def test_log_groups_with_retention(template: dict[str, Any]) -> None:
    groups = _of_type(template, "AWS::Logs::LogGroup")
    assert set(groups) == {
        "LogBatchResultsLogGroup",
        "FetchBatchFilesLogGroup",
        "BatchLifecycleLogGroup",
        "OpenAIWebhookLogGroup",
        "BackfillLogGroup",
    }
    for group in groups.values():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
    assert _fn_prop(template, "LoggingConfig")["LogGroup"] == {"Ref": "LogBatchResultsLogGroup"}
    fetch = _resource(template, FETCH_FUNCTION, "AWS::Serverless::Function")["Properties"]
    assert fetch["LoggingConfig"]["LogGroup"] == {"Ref": "FetchBatchFilesLogGroup"}
    # Vended-log prefix: keeps CloudWatch Logs' resource policy small.
    assert _sub_text(groups["BatchLifecycleLogGroup"]["Properties"]["LogGroupName"]).startswith(
        "/aws/vendedlogs/states/"
    )


def test_outputs(template: dict[str, Any]) -> None:
    refs = {r for o in template["Outputs"].values() for r in _refs(o["Value"])}
    assert {"BatchesBucket", "ExistingBucketName", FUNCTION, LAYER, "IdempotencyTable"} <= refs
    assert {STATE_MACHINE, FETCH_FUNCTION} <= refs
    for name, output in template["Outputs"].items():
        if {STATE_MACHINE, FETCH_FUNCTION} & set(_refs(output["Value"])):
            assert output.get("Condition") == "EnableLifecycle", name
    queue_id = _resource(template, FUNCTION, "AWS::Serverless::Function")["Properties"]["EventInvokeConfig"][
        "DestinationConfig"
    ]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    values = [o["Value"] for o in template["Outputs"].values()]
    assert {"Ref": queue_id} in values, "DLQ URL output missing"
    assert {"Fn::GetAtt": [FUNCTION, "Arn"]} in values


# --------------------------------------------------------------------------- sample files


@pytest.fixture(scope="module")
def samples() -> dict[str, Any]:
    return {
        "input": _read_jsonl(SAMPLES / "input.jsonl"),
        "output": _read_jsonl(SAMPLES / "output.jsonl"),
        "errors": _read_jsonl(SAMPLES / "errors.jsonl"),
        "trace": json.loads((SAMPLES / "trace.json").read_text(encoding="utf-8")),
    }


def test_sample_input(samples: dict[str, Any]) -> None:
    requests = samples["input"]
    assert 10 <= len(requests) <= 15
    ids = [r["custom_id"] for r in requests]
    assert len(ids) == len(set(ids))
    for r in requests:
        assert r["method"] == "POST"
        assert r["url"] == "/v1/chat/completions"
        assert r["body"]["messages"]
    assert any(" " in i and "/" in i and not i.isascii() for i in ids)
    assert any(m["role"] == "system" for r in requests for m in r["body"]["messages"])
    assert any("tools" in r["body"] for r in requests)


def test_sample_results_match_requests(samples: dict[str, Any]) -> None:
    request_ids = [r["custom_id"] for r in samples["input"]]
    output_ids = [r["custom_id"] for r in samples["output"]]
    error_ids = [r["custom_id"] for r in samples["errors"]]
    orphans = [i for i in output_ids + error_ids if i not in request_ids]
    assert orphans == [ORPHAN_ID], "exactly one deliberate orphan result, in output.jsonl"
    assert len(output_ids + error_ids) == len(set(output_ids + error_ids)), "no duplicate results"
    no_result = set(request_ids) - set(output_ids) - set(error_ids)
    assert no_result, "at least one request must get no result at all"
    # OpenAI's output is in no particular order; the sample must not be either.
    matched = [i for i in output_ids if i in request_ids]
    assert matched != sorted(matched, key=request_ids.index)


def test_sample_output_lines(samples: dict[str, Any]) -> None:
    batch = samples["trace"]["batch"]
    finish_reasons = set()
    for line in samples["output"]:
        assert line["id"].startswith("batch_req_")
        assert line["error"] is None
        response = line["response"]
        assert response["status_code"] == 200
        body = response["body"]
        assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
        assert batch["in_progress_at"] <= body["created"] <= batch["completed_at"]
        usage = body["usage"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        finish_reasons |= {c["finish_reason"] for c in body["choices"]}
    assert {"stop", "tool_calls", "length"} <= finish_reasons
    tool_calls = [
        c["message"]["tool_calls"]
        for line in samples["output"]
        for c in line["response"]["body"]["choices"]
        if c["message"].get("tool_calls")
    ]
    assert tool_calls
    for calls in tool_calls:
        for call in calls:
            json.loads(call["function"]["arguments"])


def test_sample_error_lines(samples: dict[str, Any]) -> None:
    expired = [e for e in samples["errors"] if e["response"] is None]
    http = [e for e in samples["errors"] if e["response"] is not None]
    assert expired and all(e["error"]["code"] == "batch_expired" for e in expired)
    assert {e["response"]["status_code"] for e in http} >= {400}
    for e in http:
        assert e["response"]["status_code"] >= 400
        assert e["error"] is None
        assert {"message", "type", "param", "code"} <= set(e["response"]["body"]["error"])


def test_sample_trace_json(samples: dict[str, Any]) -> None:
    trace = samples["trace"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace["trace_id"]) and set(trace["trace_id"]) != {"0"}
    assert re.fullmatch(r"[0-9a-f]{16}", trace["span_id"]) and set(trace["span_id"]) != {"0"}
    batch = trace["batch"]
    assert batch["id"] == BATCH_ID and batch["object"] == "batch"
    assert batch["status"] == "completed" and batch["completion_window"] == "24h"
    assert batch["created_at"] < batch["in_progress_at"] < batch["finalizing_at"] < batch["completed_at"]
    counts = batch["request_counts"]
    assert counts["total"] == len(samples["input"])
    assert counts["completed"] == len(samples["output"])
    assert counts["failed"] == len(samples["errors"])


# --------------------------------------------------------------------------- events


def _event_location(event: dict[str, Any]) -> tuple[str, str]:
    if "Records" in event:
        s3 = event["Records"][0]["s3"]
        return s3["bucket"]["name"], s3["object"]["key"]
    if event.get("detail-type") == "Object Created":
        return event["detail"]["bucket"]["name"], event["detail"]["object"]["key"]
    return event["bucket"], event["output_key"]


@pytest.mark.parametrize(
    "path", sorted(p for p in EVENTS.glob("*.json") if "bedrock" not in p.name), ids=lambda p: p.name
)
def test_event_names_sample_batch(path: Path) -> None:
    event = json.loads(path.read_text(encoding="utf-8"))
    assert _event_location(event) == (SAMPLE_BUCKET, SAMPLE_OUTPUT_KEY)


def test_expected_events_present() -> None:
    names = {p.name for p in EVENTS.glob("*.json")}
    assert {"s3-put.json", "eventbridge-object-created.json", "stepfunctions.json"} <= names


def test_s3_events_describe_sample_output() -> None:
    size = (SAMPLES / "output.jsonl").stat().st_size
    s3 = json.loads((EVENTS / "s3-put.json").read_text(encoding="utf-8"))["Records"][0]
    assert s3["eventSource"] == "aws:s3" and s3["eventName"].startswith("ObjectCreated:")
    assert s3["s3"]["object"]["size"] == size
    for field in ("eTag", "versionId", "sequencer"):
        assert s3["s3"]["object"][field]
    eb = json.loads((EVENTS / "eventbridge-object-created.json").read_text(encoding="utf-8"))
    assert eb["source"] == "aws.s3"
    assert eb["detail"]["object"]["size"] == size
    for field in ("etag", "version-id", "sequencer"):
        assert eb["detail"]["object"][field]


def test_stepfunctions_event_matches_trace_json(samples: dict[str, Any]) -> None:
    payload = json.loads((EVENTS / "stepfunctions.json").read_text(encoding="utf-8"))
    assert payload["batch_id"] == BATCH_ID
    assert payload["input_key"] == f"{SAMPLE_PREFIX}input.jsonl"
    assert payload["errors_key"] == f"{SAMPLE_PREFIX}errors.jsonl"
    assert payload["trace_id"] == samples["trace"]["trace_id"]
    assert payload["span_id"] == samples["trace"]["span_id"]


def test_state_machine_execution_input_matches_trace_json(samples: dict[str, Any]) -> None:
    # Beside the definition, not in events/: it is the state machine's input, not a function event.
    execution_input = json.loads((ROOT / "statemachine" / "sample-execution-input.json").read_text(encoding="utf-8"))
    assert execution_input["batch_id"] == BATCH_ID
    assert execution_input["trace_id"] == samples["trace"]["trace_id"]
    assert execution_input["span_id"] == samples["trace"]["span_id"]
    # Bucket and prefix default to the stack's; the sample keeps to the defaults.
    assert set(execution_input) <= {"batch_id", "bucket", "prefix", "trace_id", "span_id", "traceparent"}


# --------------------------------------------------------------------------- batch lifecycle


def test_lifecycle_is_optional_and_off_by_default(template: dict[str, Any]) -> None:
    param = template["Parameters"]["OpenAIApiKeySecretArn"]
    assert param["Default"] == ""
    assert template["Conditions"]["EnableLifecycle"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "OpenAIApiKeySecretArn"}, ""]}]
    }
    for logical_id in LIFECYCLE_RESOURCES:
        assert template["Resources"][logical_id].get("Condition") == "EnableLifecycle", logical_id
    # Nothing outside the lifecycle needs it, but what exists only with it (the backfill).
    assert {"Condition": "EnableLifecycle"} in template["Conditions"]["BackfillEnabled"]["Fn::And"]
    for logical_id, resource in template["Resources"].items():
        if logical_id not in LIFECYCLE_RESOURCES and resource.get("Condition") != "BackfillEnabled":
            assert not {FETCH_FUNCTION, STATE_MACHINE, CONNECTION} & set(_refs(resource)), logical_id


def test_state_machine_is_standard_and_defined_in_its_own_file(template: dict[str, Any]) -> None:
    props = _resource(template, STATE_MACHINE, "AWS::Serverless::StateMachine")["Properties"]
    # Express workflows end after 5 minutes; a batch runs for up to 24 hours.
    assert props["Type"] == "STANDARD"
    assert (ROOT / props["DefinitionUri"]).is_file()
    assert "Definition" not in props
    subs = props["DefinitionSubstitutions"]
    assert subs["FetchBatchFilesFunctionArn"] == {"Fn::GetAtt": [FETCH_FUNCTION, "Arn"]}
    assert subs["LogBatchResultsFunctionArn"] == {"Fn::GetAtt": [FUNCTION, "Arn"]}
    assert subs["OpenAIConnectionArn"] == {"Fn::GetAtt": [CONNECTION, "Arn"]}
    assert subs["PollIntervalSeconds"] == {"Ref": "PollIntervalSeconds"}
    assert subs["BatchPrefix"] == {"Ref": "BatchPrefix"}
    assert subs["OpenAIBaseUrl"] == {"Ref": "OpenAIBaseUrl"}
    # A fixed name, made of parameters only: the role names the state machine's ARN without depending on it.
    assert all(ref.startswith("AWS::") or ref in template["Parameters"] for ref in _refs(props["Name"]))

    logging = props["Logging"]
    assert logging["Level"] == {"Ref": "StateMachineLogLevel"}
    assert logging["Destinations"] == [
        {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": ["BatchLifecycleLogGroup", "Arn"]}}}
    ]
    assert props["Tracing"] == {"Enabled": {"Fn::If": ["LifecycleTracing", True, False]}}

    interval = template["Parameters"]["PollIntervalSeconds"]
    assert interval["MinValue"] >= 60  # the history budget is checked in test_state_machine_definition.py


def test_openai_key_reaches_the_connection_only_by_dynamic_reference(template: dict[str, Any]) -> None:
    props = _resource(template, CONNECTION, "AWS::Events::Connection")["Properties"]
    assert props["AuthorizationType"] == "API_KEY"
    auth = props["AuthParameters"]["ApiKeyAuthParameters"]
    assert auth["ApiKeyName"] == "Authorization"
    assert auth["ApiKeyValue"] == {"Fn::Sub": "Bearer {{resolve:secretsmanager:${OpenAIApiKeySecretArn}:SecretString}}"}
    text = json.dumps(template)
    assert not re.search(r"\bsk-[A-Za-z0-9_-]{8,}", text), "an OpenAI key in the template"
    fetch_env = _resource(template, FETCH_FUNCTION, "AWS::Serverless::Function")["Properties"]["Environment"][
        "Variables"
    ]
    assert fetch_env["OPENAI_API_KEY_SECRET_ARN"] == {"Ref": "OpenAIApiKeySecretArn"}
    assert fetch_env["OPENAI_BASE_URL"] == {"Ref": "OpenAIBaseUrl"}
    for name, value in fetch_env.items():
        if SECRETISH_NAME.search(name):
            assert name.endswith("_ARN"), name
        if isinstance(value, str):
            assert not SECRETISH_VALUE.search(value), name


def test_openai_base_url_defaults_to_the_sdks(template: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """OPENAI_BASE_URL has the openai SDK's meaning (it includes /v1): the parameter's default is the SDK's own."""
    import openai

    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    sdk_default = str(openai.OpenAI(api_key="sk-unused").base_url).rstrip("/")
    assert template["Parameters"]["OpenAIBaseUrl"]["Default"] == sdk_default


def test_fetch_function(template: dict[str, Any]) -> None:
    props = _resource(template, FETCH_FUNCTION, "AWS::Serverless::Function")["Properties"]
    _assert_handler_exists(props)
    assert {"Ref": LAYER} in _listify(props["Layers"])
    assert "EventInvokeConfig" not in props, "invoked synchronously by the state machine only"

    s3_actions: set[str] = set()
    for condition, statement in _function_statements(template, FETCH_FUNCTION):
        if condition == "BackfillEnabled":
            continue  # the backfill's input files: test_backfill_copies_input_files_only_when_enabled
        actions = {str(a) for a in _listify(statement["Action"])}
        resources = [r for node in _listify(statement["Resource"]) for r in _if_branches(node)]
        if any(a.startswith("s3:") for a in actions):
            s3_actions |= actions
            # The three files it writes, under the prefix, in the stack's bucket.
            assert sorted(_sub_text(r) for r in resources) == [
                "arn:${AWS::Partition}:s3:::${Bucket}/${BatchPrefix}*/batch.json",
                "arn:${AWS::Partition}:s3:::${Bucket}/${BatchPrefix}*/errors.jsonl",
                "arn:${AWS::Partition}:s3:::${Bucket}/${BatchPrefix}*/output.jsonl",
            ]
            for r in resources:
                assert _bucket_names(r) == EFFECTIVE_BUCKET_NAMES
            assert "BatchesBucket" not in set(_refs(statement))
        elif any(a.startswith("secretsmanager:") for a in actions):
            assert actions == {"secretsmanager:GetSecretValue"}
            assert resources == [{"Ref": "OpenAIApiKeySecretArn"}]
        elif any(a.startswith("kms:") for a in actions):
            assert condition == "FetchNeedsSecretsKmsKey"
            assert statement["Condition"]["StringEquals"]["kms:ViaService"]
        else:
            pytest.fail(f"unexpected statement {statement}")
    assert s3_actions == {"s3:PutObject", "s3:AbortMultipartUpload", "s3:GetObject"}


def test_state_machine_role_is_scoped(template: dict[str, Any]) -> None:
    statements = {
        s["Sid"]: (c, s) for c, s in _function_statements(template, STATE_MACHINE, "AWS::Serverless::StateMachine")
    }
    _, invoke = statements["InvokeBatchtraceFunctions"]
    assert invoke["Action"] == "lambda:InvokeFunction"
    assert invoke["Resource"] == [
        {"Fn::GetAtt": [FETCH_FUNCTION, "Arn"]},
        {"Fn::Sub": "${FetchBatchFilesFunction.Arn}:*"},
        {"Fn::GetAtt": [FUNCTION, "Arn"]},
        {"Fn::Sub": "${LogBatchResultsFunction.Arn}:*"},
    ]
    _, http = statements["PollOpenAIBatches"]
    assert http["Action"] == "states:InvokeHTTPEndpoint"
    name = _resource(template, STATE_MACHINE, "AWS::Serverless::StateMachine")["Properties"]["Name"]
    assert _sub_text(http["Resource"]).endswith(f":stateMachine:{_sub_text(name)}"), "the role names this machine"
    assert http["Condition"]["StringEquals"] == {"states:HTTPMethod": "GET"}
    assert http["Condition"]["StringLike"] == {"states:HTTPEndpoint": {"Fn::Sub": "${OpenAIBaseUrl}/batches/*"}}
    _, credentials = statements["UseOpenAIConnection"]
    assert credentials["Action"] == "events:RetrieveConnectionCredentials"
    assert {next(iter(_refs(r))) for r in credentials["Resource"]} == {CONNECTION}
    _, secret = statements["ReadOpenAIConnectionSecret"]
    assert set(secret["Action"]) == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
    assert secret["Resource"] == {"Fn::GetAtt": [CONNECTION, "SecretArn"]}
    tracing = [c for c, s in statements.values() if any(str(a).startswith("xray:") for a in _listify(s["Action"]))]
    assert tracing == ["LifecycleTracing"]
    lambda_targets = {
        r
        for _, s in statements.values()
        if "lambda:InvokeFunction" in _listify(s["Action"])
        for node in _listify(s["Resource"])
        for r in _refs(node)
    }
    assert lambda_targets == {FETCH_FUNCTION, FUNCTION}


# --------------------------------------------------------------------------- backfill (Distributed Map)

BACKFILL = "BackfillStateMachine"


def _backfill_definition() -> dict[str, Any]:
    from tests.support.sfn_walker import BACKFILL_STATE_MACHINE, BACKFILL_SUBSTITUTIONS, load_definition

    return load_definition(BACKFILL_SUBSTITUTIONS, BACKFILL_STATE_MACHINE)


def test_backfill_is_optional_and_needs_the_lifecycle(template: dict[str, Any]) -> None:
    assert template["Parameters"]["EnableBackfill"]["Default"] == "false"
    assert template["Conditions"]["BackfillEnabled"] == {
        "Fn::And": [{"Condition": "EnableLifecycle"}, {"Fn::Equals": [{"Ref": "EnableBackfill"}, "true"]}]
    }
    for logical_id in (BACKFILL, "BackfillLogGroup"):
        assert template["Resources"][logical_id]["Condition"] == "BackfillEnabled", logical_id
    assert template["Outputs"]["BackfillStateMachineArn"]["Condition"] == "BackfillEnabled"
    # Asking for it without an OpenAI key is a deploy-time error, not a silently missing machine.
    rule = template["Rules"]["BackfillNeedsTheLifecycle"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "EnableBackfill"}, "true"]}
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "OpenAIApiKeySecretArn"}, ""]}]}


def test_backfill_limits_are_the_stacks(template: dict[str, Any]) -> None:
    props = _resource(template, BACKFILL, "AWS::Serverless::StateMachine")["Properties"]
    assert props["Type"] == "STANDARD"
    names = ("BackfillMaxConcurrency", "BackfillToleratedFailurePercentage")
    assert [props["DefinitionSubstitutions"][name] for name in names] == [{"Ref": name} for name in names]
    bounds = [(template["Parameters"][name]["MinValue"], template["Parameters"][name]["MaxValue"]) for name in names]
    assert bounds == [(1, 1000), (0, 100)], "bounded concurrency; a percentage"
    # Set before the input is merged, out of the input's reach.
    states = _backfill_definition()["States"]
    assert states["ApplyDefaults"]["Parameters"]["limits"] == {
        "max_concurrency.$": "States.StringToJson('5')",
        "tolerated_failure_percentage.$": "States.StringToJson('5')",
    }
    assert states["ResolveInput"]["Parameters"]["limits.$"] == "$.limits"


def _map_facts(state: dict[str, Any]) -> tuple[Any, ...]:
    return (
        state["ItemProcessor"]["ProcessorConfig"],
        state["MaxConcurrencyPath"],
        state["ToleratedFailurePercentagePath"],
        state["ResultWriter"],
    )


def test_backfill_maps_are_distributed_bounded_tolerant_and_write_results() -> None:
    states = _backfill_definition()["States"]
    maps = {name: state for name, state in states.items() if state["Type"] == "Map"}
    # Child executions copy files of up to 200 MB: Standard (Express stops at 5 minutes).
    expected = (
        {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "$.limits.max_concurrency",
        "$.limits.tolerated_failure_percentage",
        {
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": "batchtrace-demo", "Prefix": "backfill/results"},
        },
    )
    assert {name: _map_facts(state) for name, state in maps.items()} == {
        "BackfillFromManifest": expected,
        "BackfillFromList": expected,
    }
    processors = {json.dumps(state["ItemProcessor"], sort_keys=True) for state in maps.values()}
    assert len(processors) == 1, "a manifest and a list run the same per-batch workflow"


def test_backfill_reads_a_manifest_in_the_bucket_or_a_list() -> None:
    states = _backfill_definition()["States"]
    assert states["BackfillFromManifest"]["ItemReader"] == {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSON"},
        "Parameters": {"Bucket": "batchtrace-demo", "Key.$": "$.job.manifest"},
    }
    assert states["BackfillFromList"]["ItemsPath"] == "$.job.batch_ids"


def _backfill_statements(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for _, s in _function_statements(template, BACKFILL, "AWS::Serverless::StateMachine")}


def test_backfill_runs_and_stops_only_its_own_child_executions(template: dict[str, Any]) -> None:
    statements = _backfill_statements(template)
    name = _sub_text(_resource(template, BACKFILL, "AWS::Serverless::StateMachine")["Properties"]["Name"])
    start, manage, http = (
        statements[sid] for sid in ("RunChildExecutions", "ManageChildExecutions", "PollOpenAIBatches")
    )
    own_machine = f":stateMachine:{name}"
    assert (start["Action"], _sub_text(start["Resource"]).endswith(own_machine)) == ("states:StartExecution", True)
    assert set(manage["Action"]) == {"states:DescribeExecution", "states:StopExecution"}
    assert _sub_text(manage["Resource"]).endswith(f":execution:{name}/*")
    assert (_sub_text(http["Resource"]).endswith(own_machine), http["Condition"]["StringEquals"]) == (
        True,
        {"states:HTTPMethod": "GET"},
    )
    invoked = {next(iter(_refs(r))) for r in statements["InvokeBatchtraceFunctions"]["Resource"]}
    assert invoked == {FETCH_FUNCTION, FUNCTION}


def test_backfill_reads_its_manifests_and_writes_its_results_only(template: dict[str, Any]) -> None:
    statements = _backfill_statements(template)
    read, write = statements["ReadBackfillManifests"], statements["WriteBackfillResults"]
    assert (read["Action"], _sub_text(read["Resource"])) == (
        "s3:GetObject",
        "arn:${AWS::Partition}:s3:::${Bucket}/${BackfillPrefix}*",
    )
    assert _sub_text(write["Resource"]) == "arn:${AWS::Partition}:s3:::${Bucket}/${BackfillPrefix}results/*"
    assert "s3:PutObject" in write["Action"] and "s3:DeleteObject" not in write["Action"]
    assert [_bucket_names(s["Resource"]) for s in (read, write)] == [EFFECTIVE_BUCKET_NAMES] * 2


def test_backfill_copies_input_files_only_when_enabled(template: dict[str, Any]) -> None:
    extra = [(c, s) for c, s in _function_statements(template, FETCH_FUNCTION) if c == "BackfillEnabled"]
    by_sid = {s["Sid"]: s for _, s in extra}
    assert set(by_sid) == {"WriteBackfilledInputFiles", "ListBatchFolders"}
    write = by_sid["WriteBackfilledInputFiles"]
    assert _sub_text(write["Resource"]) == "arn:${AWS::Partition}:s3:::${Bucket}/${BatchPrefix}*/input.jsonl"
    listing = by_sid["ListBatchFolders"]
    assert listing["Action"] == "s3:ListBucket"
    assert listing["Condition"]["StringLike"]["s3:prefix"] == {"Fn::Sub": "${BatchPrefix}*"}
    assert all(_bucket_names(s["Resource"]) == EFFECTIVE_BUCKET_NAMES for s in by_sid.values())
