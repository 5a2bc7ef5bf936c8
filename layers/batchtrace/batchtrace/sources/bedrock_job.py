"""An Amazon Bedrock batch inference job as ONE batch: the job read from Bedrock, all its outputs logged together.

Bedrock announces every state change of a job on EventBridge (source ``aws.bedrock``,
detail-type ``Batch Inference Job State Change``, ``detail.batchJobArn`` and ``detail.status``).
When a job reaches a final state, :func:`read_job` reads it (``GetModelInvocationJob``: model id,
submit and end times, status, failure message, output location) with its tags
(``ListTagsForResource``: a ``traceparent`` tag is the submitter's trace), and
:func:`log_bedrock_job` sends its spans:

* the job wrote outputs (``<output s3Uri><job id>/*.jsonl.out``, one per input file): every file
  goes through :func:`~batchtrace.run.run_batch` as one batch, so there is one ``batch_results``
  span for the job, with every record under it, the job's timeline, and ``manifest.json.out``'s
  counts reconciled with what the files held;
* it wrote none (it failed validation, was stopped or expired before any record ran): the job's
  ``batch_results`` span alone, in ERROR with Bedrock's message
  (:func:`~batchtrace.lifecycle.status.log_batch_status`).

Per-object logging (an S3 event per ``.jsonl.out``, issue #10) sees one file at a time and never
sees a job that wrote nothing; the job signal is the path to prefer, and the template runs one
of the two, never both (``BedrockTrigger``).

The trace: a ``trace.json`` the submitter put in the job's output folder, else the job's
``traceparent`` tag, else a new trace derived from the job id (the documented precedence). Bedrock
may refuse to list the tags of a job that has finished; that is a warning, never a lost job.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from batchtrace.errors import BedrockJobError, BedrockUnavailableError, InputError
from batchtrace.extract.bedrock import model_id
from batchtrace.lifecycle.bedrock import MANIFEST, parse_job, parse_manifest
from batchtrace.lifecycle.model import BatchLifecycle, last_segment
from batchtrace.lifecycle.status import log_batch_status
from batchtrace.run import run_batch
from batchtrace.s3_batch import (
    BEDROCK_SUFFIX,
    BatchLocation,
    FileNames,
    ObjectStream,
    read_json_object,
    read_trace_json,
    trace_hint_for,
)
from batchtrace.tally import Summary
from batchtrace.trace_link import TraceHint

logger = logging.getLogger(__name__)

EVENT_SOURCE = "aws.bedrock"
EVENT_DETAIL_TYPE = "Batch Inference Job State Change"
#: The states a job does not leave (``Stopping`` becomes ``Stopped``; the rest are still running).
FINAL_STATUSES = frozenset({"Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired"})
#: The tag a submitter puts on the job (``CreateModelInvocationJob(tags=...)``) to name its trace.
TRACEPARENT_TAG = "traceparent"
#: Bedrock's error codes that a retry does not change.
_PERMANENT_CODES = frozenset({"ResourceNotFoundException", "ValidationException", "AccessDeniedException"})
_S3_SCHEME = "s3://"
_DEFAULT_NAMES = FileNames()


def bedrock_client() -> Any:
    """A Bedrock control-plane client with standard retries; ``AWS_ENDPOINT_URL_BEDROCK`` points it elsewhere."""
    import boto3  # here, not at import: library users need no AWS SDK loaded
    from botocore.config import Config

    return boto3.client("bedrock", config=Config(retries={"mode": "standard", "max_attempts": 5}))


# --------------------------------------------------------------------------- the event


@dataclass(frozen=True, slots=True)
class JobSignal:
    """What a ``Batch Inference Job State Change`` event says: which job, and its state then."""

    arn: str
    status: str | None = None
    name: str | None = None

    @classmethod
    def from_event(cls, event: Any) -> JobSignal | None:
        """The signal in an EventBridge event, ``None`` for any other event; :class:`InputError` if it names no job."""
        if not is_job_event(event):
            return None
        detail = event.get("detail")
        arn = detail.get("batchJobArn") if isinstance(detail, Mapping) else None
        if not isinstance(arn, str) or not arn:
            raise InputError("the Bedrock job state change event has no detail.batchJobArn")
        return cls(arn=arn, status=_string(detail, "status"), name=_string(detail, "batchJobName"))


def is_job_event(event: Any) -> bool:
    """Whether ``event`` is Bedrock's ``Batch Inference Job State Change``."""
    if not isinstance(event, Mapping):
        return False
    return event.get("source") == EVENT_SOURCE and event.get("detail-type") == EVENT_DETAIL_TYPE


