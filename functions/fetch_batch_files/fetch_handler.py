"""Step Functions task: copy a finished OpenAI batch's files into S3, beside its input.

The batch lifecycle state machine (``statemachine/batch_lifecycle.asl.json``) calls this once
the batch is ``completed`` or ``expired``, with its data as the payload::

    {"batch_id": "batch_...", "bucket": "...", "prefix"?: "batches/",
     "batch": {"status": "completed", "object": {<the OpenAI batch object>}},
     "trace_id"?: "...", "span_id"?: "...", "traceparent"?: "..."}

(``batch`` may also be the OpenAI batch object itself, for a direct invocation; ``prefix``
defaults to ``BATCHTRACE_PREFIX``.) It returns LogBatchResultsFunction's payload. The copy, its
settings and its errors are the core's (``batchtrace.sources.openai_files``): this module
checks the event, reads the API key from Secrets Manager (``OPENAI_API_KEY_SECRET_ARN``,
SecretString = the bare key; never logged) and calls the core. The errors' names are what the
state machine sees: ``OpenAIFileError`` is retried; ``OpenAIFileNotFoundError``,
``OpenAIAuthError``, ``InvalidBatchPayloadError`` and ``FetchConfigurationError`` are not.

Named ``fetch_handler`` (not ``app``) so it never shadows LogBatchResultsFunction's ``app``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import boto3
import openai
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.typing import LambdaContext
from batchtrace import BatchtraceError
from batchtrace.errors import FetchConfigurationError, InvalidBatchPayloadError
from batchtrace.s3_batch import s3_client
from batchtrace.sources.backfill_aws import copy_input_file
from batchtrace.sources.openai_files import (
    TRACE_FIELDS,
    BatchFiles,
    Destination,
    FetchSettings,
    check_api_key,
    copy_batch_files,
)

_SECRET_MAX_AGE_S = 300


@dataclass(frozen=True, slots=True)
class Settings:
    """What the function reads from its environment (template.yaml sets it), once per cold start."""

    fetch: FetchSettings
    api_key_secret_arn: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        secret_arn = env.get("OPENAI_API_KEY_SECRET_ARN") or ""
        if not secret_arn:
            raise FetchConfigurationError("OPENAI_API_KEY_SECRET_ARN is not set")
        return cls(fetch=FetchSettings.from_env(env), api_key_secret_arn=secret_arn)


logger = Logger()
copy_config_to_registered_loggers(source_logger=logger, include={"batchtrace"})
settings = Settings.from_env()  # a configuration error fails the cold start, before any invocation
s3 = s3_client()
secrets = parameters.SecretsProvider(boto3_client=boto3.client("secretsmanager"))


@dataclass(frozen=True, slots=True)
class Payload:
    """The event, checked: which batch, where its folder is, the trace context to pass on."""

    batch: BatchFiles
    destination: Destination
    trace: dict[str, str]
    #: ``"copy_input": true`` (the backfill state machine): copy the batch's input file too, unless it is there.
    copy_input: bool = False


def parse_payload(event: Any) -> Payload:
    """Raises :class:`InvalidBatchPayloadError` for an event that names no finished batch and folder."""
    if not isinstance(event, Mapping):
        raise InvalidBatchPayloadError(f"expected a JSON object, got {type(event).__name__}")
    batch_id = event.get("batch_id")
    if not isinstance(batch_id, str) or not batch_id:
        raise InvalidBatchPayloadError("the payload needs a non-empty string 'batch_id'")
    return Payload(
        batch=_batch_files(event.get("batch"), batch_id),
        destination=Destination(bucket=event.get("bucket", ""), prefix=event.get("prefix", settings.fetch.prefix)),
        trace=_trace_context(event),
        copy_input=_copy_input(event),
    )


def _copy_input(event: Mapping[str, Any]) -> bool:
    value = event.get("copy_input", False)
    if not isinstance(value, bool):
        raise InvalidBatchPayloadError(f"copy_input must be true or false, got {value!r}")
    return value


def _batch_files(batch: Any, batch_id: str) -> BatchFiles:
    """The batch's files, from the state machine's ``{"status", "object"}`` or the batch object itself."""
    if isinstance(batch, Mapping) and isinstance(batch.get("object"), Mapping):
        batch = batch["object"]
    if not isinstance(batch, Mapping):
        raise InvalidBatchPayloadError("the payload needs 'batch': the OpenAI batch object")
    files = BatchFiles.from_object({**batch, "id": batch_id})  # the id, the status, the file ids
    if batch.get("id") not in (None, batch_id):
        raise InvalidBatchPayloadError(f"batch object {batch.get('id')!r} is not batch {batch_id}")
    return files


def _trace_context(event: Mapping[str, Any]) -> dict[str, str]:
    """The trace context to pass on (the :data:`TRACE_FIELDS` that are set); each must be a string."""
    trace = {}
    for name in TRACE_FIELDS:
        value = event.get(name)
        if value is not None and not isinstance(value, str):
            raise InvalidBatchPayloadError(f"{name} must be a string, got {type(value).__name__}")
        if value:
            trace[name] = value
    return trace


def _api_key() -> str:
    """The OpenAI API key from Secrets Manager (cached for a few minutes); never logged."""
    value = secrets.get(settings.api_key_secret_arn, max_age=_SECRET_MAX_AGE_S)
    text = value.decode() if isinstance(value, bytes) else str(value or "")
    return check_api_key(text, "the OpenAI API key secret (its SecretString)")


@lru_cache(maxsize=1)
def _client(api_key: str) -> openai.OpenAI:
    """One SDK client (and connection pool) per key: a rotated key gets a new one."""
    return settings.fetch.openai.client(api_key)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        payload = parse_payload(event)  # before the key is read: a bad request costs no secret, no API call
        logger.append_keys(batch_id=payload.batch.batch_id)
        client = _client(_api_key())
        if payload.copy_input:
            copy_input_file(
                client,
                s3,
                payload.batch,
                payload.destination,
                names=settings.fetch.names,
                transfer=settings.fetch.transfer,
            )
        return copy_batch_files(
            client,
            s3,
            payload.batch,
            payload.destination,
            names=settings.fetch.names,
            transfer=settings.fetch.transfer,
            trace=payload.trace,
        )
    except BatchtraceError as err:
        logger.error(str(err), extra={"error_type": type(err).__name__})
        raise
