"""Step Functions task: copy a finished OpenAI batch's files into S3, beside its input.

The batch lifecycle state machine (``statemachine/batch_lifecycle.asl.json``) calls this once
the batch is ``completed`` or ``expired``. Its payload is the state machine's data::

    {"batch_id": "batch_...", "bucket": "...", "prefix": "batches/",
     "batch": {"status": "completed", "object": {<the OpenAI batch object>}},
     "trace_id"?: "...", "span_id"?: "...", "traceparent"?: "..."}

(``batch`` may also be the OpenAI batch object itself, for a direct invocation.) Each file is
streamed from ``GET {OPENAI_BASE_URL}/v1/files/{file_id}/content`` into
``<prefix><batch_id>/errors.jsonl`` and ``.../output.jsonl`` with a multipart upload of bounded
memory (files reach 200 MB). The error file goes first: the output file's creation is what
triggers the S3 path. A batch without an output file (every request failed) gets an empty
``output.jsonl``. The return value is exactly LogBatchResultsFunction's payload::

    {"bucket", "output_key", "input_key", "errors_key"?, "batch_id", "object_version"?,
     "trace_id"?, "span_id"?, "traceparent"?}

``object_version`` is the new output object's S3 version id, so LogBatchResultsFunction's
idempotency key matches the one of the S3 event for the same upload.

The API key comes from Secrets Manager (``OPENAI_API_KEY_SECRET_ARN``, SecretString = the bare
key) and is never logged. Errors are typed, so the state machine can tell them apart:
``OpenAIFileError`` (transient: retried), ``OpenAIFileNotFoundError``, ``OpenAIAuthError``,
``InvalidBatchPayloadError`` and ``FetchConfigurationError`` (not retried).

Self-contained (no sibling modules), so tests can load it by path next to the other ``app``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
import urllib3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.typing import LambdaContext
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

logger = Logger()

INPUT_NAME = "input.jsonl"
OUTPUT_NAME = "output.jsonl"
ERRORS_NAME = "errors.jsonl"
#: Statuses whose files are worth logging; ``expired`` batches have partial output.
LOGGABLE_STATUSES = frozenset({"completed", "expired"})
TRACE_FIELDS = ("trace_id", "span_id", "traceparent")
DEFAULT_BASE_URL = "https://api.openai.com"
_MIB = 1024 * 1024
_SECRET_MAX_AGE_S = 300
_ERROR_BODY_LIMIT = 300

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,199}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


# --------------------------------------------------------------------------- errors


class FetchError(Exception):
    """Base of the errors this function raises on purpose; ``str(err)`` is a one-line reason."""


class FetchConfigurationError(FetchError):
    """The function's environment or secret is unusable (not retried: redeploy or fix the secret)."""


class InvalidBatchPayloadError(FetchError):
    """The payload does not describe a finished batch this function can copy (not retried)."""


class OpenAIAuthError(FetchError):
    """OpenAI refused the API key (401/403) for a file (not retried: fix the key)."""

    def __init__(self, file_id: str, status: int) -> None:
        super().__init__(f"OpenAI refused the API key for file {file_id} (HTTP {status})")
        self.file_id = file_id
        self.status = status


class OpenAIFileNotFoundError(FetchError):
    """OpenAI has no such file (404): deleted, or the id is wrong (not retried)."""

    def __init__(self, file_id: str, what: str) -> None:
        super().__init__(f"OpenAI {what} {file_id} not found (HTTP 404)")
        self.file_id = file_id


