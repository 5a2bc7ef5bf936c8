"""OpenAI's batch webhooks: a signed request answered at once; later, the batch's files in S3 and its spans sent.

OpenAI calls an endpoint of yours when a batch ends (``batch.completed``, ``batch.failed``,
``batch.expired``, ``batch.cancelled``). The body is ``{"id": "evt_...", "type", "created_at",
"data": {"id": "batch_..."}}``, signed per Standard Webhooks: headers ``webhook-id``,
``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``
keyed with the base64 part of the endpoint's ``whsec_`` secret. OpenAI wants an answer within
seconds and retries anything else for up to three days; copying a 200 MB batch takes longer. So
there are two halves:

1. :func:`receive`, at once: the Function URL request (:meth:`WebhookRequest.from_function_url`)
   is verified and read. Refusals are :class:`~batchtrace.errors.WebhookRejected` with their
   HTTP status: 401 for a missing or wrong signature or a timestamp more than five minutes off
   (either way: a replay), 400 for a body that is not an event, 405 for a method other than
   POST. A signed event of another type (the endpoint may be subscribed to more) is
   acknowledged and ignored: refusing it would only make OpenAI send it again for days.
2. :func:`process_batch_event`, later (the handler invokes itself asynchronously): the batch is
   retrieved through the SDK. A completed or expired batch with files has them copied into
   ``<prefix><batch_id>/`` (its input too, from ``input_file_id``, when the folder has none) and
   logged from there; a failed or cancelled batch, or one without files, gets its
   ``batch_results`` span alone, in ERROR. Either way the trace is ``trace.json``'s when the
   folder has one, else the ``traceparent`` the submitter put in the batch's metadata
   (:func:`batchtrace.submission_metadata`), else a new one.

The signature is checked with ``standardwebhooks``, the Standard Webhooks reference library,
rather than the openai SDK's ``client.webhooks.unwrap``: the SDK's helper hangs off a client,
which wants an API key, so the half that must answer in seconds would fetch the OpenAI key only
to check an HMAC; the reference library needs nothing but the secret, has no dependencies, and
accepts only versioned (``v1,``) signatures, where the SDK also takes a bare one. The tests
check that OpenAI's SDK accepts exactly what is accepted here.

Nothing here knows Lambda: the handler (``functions/openai_webhook``) adds the secrets, the
idempotency records and the self-invocation.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import openai
import orjson
from standardwebhooks import Webhook, WebhookVerificationError

from batchtrace.errors import (
    ConfigurationError,
    DeliveryError,
    InvalidBatchPayloadError,
    OpenAIUnavailableError,
    WebhookRejected,
)
from batchtrace.lifecycle.status import StatusRequest, log_s3_batch_status
from batchtrace.s3_batch import BatchLocation, FileNames, run_s3_batch
from batchtrace.sources.openai_files import (
    LOGGABLE_STATUSES,
    BatchFiles,
    Destination,
    TransferSettings,
    copy_batch_files,
    copy_file,
    retrieve_batch_object,
)
from batchtrace.tally import Summary

logger = logging.getLogger(__name__)

#: The events that announce a batch's end: what this receiver acts on.
BATCH_EVENT_TYPES = frozenset({"batch.completed", "batch.failed", "batch.expired", "batch.cancelled"})
#: The statuses a batch can end in; any other after its event is a race, retried later.
TERMINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
#: The key of the handler's self-invocation payload: ``{JOB_KEY: BatchEvent.as_job()}``.
JOB_KEY = "openai_webhook_job"
WEBHOOK_ID = "webhook-id"

_BATCH_ID = re.compile(r"^batch_[A-Za-z0-9_-]{1,200}$")
_JOB_FIELDS = ("webhook_id", "event_id", "type", "batch_id")
#: What the caller is told (the log line says more): nothing that helps a forger.
_REASONS = {
    400: "not an OpenAI webhook event",
    401: "invalid webhook signature",
    405: "method not allowed: POST only",
}


# --------------------------------------------------------------------------- the request


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """An HTTP request as a Function URL delivers it: the method, lower-cased headers, the raw body."""

    method: str
    headers: Mapping[str, str]
    body: bytes

    @classmethod
    def from_function_url(cls, event: Mapping[str, Any]) -> WebhookRequest:
        """The request in a Function URL event (payload version 2.0); 400 when the body cannot be decoded."""
        http = _mapping(_mapping(event.get("requestContext")).get("http"))
        headers = {str(name).lower(): str(value) for name, value in _mapping(event.get("headers")).items()}
        return cls(method=str(http.get("method") or "").upper(), headers=headers, body=_body(event))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _body(event: Mapping[str, Any]) -> bytes:
    """The body's bytes: Function URLs base64-encode bodies that are not text (``isBase64Encoded``)."""
    body = event.get("body") or ""
    if not isinstance(body, str):
        raise WebhookRejected(400, "the request body is not a string")
    if not event.get("isBase64Encoded"):
        return body.encode()
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error:
        raise WebhookRejected(400, "the request body is not valid base64 (isBase64Encoded)") from None