def _string(doc: Mapping[str, Any], key: str) -> str | None:
    value = doc.get(key)
    return value if isinstance(value, str) and value else None


# --------------------------------------------------------------------------- the job


@dataclass(frozen=True, slots=True)
class S3Folder:
    """A bucket and a key prefix ending in ``/`` (or empty: the whole bucket)."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, uri: str) -> S3Folder:
        """``s3://bucket/some/prefix/`` as a folder; :class:`InputError` for anything else."""
        if not uri.startswith(_S3_SCHEME) or not uri[len(_S3_SCHEME) :].split("/", 1)[0]:
            raise InputError(f"{uri!r} is not an s3:// location")
        bucket, _, prefix = uri[len(_S3_SCHEME) :].partition("/")
        return cls(bucket, prefix if not prefix or prefix.endswith("/") else f"{prefix}/")

    def child(self, name: str) -> S3Folder:
        return S3Folder(self.bucket, f"{self.prefix}{name}/")

    def contains(self, other: S3Folder) -> bool:
        return other.bucket == self.bucket and other.prefix.startswith(self.prefix)

    @property
    def uri(self) -> str:
        return f"{_S3_SCHEME}{self.bucket}/{self.prefix}"


@dataclass(frozen=True, slots=True)
class BedrockJob:
    """A batch inference job as ``GetModelInvocationJob`` described it, and its trace tag."""

    arn: str
    job: Mapping[str, Any]
    traceparent: str | None = None

    @property
    def id(self) -> str:
        """The job id: the ARN's last segment, and the folder Bedrock writes the outputs to."""
        return last_segment(self.arn) or self.arn

    @property
    def status(self) -> str | None:
        return _string(self.job, "status")

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def model(self) -> str | None:
        """The model id the spans name (a foundation model's or inference profile's ARN as its id)."""
        return model_id(_string(self.job, "modelId"))

    @property
    def output_folder(self) -> S3Folder:
        """``<output s3Uri><job id>/``, where Bedrock writes the ``.jsonl.out`` files and the manifest."""
        config = self.job.get("outputDataConfig")
        s3_config = config.get("s3OutputDataConfig") if isinstance(config, Mapping) else None
        uri = _string(s3_config, "s3Uri") if isinstance(s3_config, Mapping) else None
        if uri is None:
            raise InputError(f"Bedrock job {self.id} names no S3 output location")
        return S3Folder.parse(uri).child(self.id)

    def lifecycle(self) -> BatchLifecycle:
        """The job's lifecycle (times, status, message, counts) with its ``traceparent`` tag."""
        lifecycle = parse_job({**self.job, "jobArn": self.arn})
        if lifecycle.traceparent is None and self.traceparent:
            lifecycle = replace(lifecycle, traceparent=self.traceparent)
        return lifecycle


def _client_error(err: Exception) -> tuple[str, str] | None:
    """``(code, message)`` of a botocore ``ClientError``; ``None`` for any other exception."""
    response = getattr(err, "response", None)
    if not isinstance(response, Mapping):
        return None
    error = response.get("Error") or {}
    return str(error.get("Code", "")), " ".join(str(error.get("Message", "")).split())[:300]


def _typed(err: Exception, what: str, arn: str) -> Exception:
    found = _client_error(err)
    if found is None:
        return BedrockUnavailableError(f"could not {what} Bedrock job {arn}: {type(err).__name__}")
    code, message = found
    kind = BedrockJobError if code in _PERMANENT_CODES else BedrockUnavailableError
    return kind(f"could not {what} Bedrock job {arn}: {code}" + (f": {message}" if message else ""))


