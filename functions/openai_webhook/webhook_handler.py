"""Lambda behind a Function URL: OpenAI's batch webhooks, verified and answered at once, worked off asynchronously.

Two kinds of event reach this function:

* a Function URL request (payload 2.0): verified against the webhook secret and answered within
  milliseconds (401 bad or missing signature, stale timestamp; 400 not an event; 200 otherwise).
  A batch event is recorded under its ``webhook-id`` (a redelivery is answered 200 and does
  nothing) and handed to this same function with an asynchronous invocation;
* that job (``{"openai_webhook_job": {...}}``, only ever from this function: the Function URL
  wraps whatever a caller sends in an HTTP event): the batch is retrieved, copied into the bucket
  and logged. A failure is retried by Lambda, then lands in the failure destination.

Secrets come from Secrets Manager by ARN (cached for five minutes), or, run locally, from
``OPENAI_WEBHOOK_SECRET`` and ``OPENAI_API_KEY``; they are never logged. The logic is the core's
(``batchtrace.sources.openai_webhook``). Named ``webhook_handler`` so it shadows no other
function's module.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import boto3
import openai
import orjson
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.typing import LambdaContext
from batchtrace import BatchLocation, DeliveryPolicy, OtlpConfig
from batchtrace.errors import ConfigurationError, InvalidBatchPayloadError, WebhookRejected
from batchtrace.s3_batch import LOG_IDEMPOTENCY_JMESPATH, LOG_IDEMPOTENCY_KEY_PREFIX, s3_client
from batchtrace.send.otlp_config import parse_headers
from batchtrace.sources.openai_files import Destination, FetchSettings, check_api_key
from batchtrace.sources.openai_webhook import (
    JOB_KEY,
    BatchEvent,
    Folder,
    WebhookRequest,
    http_response,
    is_function_url_event,
    log_folder,
    process_batch_event,
    receive,
)

_SECRET_MAX_AGE_S = 300
#: OpenAI retries a delivery for up to three days: a redelivery within them is recognised.
_DELIVERY_RECORD_S = 3 * 86_400
_DEADLINE_MARGIN_S = 15.0


@dataclass(frozen=True, slots=True)
class Settings:
    """What the function reads from its environment (template.yaml sets it), once per cold start."""

    fetch: FetchSettings
    bucket: str
    webhook_secret_arn: str
    api_key_secret_arn: str
    idempotency_table: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        if not (env.get("OPENAI_WEBHOOK_SECRET_ARN") or env.get("OPENAI_WEBHOOK_SECRET")):
            raise ConfigurationError("set OPENAI_WEBHOOK_SECRET_ARN (or OPENAI_WEBHOOK_SECRET when run locally)")
        fetch = FetchSettings.from_env(env)
        return cls(
            fetch=fetch,
            bucket=Destination(bucket=env.get("BATCHTRACE_BUCKET", ""), prefix=fetch.prefix).bucket,
            webhook_secret_arn=env.get("OPENAI_WEBHOOK_SECRET_ARN", ""),
            api_key_secret_arn=env.get("OPENAI_API_KEY_SECRET_ARN", ""),
            idempotency_table=env.get("IDEMPOTENCY_TABLE", ""),
        )


logger = Logger()
copy_config_to_registered_loggers(source_logger=logger, include={"batchtrace"})
settings = Settings.from_env()  # a configuration error fails the cold start, before any request
s3 = s3_client()
lambda_client = boto3.client("lambda")
secrets = parameters.SecretsProvider(boto3_client=boto3.client("secretsmanager"))
folder = Folder(Destination(settings.bucket, settings.fetch.prefix), settings.fetch.names, settings.fetch.transfer)


def _secret(arn: str | None, what: str, local_variable: str | None = None) -> str:
    """A secret from Secrets Manager by ARN (cached), else from ``local_variable`` (local runs); never logged."""
    value = secrets.get(arn, max_age=_SECRET_MAX_AGE_S) if arn else os.environ.get(local_variable or "")
    text = (value.decode() if isinstance(value, bytes) else str(value or "")).strip()
    if not text:
        raise ConfigurationError(f"{what} is empty")
    return text


def _webhook_secret() -> str:
    return _secret(settings.webhook_secret_arn, "the OpenAI webhook secret", "OPENAI_WEBHOOK_SECRET")


@lru_cache(maxsize=1)
def _client(api_key: str) -> openai.OpenAI:
    """One SDK client (and connection pool) per key: a rotated key gets a new one."""
    return settings.fetch.openai.client(check_api_key(api_key))


def _otlp_config() -> OtlpConfig:
    """The OTLP destination, with credentials fetched (and cached) from Secrets Manager."""
    headers_arn, respan_arn = os.environ.get("OTLP_HEADERS_SECRET_ARN"), os.environ.get("RESPAN_API_KEY_SECRET_ARN")
    headers = (
        parse_headers(_secret(headers_arn, "the OTLP headers secret"), "the OTLP headers secret")
        if headers_arn
        else None
    )
    respan_key = _secret(respan_arn, "the Respan API key secret") if respan_arn else None
    return OtlpConfig.resolve(headers=headers, respan_api_key=respan_key)


def queue(delivery: dict[str, str], request_id: str) -> dict[str, str]:
    """Hand the verified event to this function, asynchronously; who queued it (a redelivery sees another id)."""
    payload = orjson.dumps({JOB_KEY: delivery})
    lambda_client.invoke(FunctionName=os.environ["AWS_LAMBDA_FUNCTION_NAME"], InvocationType="Event", Payload=payload)
    return {"queued_by": request_id}


def log_files(location: BatchLocation, **options: Any) -> dict[str, Any]:
    """Log the copied folder: once per upload, whichever function (this or LogBatchResults) gets there first."""
    return log_folder(s3, location, names=folder.names, **options)


def work(job: dict[str, str], deadline: float) -> dict[str, Any]:
    """The asynchronous half: retrieve, copy, log. Once per delivery."""
    event = BatchEvent.from_job(job)
    logger.append_keys(batch_id=event.batch_id, webhook_id=event.webhook_id)
    client = _client(_secret(settings.api_key_secret_arn, "the OpenAI API key", "OPENAI_API_KEY"))
    options = {"otlp": _otlp_config(), "delivery": DeliveryPolicy(deadline=deadline)}
    return process_batch_event(
        event, client, s3, folder, log_files=lambda location: log_files(location=location, **options), **options
    )


deliveries = IdempotencyConfig(event_key_jmespath="webhook_id", expires_after_seconds=_DELIVERY_RECORD_S)
uploads = IdempotencyConfig(event_key_jmespath=LOG_IDEMPOTENCY_JMESPATH, expires_after_seconds=86_400)


def _once(data: str, config: IdempotencyConfig, key_prefix: str) -> Any:
    """Powertools idempotency on the table, one store each (a store keeps the first key expression it serves)."""
    store = DynamoDBPersistenceLayer(table_name=settings.idempotency_table)
    return idempotent_function(
        data_keyword_argument=data, persistence_store=store, config=config, key_prefix=key_prefix
    )


if settings.idempotency_table:
    queue = _once("delivery", deliveries, "batchtrace.openai_webhook.queue")(queue)
    work = _once("job", deliveries, "batchtrace.openai_webhook.work")(work)
    log_files = _once("location", uploads, LOG_IDEMPOTENCY_KEY_PREFIX)(log_files)


def answer(event: dict[str, Any], request_id: str) -> dict[str, Any]:
    """The Function URL's answer: 200 once the event is safely queued (or was already)."""
    try:
        batch_event = receive(WebhookRequest.from_function_url(event), _webhook_secret())
    except WebhookRejected as err:
        logger.warning(str(err), extra={"status": err.status})
        return http_response(err.status)
    if batch_event is None:
        logger.info("not a batch event: acknowledged, ignored")
        return http_response(200, "ignored: not a batch event")
    logger.append_keys(batch_id=batch_event.batch_id, webhook_id=batch_event.webhook_id)
    try:
        queued = queue(delivery=batch_event.as_job(), request_id=request_id)
    except IdempotencyAlreadyInProgressError:
        queued = {"queued_by": "another request"}
    duplicate = queued["queued_by"] != request_id
    logger.info("duplicate delivery: already queued" if duplicate else "batch event queued")
    return http_response(200, "duplicate" if duplicate else "accepted")


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    for config in (deliveries, uploads):
        config.register_lambda_context(context)
    if is_function_url_event(event):
        return answer(event, context.aws_request_id)
    if not isinstance(event, Mapping) or JOB_KEY not in event:
        raise InvalidBatchPayloadError("expected a Function URL request or this function's own webhook job")
    job = BatchEvent.from_job(event[JOB_KEY]).as_job()  # checked before any record is written
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - _DEADLINE_MARGIN_S
    try:
        return work(job=job, deadline=deadline)
    except IdempotencyAlreadyInProgressError:
        logger.info("this delivery's job is running in another invocation")
        return {"status": "in progress elsewhere"}