class OpenAIFileError(FetchError):
    """A file could not be downloaded: connection error, 5xx/429 after retries, a cut-off body.

    Transient: the state machine retries the task.
    """

    def __init__(self, file_id: str, reason: str) -> None:
        super().__init__(f"could not download OpenAI file {file_id}: {reason}")
        self.file_id = file_id


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class FetchSettings:
    """What the function reads from its environment (template.yaml sets these)."""

    base_url: str
    api_key_secret_arn: str
    #: Multipart part size: memory per in-flight part. S3's minimum is 5 MiB.
    part_size: int
    #: Parts uploaded (and held in memory) at once.
    concurrency: int
    connect_timeout_s: float
    read_timeout_s: float
    #: urllib3's backoff factor between retries of 408/429/5xx and connection errors.
    retry_backoff_s: float

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FetchSettings:
        env = os.environ if env is None else env
        base_url = (env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if not base_url.startswith(("https://", "http://")):
            raise FetchConfigurationError(f"OPENAI_BASE_URL must be an http(s) URL, got {base_url!r}")
        secret = env.get("OPENAI_API_KEY_SECRET_ARN") or ""
        if not secret:
            raise FetchConfigurationError("OPENAI_API_KEY_SECRET_ARN is not set")
        try:
            part_mib = float(env.get("FETCH_PART_SIZE_MIB") or 8)
            concurrency = int(env.get("FETCH_CONCURRENCY") or 4)
            connect = float(env.get("OPENAI_CONNECT_TIMEOUT_SECONDS") or 10)
            read = float(env.get("OPENAI_READ_TIMEOUT_SECONDS") or 120)
            backoff = float(env.get("OPENAI_RETRY_BACKOFF_SECONDS") or 1)
        except ValueError as err:
            raise FetchConfigurationError(f"invalid numeric setting: {err}") from None
        return cls(
            base_url=base_url,
            api_key_secret_arn=secret,
            part_size=max(int(part_mib * _MIB), 5 * _MIB),
            concurrency=max(concurrency, 1),
            connect_timeout_s=connect,
            read_timeout_s=read,
            retry_backoff_s=max(backoff, 0.0),
        )


# --------------------------------------------------------------------------- payload


@dataclass(frozen=True, slots=True)
class BatchFiles:
    """A validated payload: which batch, where its folder is, which OpenAI files to copy."""

    batch_id: str
    bucket: str
    folder: str
    status: str
    output_file_id: str | None
    error_file_id: str | None
    trace: dict[str, str]

    @classmethod
    def from_event(cls, event: Any) -> BatchFiles:
        if not isinstance(event, Mapping):
            raise InvalidBatchPayloadError(f"expected a JSON object, got {type(event).__name__}")
        batch_id = _string(event, "batch_id")
        if not _ID.match(batch_id):
            raise InvalidBatchPayloadError(f"batch_id {batch_id!r} is not an OpenAI batch id")
        bucket = _string(event, "bucket")
        if not _BUCKET.match(bucket):
            raise InvalidBatchPayloadError(f"bucket {bucket!r} is not an S3 bucket name")
        prefix = event.get("prefix", "")
        if not isinstance(prefix, str) or not _valid_prefix(prefix):
            raise InvalidBatchPayloadError(
                f"prefix {prefix!r} must be empty or path segments ending in '/' (no leading '/', no '..')"
            )
        batch = event.get("batch")
        if isinstance(batch, Mapping) and isinstance(batch.get("object"), Mapping):
            batch = batch["object"]
        if not isinstance(batch, Mapping):
            raise InvalidBatchPayloadError("the payload needs 'batch': the OpenAI batch object")
        if batch.get("id") not in (None, batch_id):
            raise InvalidBatchPayloadError(f"batch object {batch.get('id')!r} is not batch {batch_id}")
        status = batch.get("status")
        if status not in LOGGABLE_STATUSES:
            raise InvalidBatchPayloadError(
                f"batch {batch_id} has status {status!r}; only {sorted(LOGGABLE_STATUSES)} batches have files to log"
            )
        trace = {}
        for name in TRACE_FIELDS:
            value = event.get(name)
            if value is None or value == "":
                continue
            if not isinstance(value, str):
                raise InvalidBatchPayloadError(f"{name} must be a string, got {type(value).__name__}")
            trace[name] = value
        return cls(
            batch_id=batch_id,
            bucket=bucket,
            folder=f"{prefix}{batch_id}/",
            status=str(status),
            output_file_id=_file_id(batch, "output_file_id"),
            error_file_id=_file_id(batch, "error_file_id"),
            trace=trace,
        )

    def key(self, name: str) -> str:
        return self.folder + name


def _string(event: Mapping[str, Any], name: str) -> str:
    value = event.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidBatchPayloadError(f"the payload needs a non-empty string {name!r}")
    return value


def _valid_prefix(prefix: str) -> bool:
    if prefix == "":
        return True
    if prefix.startswith("/") or not prefix.endswith("/"):
        return False
    return all(part not in ("", ".", "..") for part in prefix[:-1].split("/"))


def _file_id(batch: Mapping[str, Any], name: str) -> str | None:
    value = batch.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidBatchPayloadError(f"{name} {value!r} is not an OpenAI file id")
    return value


# --------------------------------------------------------------------------- download


class _Download:
    """A file-like view of an OpenAI file download for ``upload_fileobj`` (read-only, not seekable).

    Read errors (a dropped connection, a body shorter than its Content-Length) become
    :class:`OpenAIFileError`, so the upload is aborted and the task is retried.
    """

    def __init__(self, response: urllib3.BaseHTTPResponse, file_id: str) -> None:
        self._response = response
        self.file_id = file_id
        self.bytes_read = 0

    def read(self, amt: int | None = -1) -> bytes:
        try:
            data = self._response.read(None if amt is None or amt < 0 else amt)
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise OpenAIFileError(self.file_id, f"the download broke off ({type(err).__name__})") from None
        self.bytes_read += len(data)
        return data

    def close(self) -> None:
        self._response.release_conn()


def _error_detail(response: urllib3.BaseHTTPResponse, api_key: str) -> str:
    """A short, secret-free reason from an error response's body (OpenAI: {"error": {"message"}})."""
    try:
        body = response.read(64 * 1024, decode_content=True)
    except Exception:
        body = b""
    finally:
        response.release_conn()
    text = body.decode("utf-8", "replace")
    try:
        message = json.loads(text).get("error", {}).get("message") or text
    except Exception:
        message = text
    message = " ".join(str(message).split())[:_ERROR_BODY_LIMIT]
    return _redact(message, api_key)


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def open_file(http: urllib3.PoolManager, base_url: str, api_key: str, file_id: str, what: str) -> _Download:
    """Start downloading an OpenAI file's content; raise a typed error unless the answer is 2xx."""
    url = f"{base_url}/v1/files/{file_id}/content"
    try:
        response = http.request(
            "GET",
            url,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/octet-stream, */*"},
            preload_content=False,
        )
    except urllib3.exceptions.HTTPError as err:
        # The message of urllib3's errors names the URL and the cause, never the headers.
        raise OpenAIFileError(file_id, _redact(f"{type(err).__name__}: {err}", api_key)) from None
    if response.status == 404:
        response.drain_conn()
        response.release_conn()
        raise OpenAIFileNotFoundError(file_id, what)
    if response.status in (401, 403):
        response.drain_conn()
        response.release_conn()
        raise OpenAIAuthError(file_id, response.status)
    if not 200 <= response.status < 300:
        detail = _error_detail(response, api_key)
        raise OpenAIFileError(file_id, f"HTTP {response.status}" + (f": {detail}" if detail else ""))
    return _Download(response, file_id)


# --------------------------------------------------------------------------- copy


def _transfer_config(settings: FetchSettings) -> TransferConfig:
    config = TransferConfig(
        multipart_threshold=settings.part_size,
        multipart_chunksize=settings.part_size,
        max_concurrency=settings.concurrency,
        use_threads=True,
    )
    # For a non-seekable stream every part is read into memory before it is sent; s3transfer
    # keeps up to this many such parts (default 10): the memory bound is about
    # part_size * (concurrency + 1), whatever the file size.
    config.max_in_memory_upload_chunks = settings.concurrency
    return config


def _copy(
    s3: Any,
    http: urllib3.PoolManager,
    settings: FetchSettings,
    api_key: str,
    files: BatchFiles,
    file_id: str,
    name: str,
    what: str,
) -> int:
    started = time.monotonic()
    download = open_file(http, settings.base_url, api_key, file_id, what)
    try:
        s3.upload_fileobj(
            download,
            files.bucket,
            files.key(name),
            ExtraArgs={"ContentType": "application/jsonl"},
            Config=_transfer_config(settings),
        )
    finally:
        download.close()
    logger.info(
        "copied OpenAI file",
        extra={
            "file_id": file_id,
            "key": files.key(name),
            "bytes": download.bytes_read,
            "duration_ms": int((time.monotonic() - started) * 1000),
        },
    )
    return download.bytes_read


def copy_batch_files(
    event: Any, *, settings: FetchSettings, s3: Any, http: urllib3.PoolManager, read_key: Callable[[], str]
) -> dict[str, Any]:
    """Copy the batch's files into its folder; return LogBatchResultsFunction's payload.

    The payload is validated before ``read_key`` fetches the API key: a bad request costs no
    call to Secrets Manager, let alone to OpenAI.
    """
    files = BatchFiles.from_event(event)
    api_key = read_key()
    logger.append_keys(batch_id=files.batch_id)
    logger.info(
        "copying batch files",
        extra={
            "status": files.status,
            "bucket": files.bucket,
            "folder": files.folder,
            "output_file_id": files.output_file_id,
            "error_file_id": files.error_file_id,
        },
    )
    payload: dict[str, Any] = {
        "bucket": files.bucket,
        "batch_id": files.batch_id,
        "input_key": files.key(INPUT_NAME),
        "output_key": files.key(OUTPUT_NAME),
    }
    # Errors first: the output file's creation triggers the S3 path, which reads both.
    if files.error_file_id:
        _copy(s3, http, settings, api_key, files, files.error_file_id, ERRORS_NAME, "error file")
        payload["errors_key"] = files.key(ERRORS_NAME)
    if files.output_file_id:
        _copy(s3, http, settings, api_key, files, files.output_file_id, OUTPUT_NAME, "output file")
    else:
        # Every request failed (or expired): an empty output file still starts the logging.
        s3.put_object(Bucket=files.bucket, Key=files.key(OUTPUT_NAME), Body=b"", ContentType="application/jsonl")
        logger.info("batch has no output file; wrote an empty one", extra={"key": files.key(OUTPUT_NAME)})
    head = s3.head_object(Bucket=files.bucket, Key=files.key(OUTPUT_NAME))
    version = head.get("VersionId")
    if version and version != "null":
        payload["object_version"] = version
    payload.update(files.trace)
    return payload


# --------------------------------------------------------------------------- Lambda


@cache
def _s3_client() -> Any:
    return boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 5}))


@cache
def _secrets() -> parameters.SecretsProvider:
    return parameters.SecretsProvider(boto3_client=boto3.client("secretsmanager"))


@cache
def _http(connect_timeout_s: float, read_timeout_s: float, backoff_s: float) -> urllib3.PoolManager:
    retries = urllib3.Retry(
        total=5,
        connect=3,
        read=2,
        status=4,
        backoff_factor=backoff_s,
        status_forcelist=(408, 429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    return urllib3.PoolManager(retries=retries, timeout=urllib3.Timeout(connect=connect_timeout_s, read=read_timeout_s))


def read_api_key(secret_arn: str) -> str:
    """The OpenAI API key from Secrets Manager (cached for a few minutes); never logged."""
    value = _secrets().get(secret_arn, max_age=_SECRET_MAX_AGE_S)
    key = (value.decode() if isinstance(value, bytes) else str(value or "")).strip()
    # The same SecretString goes into the polling connection's "Bearer <key>" header.
    if not key or any(c.isspace() for c in key) or key.startswith("{"):
        raise FetchConfigurationError(
            "the OpenAI API key secret must hold the bare key (sk-...) as its SecretString, not JSON or 'Bearer ...'"
        )
    return key


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = FetchSettings.from_env()
    try:
        return copy_batch_files(
            event,
            settings=settings,
            s3=_s3_client(),
            http=_http(settings.connect_timeout_s, settings.read_timeout_s, settings.retry_backoff_s),
            read_key=lambda: read_api_key(settings.api_key_secret_arn),
        )
    except FetchError as err:
        logger.error(str(err), extra={"error_type": type(err).__name__})
        raise