def is_function_url_event(event: Any) -> bool:
    """Whether ``event`` is an HTTP request through a Function URL (not the handler's own job payload)."""
    return isinstance(event, Mapping) and "http" in _mapping(event.get("requestContext"))


def http_response(status: int, message: str | None = None) -> dict[str, Any]:
    """A Function URL response: the status and a small JSON body."""
    text = message or _REASONS.get(status, "ok")
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": orjson.dumps({"message": text}).decode(),
    }


# --------------------------------------------------------------------------- verifying and reading it


@dataclass(frozen=True, slots=True)
class BatchEvent:
    """A verified batch event: which delivery (``webhook_id``), which event, which batch."""

    webhook_id: str
    event_id: str
    type: str
    batch_id: str

    def as_job(self) -> dict[str, str]:
        """The payload of the asynchronous half (and the idempotency records' data)."""
        return {name: getattr(self, name) for name in _JOB_FIELDS}

    @classmethod
    def from_job(cls, job: Any) -> BatchEvent:
        """The event in a job payload; :class:`InvalidBatchPayloadError` for anything else."""
        if not isinstance(job, Mapping) or not all(isinstance(job.get(name), str) for name in _JOB_FIELDS):
            raise InvalidBatchPayloadError(f"a webhook job needs the strings {list(_JOB_FIELDS)}")
        event = cls(**{name: job[name] for name in _JOB_FIELDS})
        if event.type not in BATCH_EVENT_TYPES or not _BATCH_ID.match(event.batch_id):
            raise InvalidBatchPayloadError(f"webhook job {event.type} for {event.batch_id!r} is not a batch event")
        return event


def verify_signature(request: WebhookRequest, secret: str) -> None:
    """401 unless the request carries a valid ``v1`` signature made within five minutes of now.

    A secret that is not ``whsec_<base64>`` is :class:`ConfigurationError` (the receiver's
    fault, not the sender's: never a 401).
    """
    try:
        verifier = Webhook(secret.strip())
    except Exception as err:  # binascii.Error, EmptyWebhookSecretError: the secret's shape, never its value
        raise ConfigurationError(f"the OpenAI webhook secret is not a whsec_ secret ({type(err).__name__})") from None
    try:
        verifier.verify(request.body, dict(request.headers), json_parse=False)
    except (WebhookVerificationError, ValueError) as err:
        # ValueError: a header without "v1,", bad base64, a body that is not UTF-8.
        raise WebhookRejected(401, f"webhook signature rejected: {err or type(err).__name__}") from None


def _event_document(body: bytes) -> dict[str, Any]:
    """The body as an event object (``id`` and ``type`` strings); 400 otherwise."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise WebhookRejected(400, "the webhook body is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str) or not isinstance(doc.get("id"), str):
        raise WebhookRejected(400, "the webhook body is not an OpenAI event (an object with 'id' and 'type')")
    return doc


def parse_event(body: bytes, webhook_id: str) -> BatchEvent | None:
    """The batch event in a (verified) body; ``None`` for an event of another type; 400 for no event."""
    doc = _event_document(body)
    if doc["type"] not in BATCH_EVENT_TYPES:
        return None
    batch_id = _mapping(doc.get("data")).get("id")
    if not isinstance(batch_id, str) or not _BATCH_ID.match(batch_id):
        raise WebhookRejected(400, f"the {doc['type']} event names no batch in data.id")
    return BatchEvent(webhook_id=webhook_id, event_id=doc["id"], type=doc["type"], batch_id=batch_id)


def receive(request: WebhookRequest, secret: str) -> BatchEvent | None:
    """Verify and read a delivery: its batch event, ``None`` for another event, or :class:`WebhookRejected`."""
    if request.method != "POST":
        raise WebhookRejected(405, f"a webhook is a POST, not {request.method or 'no method'}")
    verify_signature(request, secret)
    return parse_event(request.body, request.headers[WEBHOOK_ID])


# --------------------------------------------------------------------------- the work


@dataclass(frozen=True, slots=True)
class Folder:
    """Where a batch's files go (``<prefix><batch_id>/`` in the bucket), under which names, how they stream."""

    destination: Destination
    names: FileNames = field(default_factory=FileNames)
    transfer: TransferSettings = field(default_factory=TransferSettings)


