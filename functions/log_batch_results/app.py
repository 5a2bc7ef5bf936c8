"""Lambda entry point: an S3, EventBridge or Step Functions event in, the batch summary out.

Thin on purpose: event shapes live in ``event_locations``, configuration in ``settings``, and
everything about OpenAI files, spans and delivery in the ``batchtrace`` layer. Errors are the
core's typed ones (``MissingFileError``, ``InvalidTraceContextError``, ``DeliveryError``), so
Lambda retries, the failure destination and Step Functions' Retry/Catch can tell them apart.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.typing import LambdaContext
from batch_metrics import add_batch_metrics
from batchtrace import BatchLocation, BatchtraceError, DeliveryError, DeliveryPolicy, OtlpConfig, run_s3_batch
from batchtrace.lifecycle.status import StatusRequest, log_s3_batch_status
from batchtrace.s3_batch import LOG_IDEMPOTENCY_JMESPATH, LOG_IDEMPOTENCY_KEY_PREFIX, s3_client
from batchtrace.send.otlp_config import parse_headers
from batchtrace.sources.bedrock_job import JobSignal, S3Folder, bedrock_client, log_bedrock_job, read_job
from batchtrace.tally import Summary
from event_locations import bedrock_job_from_event, locations_from_event, status_request_from_event
from settings import Settings

settings = Settings.from_env()
logger = Logger()
metrics = Metrics(namespace=settings.metrics_namespace)
s3 = s3_client()
copy_config_to_registered_loggers(source_logger=logger, include={"batchtrace"})
idempotency = IdempotencyConfig(event_key_jmespath=LOG_IDEMPOTENCY_JMESPATH, expires_after_seconds=86_400)
#: A Bedrock job is logged once per final state: EventBridge delivers at least once.
job_idempotency = IdempotencyConfig(event_key_jmespath="[arn, status]", expires_after_seconds=86_400)
_SECRET_MAX_AGE_S = 300


def _otlp_config() -> OtlpConfig:
    """The OTLP destination, with credentials fetched (and cached) from Secrets Manager."""
    headers = None
    if settings.otlp_headers_secret:
        secret = parameters.get_secret(settings.otlp_headers_secret, max_age=_SECRET_MAX_AGE_S)
        headers = parse_headers(str(secret), "the OTLP headers secret")
    respan_key = None
    if settings.respan_api_key_secret:
        respan_key = str(parameters.get_secret(settings.respan_api_key_secret, max_age=_SECRET_MAX_AGE_S)).strip()
    return OtlpConfig.resolve(headers=headers, respan_api_key=respan_key)


def process_batch(location: BatchLocation, deadline: float) -> dict[str, Any]:
    """One batch; its summary, or :class:`DeliveryError` once all it could deliver is delivered."""
    logger.remove_keys(["trace_id"])  # an earlier batch's, in a multi-record event
    logger.append_keys(batch_id=location.batch_id, output_key=location.output_key)
    summary = run_s3_batch(
        s3,
        location,
        names=settings.names,
        otlp=_otlp_config(),
        delivery=DeliveryPolicy(deadline=deadline),
        content=settings.content,
        provider=settings.provider,
        model=settings.model,
        on_trace=lambda batch_id, trace_id: logger.append_keys(batch_id=batch_id, trace_id=trace_id),
    )
    return _report(summary)


def _report(summary: Summary) -> dict[str, Any]:
    """Metrics and a log line for a logged batch; :class:`DeliveryError` when some spans were not delivered."""
    logger.append_keys(batch_id=summary.batch_id, trace_id=summary.trace_id)
    for name in ("spans_exported", "spans_failed", "input_tokens", "output_tokens", "malformed_lines"):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=getattr(summary, name))
    metrics.add_metric(name="duration", unit=MetricUnit.Milliseconds, value=summary.duration_ms)
    add_batch_metrics(metrics, summary, settings.metrics_namespace)
    logger.info("batch processed", extra={"summary": summary.as_dict()})
    if summary.spans_failed:
        raise DeliveryError(summary)
    return summary.as_dict()


def process_status(request: StatusRequest, deadline: float) -> dict[str, Any]:
    """A batch with no files (it failed, expired or was cancelled): its ``batch_results`` span alone."""
    logger.remove_keys(["trace_id"])
    summary = log_s3_batch_status(
        s3,
        request,
        names=settings.names,
        otlp=_otlp_config(),
        delivery=DeliveryPolicy(deadline=deadline),
        on_trace=lambda batch_id, trace_id: logger.append_keys(batch_id=batch_id, trace_id=trace_id),
    )
    for name in ("spans_exported", "spans_failed"):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=getattr(summary, name))
    logger.info("batch status logged", extra={"summary": summary.as_dict()})
    if summary.spans_failed:
        raise DeliveryError(summary)
    return summary.as_dict()


@lru_cache(maxsize=1)
def _bedrock() -> Any:
    """The Bedrock control-plane client, made on the first job event (most invocations never need one)."""
    return bedrock_client()


def process_bedrock_job(signal: JobSignal, deadline: float) -> dict[str, Any]:
    """A Bedrock batch inference job that changed state: all its outputs as one batch, or its span alone."""
    logger.remove_keys(["trace_id", "output_key"])
    job = read_job(_bedrock(), signal.arn)
    logger.append_keys(batch_id=job.id, job_status=job.status)
    if not job.final:
        logger.info("Bedrock job not finished; nothing to log yet")
        return {"batches": [], "job_status": job.status}
    own = S3Folder.parse(settings.bedrock_output_uri) if settings.bedrock_output_uri else None
    if own is not None and not own.contains(job.output_folder):
        logger.info("Bedrock job writes outside %s; not logged by this stack", own.uri)
        return {"batches": [], "job_status": job.status}
    summary = log_bedrock_job(
        s3,
        job,
        names=settings.names,
        otlp=_otlp_config(),
        delivery=DeliveryPolicy(deadline=deadline),
        content=settings.content,
        on_trace=lambda batch_id, trace_id: logger.append_keys(batch_id=batch_id, trace_id=trace_id),
    )
    return _report(summary)


if settings.idempotency_table:
    # A store of its own: a persistence layer keeps the key expression of the first config it serves.
    process_bedrock_job = idempotent_function(
        data_keyword_argument="signal",
        persistence_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table),
        config=job_idempotency,
    )(process_bedrock_job)
    # The record is shared with OpenAIWebhookFunction, which logs the folders it copies: one export per upload.
    process_batch = idempotent_function(
        data_keyword_argument="location",
        persistence_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table),
        config=idempotency,
        key_prefix=LOG_IDEMPOTENCY_KEY_PREFIX,
    )(process_batch)


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Process every batch the event names; raise the first typed error after trying them all."""
    idempotency.register_lambda_context(context)
    job_idempotency.register_lambda_context(context)
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - settings.deadline_margin_s
    job = bedrock_job_from_event(event)
    if job is not None:
        return process_bedrock_job(signal=job, deadline=deadline)
    status = status_request_from_event(event)
    if status is not None:
        return process_status(status, deadline)
    locations = locations_from_event(event, settings.names.output)
    if not locations:
        logger.info("no batch output object in this event; nothing to do")
        return {"batches": []}
    summaries: list[dict[str, Any]] = []
    first_error: Exception | None = None
    for location in locations:
        try:
            summaries.append(process_batch(location=location, deadline=deadline))
        except (BatchtraceError, IdempotencyAlreadyInProgressError) as err:
            # A failed batch (or one another invocation holds) does not stop the others.
            logger.error(str(err), extra={"error_type": type(err).__name__, "output_key": location.output_key})
            first_error = first_error or err
    if first_error is not None:
        raise first_error
    return summaries[0] if len(summaries) == 1 else {"batches": summaries}
