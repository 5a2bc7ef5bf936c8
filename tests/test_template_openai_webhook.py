"""Static checks of the OpenAI webhook receiver in template.yaml: off by default, public only through its
signature, scoped IAM, and an asynchronous half whose failures are kept.

(The function itself runs in tests/functional/test_openai_webhook.py and, built, in
tests/e2e/test_built_artifact.py.)
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_template import (
    EFFECTIVE_BUCKET_NAMES,
    _assert_handler_exists,
    _bucket_names,
    _function_statements,
    _if_branches,
    _listify,
    _refs,
    _resource,
    _sub_text,
    _template,
)

FUNCTION = "OpenAIWebhookFunction"
CONDITION = "EnableWebhook"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return _template()


def _props(template: dict[str, Any]) -> dict[str, Any]:
    return _resource(template, FUNCTION, "AWS::Serverless::Function")["Properties"]


def test_off_by_default_and_needs_its_secrets(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert params["EnableOpenAIWebhook"]["Default"] == "false"
    assert params["OpenAIWebhookSecretArn"]["Default"] == ""
    assert ":secretsmanager:" in params["OpenAIWebhookSecretArn"]["AllowedPattern"]
    assert template["Conditions"][CONDITION] == {"Fn::Equals": [{"Ref": "EnableOpenAIWebhook"}, "true"]}
    for logical_id in (FUNCTION, "OpenAIWebhookLogGroup"):
        assert template["Resources"][logical_id]["Condition"] == CONDITION
    assert template["Outputs"]["OpenAIWebhookUrl"]["Condition"] == CONDITION
    assert template["Outputs"]["OpenAIWebhookUrl"]["Value"] == {"Fn::GetAtt": [f"{FUNCTION}Url", "FunctionUrl"]}
    rule = template["Rules"]["OpenAIWebhookNeedsItsSecrets"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "EnableOpenAIWebhook"}, "true"]}
    asserted = {ref for assertion in rule["Assertions"] for ref in _refs(assertion["Assert"])}
    assert asserted == {"OpenAIWebhookSecretArn", "OpenAIApiKeySecretArn"}


def test_a_function_url_whose_authentication_is_the_signature(template: dict[str, Any]) -> None:
    props = _props(template)
    _assert_handler_exists(props)
    assert props["Handler"] == "webhook_handler.lambda_handler"  # no clash with the other functions' modules
    assert props["FunctionUrlConfig"] == {"AuthType": "NONE"}
    assert {"Ref": "BatchtraceLayer"} in _listify(props["Layers"])
    env = props["Environment"]["Variables"]
    assert env["OPENAI_WEBHOOK_SECRET_ARN"] == {"Ref": "OpenAIWebhookSecretArn"}
    assert env["OPENAI_API_KEY_SECRET_ARN"] == {"Ref": "OpenAIApiKeySecretArn"}
    assert env["OPENAI_BASE_URL"] == {"Ref": "OpenAIBaseUrl"}
    assert env["IDEMPOTENCY_TABLE"] == {"Ref": "IdempotencyTable"}
    assert "OPENAI_WEBHOOK_SECRET" not in env and "OPENAI_API_KEY" not in env, "secrets only by ARN"


def test_the_asynchronous_half_is_retried_then_dead_lettered(template: dict[str, Any]) -> None:
    config = _props(template)["EventInvokeConfig"]
    assert config["MaximumRetryAttempts"] >= 1
    assert config["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
    }


def test_it_may_invoke_itself_and_nothing_else(template: dict[str, Any]) -> None:
    props = _props(template)
    statements = [s for _, s in _function_statements(template, FUNCTION)]
    invoke = [s for s in statements if "lambda:InvokeFunction" in _listify(s["Action"])]
    assert len(invoke) == 1
    (resource,) = _listify(invoke[0]["Resource"])
    assert _sub_text(props["FunctionName"]) == "${AWS::StackName}-OpenAIWebhook"
    assert _sub_text(resource).endswith(":function:" + _sub_text(props["FunctionName"])), "itself, by its fixed name"


def test_s3_writes_are_the_batch_files_only(template: dict[str, Any]) -> None:
    written: set[str] = set()
    for _, statement in _function_statements(template, FUNCTION):
        actions = {str(a) for a in _listify(statement["Action"])}
        resources = [r for node in _listify(statement["Resource"]) for r in _if_branches(node)]
        if "s3:PutObject" in actions:
            written |= {_sub_text(r).rsplit("/", 1)[1] for r in resources}
        if any(a.startswith("s3:") for a in actions):
            assert all(_bucket_names(r) == EFFECTIVE_BUCKET_NAMES for r in resources), resources
            assert "BatchesBucket" not in set(_refs(statement))
    assert written == {"input.jsonl", "output.jsonl", "errors.jsonl", "batch.json"}, "never trace.json"


def test_secrets_read_are_the_ones_named(template: dict[str, Any]) -> None:
    read = {}
    for condition, statement in _function_statements(template, FUNCTION):
        if "secretsmanager:GetSecretValue" in _listify(statement["Action"]):
            for resource in _listify(statement["Resource"]):
                read[resource["Ref"]] = condition
    assert read == {
        "OpenAIWebhookSecretArn": None,
        "OpenAIApiKeySecretArn": None,
        "OtlpHeadersSecretArn": "HasOtlpHeadersSecret",
        "RespanApiKeySecretArn": "HasRespanApiKeySecret",
    }
