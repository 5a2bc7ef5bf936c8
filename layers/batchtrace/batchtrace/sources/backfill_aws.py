"""Start the stack's Distributed Map backfill (``statemachine/backfill.asl.json``) for a list of past batches.

For thousands of batches, copying and logging them one after another from a laptop takes hours
and dies with the laptop; the stack's backfill state machine (template parameter
``EnableBackfill``) fans them out instead, one child execution per batch, with bounded
concurrency, a tolerated failure rate and a results summary in S3. This module hands it the work:
:func:`start_distributed_backfill` writes the batch ids as a JSON array to
``s3://<bucket>/<prefix>manifests/<name>.json`` (the map's ItemReader reads it, so the list is not
bound by Step Functions' 256 KB input limit) and starts an execution with
``{"manifest": "<that key>"}``. Step Functions writes the map run's results under
``<prefix>results/``. Which batches to send is the caller's business (``batchtrace backfill``
lists them through the provider's SDK).

A past batch's folder usually has no ``input.jsonl`` (it was not submitted through the stack):
each child execution asks the fetch function to copy it too (``"copy_input": true``,
:func:`copy_input_file`), so its results are paired with their requests.

Both clients are plain boto3: ``AWS_ENDPOINT_URL_S3`` and ``AWS_ENDPOINT_URL_SFN`` point them
elsewhere (moto, LocalStack).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from batchtrace.errors import InputError, OpenAIFileNotFoundError
from batchtrace.s3_batch import FileNames
from batchtrace.sources.openai_files import BatchFiles, Destination, TransferSettings, copy_file, prefix_problem

logger = logging.getLogger(__name__)
_DEFAULT_NAMES = FileNames()
_DEFAULT_TRANSFER = TransferSettings()

#: The template's default ``BackfillPrefix``.
DEFAULT_BACKFILL_PREFIX = "backfill/"
#: What the state machine accepts as an item (its ``CheckItem`` state): an OpenAI batch id.
_BATCH_ID = re.compile(r"^batch_[A-Za-z0-9_-]{1,194}$")
_STATE_MACHINE_ARN = re.compile(r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True, slots=True)
class BackfillStart:
    """A started backfill: its execution, the manifest it reads, where its results will be."""

    execution_arn: str
    manifest_uri: str
    results_uri: str
    batches: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "execution_arn": self.execution_arn,
            "manifest": self.manifest_uri,
            "results": self.results_uri,
            "batches": self.batches,
        }


def sfn_client() -> Any:
    """A boto3 Step Functions client with standard retries; ``AWS_ENDPOINT_URL_SFN`` points it elsewhere."""
    import boto3
    from botocore.config import Config

    return boto3.client("stepfunctions", config=Config(retries={"mode": "standard", "max_attempts": 5}))


def batch_id_list(batch_ids: Iterable[str]) -> list[str]:
    """The ids in their order, each once; :class:`InputError` names the first that is no OpenAI batch id."""
    unique = list(dict.fromkeys(batch_ids))
    for batch_id in unique:
        if not isinstance(batch_id, str) or not _BATCH_ID.match(batch_id):
            raise InputError(f"{batch_id!r} is not an OpenAI batch id (batch_...)")
    if not unique:
        raise InputError("no batches to backfill")
    return unique


def _check_target(state_machine_arn: str, bucket: str, prefix: str) -> None:
    if not _STATE_MACHINE_ARN.match(state_machine_arn):
        raise InputError(f"{state_machine_arn!r} is not a state machine ARN (the stack's BackfillStateMachineArn)")
    if not _BUCKET.match(bucket):
        raise InputError(f"{bucket!r} is not an S3 bucket name")
    if not prefix or (problem := prefix_problem(prefix)) is not None:
        raise InputError(f"the backfill prefix {problem or 'must not be empty'} (the stack's BackfillPrefix)")


def execution_name(batch_ids: list[str], now: datetime | None = None) -> str:
    """``backfill-<UTC time>-<digest of the ids>``: unique per run, and the same list is recognisable."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    digest = hashlib.blake2b("\n".join(batch_ids).encode(), digest_size=4).hexdigest()
    return f"backfill-{stamp}-{digest}"


def _aws_reason(err: Exception) -> str:
    response = getattr(err, "response", None)
    error = response.get("Error", {}) if isinstance(response, Mapping) else {}
    code, message = error.get("Code"), " ".join(str(error.get("Message", "")).split())[:300]
    return f"{code}: {message}" if code else type(err).__name__


def start_distributed_backfill(
    batch_ids: Iterable[str],
    state_machine_arn: str,
    bucket: str,
    prefix: str = DEFAULT_BACKFILL_PREFIX,
    *,
    s3: Any = None,
    sfn: Any = None,
    name: str | None = None,
) -> BackfillStart:
    """Write the manifest of ``batch_ids`` and start the backfill state machine on it.

    ``bucket`` and ``prefix`` are the stack's bucket and ``BackfillPrefix`` (the state machine may
    read manifests only there). Raises :class:`InputError` in one line for an unusable argument or
    when AWS refuses (no such bucket or state machine, no permission).
    """
    ids = batch_id_list(batch_ids)
    _check_target(state_machine_arn, bucket, prefix)
    name = name or execution_name(ids)
    key = f"{prefix}manifests/{name}.json"
    if s3 is None:
        from batchtrace.s3_batch import s3_client

        s3 = s3_client()
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(ids).encode(), ContentType="application/json")
    except Exception as err:
        raise InputError(f"could not write the backfill manifest s3://{bucket}/{key}: {_aws_reason(err)}") from None
    try:
        started = (sfn or sfn_client()).start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps({"manifest": key})
        )
    except Exception as err:
        raise InputError(f"could not start the backfill {state_machine_arn}: {_aws_reason(err)}") from None
    return BackfillStart(
        execution_arn=str(started["executionArn"]),
        manifest_uri=f"s3://{bucket}/{key}",
        results_uri=f"s3://{bucket}/{prefix}results/",
        batches=len(ids),
    )


# --------------------------------------------------------------------------- the fetch step's extra file


def _has_object(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except Exception as err:
        if _aws_reason(err).split(":", 1)[0] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def copy_input_file(
    client: Any,
    s3: Any,
    files: BatchFiles,
    destination: Destination,
    *,
    names: FileNames = _DEFAULT_NAMES,
    transfer: TransferSettings = _DEFAULT_TRANSFER,
) -> str:
    """Copy a past batch's input file into its folder unless one is there; the key.

    An ``input.jsonl`` already there (the batch was submitted through the stack, perhaps with
    ``trace-id`` metadata) is kept. When OpenAI no longer has the file (deleted, or past its
    expiry), an empty one is written and a warning says so: the results still become spans,
    flagged as results without a request, rather than the batch being lost.
    """
    key = destination.key(files.batch_id, names.input)
    if _has_object(s3, destination.bucket, key):
        return key
    file_id = (files.batch_object or {}).get("input_file_id")
    if isinstance(file_id, str) and file_id:
        try:
            copy_file(client, s3, file_id, "input file", destination.bucket, key, transfer)
            return key
        except OpenAIFileNotFoundError as err:
            logger.warning("%s; the results are sent without their requests", err)
    s3.put_object(Bucket=destination.bucket, Key=key, Body=b"", ContentType="application/jsonl")
    return key