def _job_tags(bedrock: Any, arn: str) -> dict[str, str]:
    """The job's tags; empty, with a warning, when Bedrock will not list them (finished jobs may refuse)."""
    try:
        response = bedrock.list_tags_for_resource(resourceARN=arn)
    except Exception as err:
        reason = _typed(err, "list tags of", arn)
        logger.warning("%s; its spans go in a trace of their own unless trace.json names one", reason)
        return {}
    tags = response.get("tags") or []
    return {str(tag.get("key")): str(tag.get("value")) for tag in tags if isinstance(tag, Mapping)}


def read_job(bedrock: Any, arn: str) -> BedrockJob:
    """The job and its ``traceparent`` tag.

    Raises :class:`BedrockJobError` when Bedrock refuses (no such job, a malformed ARN, no
    ``bedrock:GetModelInvocationJob`` permission) and :class:`BedrockUnavailableError` when it
    cannot answer (throttling, an outage) after the SDK's retries.
    """
    try:
        response = bedrock.get_model_invocation_job(jobIdentifier=arn)
    except Exception as err:
        raise _typed(err, "read", arn) from None
    job = {key: value for key, value in response.items() if key != "ResponseMetadata"}
    traceparent = _job_tags(bedrock, arn).get(TRACEPARENT_TAG) or None
    return BedrockJob(arn=_string(job, "jobArn") or arn, job=job, traceparent=traceparent)


# --------------------------------------------------------------------------- its outputs, logged


def output_keys(s3: Any, folder: S3Folder) -> list[str]:
    """Every ``*.jsonl.out`` under the job's folder, in key order (so a rerun reads them in the same order)."""
    paginator = s3.get_paginator("list_objects_v2")
    keys = [
        item["Key"]
        for page in paginator.paginate(Bucket=folder.bucket, Prefix=folder.prefix)
        for item in page.get("Contents") or []
        if item["Key"].endswith(BEDROCK_SUFFIX)
    ]
    return sorted(keys)


def _trace_hint(s3: Any, folder: S3Folder, names: FileNames) -> TraceHint:
    """A ``trace.json`` in the job's output folder, if the submitter left one (else no hint: the tag decides)."""
    location = BatchLocation(bucket=folder.bucket, output_key=f"{folder.prefix}{names.output}").with_defaults(names)
    return trace_hint_for(location, read_trace_json(s3, location), {})


def _with_manifest(s3: Any, folder: S3Folder, lifecycle: BatchLifecycle) -> BatchLifecycle:
    manifest = read_json_object(s3, folder.bucket, posixpath.join(folder.prefix, MANIFEST))
    return lifecycle.with_counts(parse_manifest(manifest)) if manifest else lifecycle


def log_bedrock_job(s3: Any, job: BedrockJob, *, names: FileNames = _DEFAULT_NAMES, **options: Any) -> Summary:
    """Send the job's spans: every output file as one batch, or the job's ``batch_results`` span alone.

    ``options`` are :func:`run_batch` settings (``otlp``, ``delivery``, ``content``, ``on_trace``...);
    for a job with no outputs, those :func:`log_batch_status` takes. Delivery failures are counted
    in the summary, never raised.
    """
    folder = job.output_folder
    keys = output_keys(s3, folder)
    hint = _trace_hint(s3, folder, names)
    lifecycle = _with_manifest(s3, folder, job.lifecycle())
    logger.info("logging Bedrock job", extra={"job_id": job.id, "status": job.status, "output_files": len(keys)})
    if not keys:
        status_options = {name: options[name] for name in ("otlp", "delivery", "on_trace") if name in options}
        return log_batch_status(lifecycle, hint=hint, batch_id=job.id, **status_options)
    streams = [
        (f"{folder.uri}{key[len(folder.prefix) :]}", ObjectStream(s3, folder.bucket, key, "output file"))
        for key in keys
    ]
    try:
        return run_batch(
            None,
            streams,
            batch_id=job.id,
            batch=lifecycle,
            hint=hint,
            provider="bedrock",
            model=job.model,
            **options,
        )
    finally:
        for _, stream in streams:
            stream.close()