class LogFiles(Protocol):
    """Logs a batch folder; the summary as a dict (the handler's is idempotent per upload)."""

    def __call__(self, *, location: BatchLocation) -> dict[str, Any]: ...


def delivered(summary: Summary) -> dict[str, Any]:
    """The summary as a dict, or :class:`DeliveryError` (after all that could be delivered was)."""
    if summary.spans_failed:
        raise DeliveryError(summary)
    return summary.as_dict()


def log_folder(s3: Any, location: BatchLocation, *, names: FileNames, **options: Any) -> dict[str, Any]:
    """:func:`run_s3_batch` on a copied folder; see :func:`delivered`. ``options`` go to :func:`run_batch`."""
    return delivered(run_s3_batch(s3, location, names=names, **options))


def _object_exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except Exception as err:
        code = str(getattr(err, "response", {}).get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def _copy_input(client: openai.OpenAI, s3: Any, files: BatchFiles, folder: Folder) -> None:
    """The batch's input file into the folder, unless the submitter put one there (with its metadata)."""
    bucket, key = folder.destination.bucket, folder.destination.key(files.batch_id, folder.names.input)
    if _object_exists(s3, bucket, key):
        return
    input_file_id = _mapping(files.batch_object).get("input_file_id")
    if not isinstance(input_file_id, str) or not input_file_id:
        raise InvalidBatchPayloadError(
            f"batch {files.batch_id} names no input_file_id and s3://{bucket}/{key} is absent"
        )
    copy_file(client, s3, input_file_id, "input file", bucket, key, folder.transfer)


def copy_folder(client: openai.OpenAI, s3: Any, files: BatchFiles, folder: Folder) -> BatchLocation:
    """Input (when missing), errors, ``batch.json``, then output: the folder to log, keyed by the output's version."""
    _copy_input(client, s3, files, folder)
    payload = copy_batch_files(client, s3, files, folder.destination, names=folder.names, transfer=folder.transfer)
    return BatchLocation(
        bucket=payload["bucket"],
        output_key=payload["output_key"],
        input_key=payload["input_key"],
        errors_key=payload.get("errors_key"),
        batch_id=files.batch_id,
        object_tag=payload.get("object_version"),
    )


def _files_of(batch: Mapping[str, Any]) -> BatchFiles | None:
    """The files to copy: a completed or expired batch's output or error file; ``None`` when there are none."""
    if batch.get("status") not in LOGGABLE_STATUSES:
        return None
    if not (batch.get("output_file_id") or batch.get("error_file_id")):
        return None
    return BatchFiles.from_object(batch)


def _terminal_batch(client: openai.OpenAI, event: BatchEvent) -> dict[str, Any]:
    """The batch object; a transient error while it is not yet in a final state (Lambda retries)."""
    batch = retrieve_batch_object(client, event.batch_id)
    status = batch.get("status")
    if status not in TERMINAL_STATUSES:
        raise OpenAIUnavailableError("batch", event.batch_id, f"still {status!r} after its {event.type} event")
    return batch


def process_batch_event(
    event: BatchEvent,
    client: openai.OpenAI,
    s3: Any,
    folder: Folder,
    *,
    log_files: LogFiles | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Retrieve the event's batch, copy its files and log it; the summary as a dict.

    ``log_files`` logs the copied folder (default :func:`log_folder`); ``options`` (``otlp``,
    ``delivery``, ``on_trace``) go to the logging. Raises the typed errors of
    :mod:`batchtrace.sources.openai_files`, :class:`DeliveryError` when spans were not delivered.
    """
    batch = _terminal_batch(client, event)
    files = _files_of(batch)
    logger.info("batch event", extra={"batch_id": event.batch_id, "event": event.type, "status": batch["status"]})
    if files is None:
        request = StatusRequest(
            batch=batch, bucket=folder.destination.bucket, prefix=folder.destination.prefix, batch_id=event.batch_id
        )
        return delivered(log_s3_batch_status(s3, request, names=folder.names, **options))
    location = copy_folder(client, s3, files, folder)
    if log_files is not None:
        return log_files(location=location)
    return log_folder(s3, location, names=folder.names, **options)
