"""`start_distributed_backfill` against moto's S3 and Step Functions: the manifest it writes, the execution it starts.

What the state machine then does with that input is tests/functional/test_backfill_state_machine.py's.
"""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest
from batchtrace.errors import InputError
from batchtrace.sources.backfill_aws import start_distributed_backfill

from tests.support.moto_s3 import MotoServer
from tests.support.sfn_walker import BACKFILL_STATE_MACHINE, BACKFILL_SUBSTITUTIONS, load_definition

BUCKET = "batchtrace-demo"
IDS = [f"batch_{i:024x}" for i in range(1, 2501)]  # more than one execution input could hold inline


@pytest.fixture
def aws(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any, str]:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", moto.endpoint)
    s3, sfn = boto3.client("s3"), boto3.client("stepfunctions")
    s3.create_bucket(Bucket=BUCKET)
    arn = sfn.create_state_machine(
        name="stack-Backfill",
        definition=json.dumps(load_definition(BACKFILL_SUBSTITUTIONS, BACKFILL_STATE_MACHINE)),
        roleArn="arn:aws:iam::123456789012:role/stack-BackfillStateMachineRole",
    )["stateMachineArn"]
    return s3, sfn, arn


def test_it_writes_the_manifest_and_starts_one_execution_on_it(aws: tuple[Any, Any, str]) -> None:
    s3, sfn, arn = aws
    started = start_distributed_backfill([*IDS, IDS[0]], arn, BUCKET)  # clients from the environment

    (execution,) = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert execution["executionArn"] == started.execution_arn
    assert re.fullmatch(r"backfill-\d{8}T\d{6}Z-[0-9a-f]{8}", execution["name"])
    execution_input = json.loads(sfn.describe_execution(executionArn=started.execution_arn)["input"])
    key = f"backfill/manifests/{execution['name']}.json"
    assert execution_input == {"manifest": key}
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert manifest == IDS, "every id once, in order"
    assert len(json.dumps(manifest)) > 256 * 1024 / 4  # a list the manifest carries, not the input
    assert started.as_dict() == {
        "execution_arn": started.execution_arn,
        "manifest": f"s3://{BUCKET}/{key}",
        "results": f"s3://{BUCKET}/backfill/results/",
        "batches": len(IDS),
    }


@pytest.mark.parametrize(
    ("ids", "arn", "bucket", "prefix", "message"),
    [
        ([], None, BUCKET, "backfill/", "no batches to backfill"),
        (["batch_ok", "file-abc"], None, BUCKET, "backfill/", "'file-abc' is not an OpenAI batch id (batch_...)"),
        (IDS[:1], "stack-Backfill", BUCKET, "backfill/", "'stack-Backfill' is not a state machine ARN"),
        (IDS[:1], None, "Not_A_Bucket", "backfill/", "'Not_A_Bucket' is not an S3 bucket name"),
        (IDS[:1], None, BUCKET, "backfill", "the backfill prefix must be empty or path segments ending in '/'"),
    ],
    ids=["no-ids", "not-a-batch-id", "not-an-arn", "bad-bucket", "bad-prefix"],
)
def test_unusable_arguments_are_one_line_and_start_nothing(
    aws: tuple[Any, Any, str], ids: list[str], arn: str | None, bucket: str, prefix: str, message: str
) -> None:
    s3, sfn, machine = aws
    with pytest.raises(InputError) as raised:
        start_distributed_backfill(ids, arn or machine, bucket, prefix)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)
    assert sfn.list_executions(stateMachineArn=machine)["executions"] == []
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


def test_aws_refusals_are_one_line(aws: tuple[Any, Any, str]) -> None:
    _, _, arn = aws
    missing = arn.replace("stack-Backfill", "other-Backfill")
    with pytest.raises(InputError, match=r"^could not start the backfill .*other-Backfill: StateMachineDoesNotExist"):
        start_distributed_backfill(IDS[:3], missing, BUCKET)
    with pytest.raises(
        InputError, match=r"^could not write the backfill manifest s3://nowhere-bucket/.*: NoSuchBucket"
    ):
        start_distributed_backfill(IDS[:3], arn, "nowhere-bucket")
