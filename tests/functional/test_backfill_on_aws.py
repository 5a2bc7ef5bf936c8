"""``batchtrace backfill --on-aws``, run as a subprocess: list with the openai SDK (a fake API on 127.0.0.1),
write the manifest to moto S3 and start the backfill state machine in moto's Step Functions.

Nothing is sent from the machine running the command: the spans are the state machine's work
(tests/functional/test_backfill_state_machine.py runs that part).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.batches import batch_object
from tests.support.cli import assert_exit, run_batchtrace
from tests.support.fake_openai import FakeOpenAI
from tests.support.moto_s3 import MotoServer
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.sfn_walker import BACKFILL_STATE_MACHINE, BACKFILL_SUBSTITUTIONS, load_definition

pytestmark = pytest.mark.timeout(90)

API_KEY = "sk-test-" + "Zq3Wm8Lp1Xv6Nc4Bt7Hy2Ka9"
BUCKET = "batchtrace-demo"
T0 = 1_786_000_000
#: (id, status), oldest first; listed newest first.
BATCHES = (
    ("batch_a0completed", "completed"),
    ("batch_b1failed", "failed"),
    ("batch_c2running", "in_progress"),
    ("batch_d3expired", "expired"),
)
FINISHED_NEWEST_FIRST = ["batch_d3expired", "batch_b1failed", "batch_a0completed"]


@pytest.fixture
def stack(moto: MotoServer, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any, str]]:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", moto.endpoint)
    s3, sfn = boto3.client("s3"), boto3.client("stepfunctions")
    s3.create_bucket(Bucket=BUCKET)
    arn = sfn.create_state_machine(
        name="stack-Backfill",
        definition=json.dumps(load_definition(BACKFILL_SUBSTITUTIONS, BACKFILL_STATE_MACHINE)),
        roleArn="arn:aws:iam::123456789012:role/stack-BackfillStateMachineRole",
    )["stateMachineArn"]
    with FakeOpenAI(api_key=API_KEY) as api:
        api.page_cap = 2  # two pages
        for i, (batch_id, status) in enumerate(BATCHES):
            api.set_batch(batch_id, batch_object(batch_id, status, created_at=T0 + i * 3600))
        monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", api.base_url)
        yield s3, sfn, arn


def backfill(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``batchtrace backfill --provider openai <args>`` with this test's environment."""
    return run_batchtrace("backfill", "--provider", "openai", *args, script=True, timeout=60)


def test_on_aws_starts_the_state_machine_on_the_finished_batches(
    stack: tuple[Any, Any, str], receiver: OtlpReceiver, tmp_path: Path
) -> None:
    s3, sfn, arn = stack
    result = backfill("--on-aws", "--state-machine-arn", arn, "--bucket", BUCKET, "--state", tmp_path / "state.json")

    assert_exit(result)
    started = json.loads(result.stdout)
    assert started["batches"] == len(FINISHED_NEWEST_FIRST)
    assert started["results"] == f"s3://{BUCKET}/backfill/results/"
    execution_input = json.loads(sfn.describe_execution(executionArn=started["execution_arn"])["input"])
    manifest = s3.get_object(Bucket=BUCKET, Key=execution_input["manifest"])["Body"].read()
    assert json.loads(manifest) == FINISHED_NEWEST_FIRST
    assert "leaving out 1 batch(es) still running" in result.stderr
    assert receiver.span_count == 0, "the state machine sends the spans, not this machine"


def test_on_aws_honours_the_filters_and_dry_run_starts_nothing(stack: tuple[Any, Any, str], tmp_path: Path) -> None:
    s3, sfn, arn = stack
    result = backfill(
        "--on-aws", "--state-machine-arn", arn, "--bucket", BUCKET, "--status", "failed", "expired", "--dry-run"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["batch_d3expired", "batch_b1failed"]
    assert sfn.list_executions(stateMachineArn=arn)["executions"] == []
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--on-aws", "--bucket", BUCKET), "--on-aws needs --state-machine-arn and --bucket"),
        (("--state-machine-arn", "arn:aws:states:us-east-1:123456789012:stateMachine:x"), "needs --on-aws"),
    ],
    ids=["no-arn", "arn-without-on-aws"],
)
def test_on_aws_misuse_is_a_usage_error(stack: tuple[Any, Any, str], args: tuple[str, ...], message: str) -> None:
    result = backfill(*args)
    assert result.returncode == 2 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert message in line
