"""Copy a finished OpenAI batch's output and error files into S3, beside its input.

Given the OpenAI batch object (or its id: the batch is then retrieved), the error file is
streamed to ``<prefix><batch_id>/errors.jsonl``, then the output file to ``.../output.jsonl``
(names from :class:`~batchtrace.s3_batch.FileNames`). The error file goes first because the
output file's creation is what starts the S3-triggered logging, which reads both. A batch
without an output file (every request failed or expired) gets an empty ``output.jsonl``.

Files reach 200 MB: each is streamed from the API into a multipart upload, so memory is a few
parts (:class:`TransferSettings`), whatever the file size. A download that breaks off raises
before the upload completes, and the upload is aborted: no partial file is ever left as
``output.jsonl``.

The API is reached through the official ``openai`` SDK, so ``OPENAI_BASE_URL`` has the SDK's
meaning (it includes ``/v1``) and the SDK retries connection errors, 408, 409, 429 and 5xx.
What still fails is one of batchtrace's typed errors (:mod:`batchtrace.errors`): the API key
refused (:class:`OpenAIAuthError`), no such batch or file (:class:`OpenAINotFoundError`,
:class:`OpenAIFileNotFoundError`), another refusal (:class:`OpenAIRequestError`), all of them
:class:`InputError`; or a transient failure (:class:`OpenAIUnavailableError`, for a file
:class:`OpenAIFileError`). The API key never appears in a message or a log line.
"""

from __future__ import annotations

import io
import logging
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from batchtrace.errors import (
    BatchtraceError,
    FetchConfigurationError,
    InvalidBatchPayloadError,
    OpenAIAuthError,
    OpenAIFileError,
    OpenAIFileNotFoundError,
    OpenAINotFoundError,
    OpenAIRequestError,
    OpenAIUnavailableError,
)
from batchtrace.lifecycle.stored import BATCH_JSON
from batchtrace.s3_batch import FileNames

if TYPE_CHECKING:  # imported when first used: a replay or a backfill plan never needs the SDK
    import openai
    from boto3.s3.transfer import TransferConfig

logger = logging.getLogger(__name__)

#: The SDK's default; like ``OPENAI_BASE_URL``, it includes the API version.
DEFAULT_BASE_URL = "https://api.openai.com/v1"
#: The template's default ``BatchPrefix``.
DEFAULT_PREFIX = "batches/"
#: Statuses whose files are worth logging; ``expired`` batches have partial output.
LOGGABLE_STATUSES = frozenset({"completed", "expired"})
#: Trace context passed through to the log function's payload.
TRACE_FIELDS = ("trace_id", "span_id", "traceparent")

_MIB = 1024 * 1024
#: S3's smallest part (but the last).
_MIN_PART_SIZE = 5 * _MIB
_CONNECT_TIMEOUT_S = 10.0
#: Statuses worth retrying: the SDK retries them, and what is left is transient too.
_TRANSIENT_STATUSES = frozenset({408, 409, 429})
_DETAIL_LIMIT = 300

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,199}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class OpenAISettings:
    """How to reach the OpenAI API (the key is not a setting: it is handed in)."""

    #: ``OPENAI_BASE_URL`` as the SDK reads it: it includes ``/v1``.
    base_url: str = DEFAULT_BASE_URL
    #: Seconds to wait for each read of an answer (connecting: at most 10 s).
    timeout_s: float = 120.0
    #: The SDK's retries of connection errors, 408, 409, 429 and 5xx, with backoff.
    max_retries: int = 2

    def client(self, api_key: str) -> openai.OpenAI:
        """An SDK client with these settings and ``api_key`` (checked: see :func:`check_api_key`)."""
        import openai

        return openai.OpenAI(
            api_key=check_api_key(api_key),
            base_url=self.base_url,
            timeout=openai.Timeout(self.timeout_s, connect=min(self.timeout_s, _CONNECT_TIMEOUT_S)),
            max_retries=self.max_retries,
        )


@dataclass(frozen=True, slots=True)
class TransferSettings:
    """The multipart upload: memory is about ``part_size * (concurrency + 1)``, whatever the file size."""

    #: Bytes per part (memory per in-flight part); at least S3's minimum of 5 MiB.
    part_size: int = 8 * _MIB
    #: Parts uploaded (and held in memory) at once.
    concurrency: int = 4

    def config(self) -> TransferConfig:
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(
            multipart_threshold=self.part_size,
            multipart_chunksize=self.part_size,
            max_concurrency=self.concurrency,
            use_threads=True,
        )
        # For a non-seekable stream every part is read into memory before it is sent; s3transfer
        # keeps up to this many such parts (default 10).
        config.max_in_memory_upload_chunks = self.concurrency
        return config


@dataclass(frozen=True, slots=True)
class FetchSettings:
    """Everything copying a batch's files reads from the environment, read and checked together."""

    openai: OpenAISettings = field(default_factory=OpenAISettings)
    transfer: TransferSettings = field(default_factory=TransferSettings)
    #: Where batch folders live in the bucket when the caller names no prefix.
    prefix: str = DEFAULT_PREFIX
    names: FileNames = field(default_factory=FileNames)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FetchSettings:
        """``OPENAI_BASE_URL``, ``BATCHTRACE_OPENAI_TIMEOUT_SECONDS``, ``BATCHTRACE_OPENAI_MAX_RETRIES``,
        ``BATCHTRACE_FETCH_PART_SIZE_MIB``, ``BATCHTRACE_FETCH_CONCURRENCY``, ``BATCHTRACE_PREFIX`` and
        the file names (:meth:`FileNames.from_env`). Raises :class:`ConfigurationError` (for the
        variables read here, its subclass :class:`FetchConfigurationError`).
        """
        env = os.environ if env is None else env
        prefix = env.get("BATCHTRACE_PREFIX") or DEFAULT_PREFIX
        if (problem := prefix_problem(prefix)) is not None:
            raise FetchConfigurationError(f"BATCHTRACE_PREFIX {problem}")
        return cls(
            openai=OpenAISettings(
                base_url=_base_url(env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL),
                timeout_s=_number(env, "BATCHTRACE_OPENAI_TIMEOUT_SECONDS", 120.0, minimum=1.0),
                max_retries=int(_number(env, "BATCHTRACE_OPENAI_MAX_RETRIES", 2, minimum=0)),
            ),
            transfer=TransferSettings(
                part_size=max(int(_number(env, "BATCHTRACE_FETCH_PART_SIZE_MIB", 8, minimum=0) * _MIB), _MIN_PART_SIZE),
                concurrency=int(_number(env, "BATCHTRACE_FETCH_CONCURRENCY", 4, minimum=1)),
            ),
            prefix=prefix,
            names=FileNames.from_env(env),
        )


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise FetchConfigurationError(f"{name} must be a number, got {raw!r}") from None
    if not value >= minimum:
        raise FetchConfigurationError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return value


def _base_url(raw: str) -> str:
    url = raw.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise FetchConfigurationError(f"OPENAI_BASE_URL must be an http(s) URL, got {raw!r}")
    if not parts.path:
        # The SDK appends /batches, /files... to it: an origin alone answers 404 to everything.
        logger.warning("OPENAI_BASE_URL %s has no path: like the openai SDK, batchtrace expects it to end in /v1", url)
    return url


def check_api_key(value: str, source: str = "the OpenAI API key") -> str:
    """The key, stripped; :class:`FetchConfigurationError` unless it looks like a bare key.

    The same value goes into an ``Authorization: Bearer <key>`` header (here and in the state
    machine's connection), so JSON or a ``Bearer ...`` value is a configuration mistake. The
    message never repeats the value.
    """
    key = (value or "").strip()
    if not key:
        raise FetchConfigurationError(f"{source} is empty")
    if any(c.isspace() for c in key) or key.startswith(("{", "[", '"')):
        raise FetchConfigurationError(f"{source} must hold the bare key (sk-...), not JSON or 'Bearer ...'")
    return key


# --------------------------------------------------------------------------- what to copy, and where


def prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot be a batch prefix (empty, or path segments ending in ``/``), or ``None``."""
    if prefix == "":
        return None
    if prefix.startswith("/") or not prefix.endswith("/"):
        return f"must be empty or path segments ending in '/' (no leading '/'), got {prefix!r}"
    if any(part in ("", ".", "..") for part in prefix[:-1].split("/")):
        return f"must not have empty, '.' or '..' segments, got {prefix!r}"
    return None


def _batch_id(value: Any) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidBatchPayloadError(f"batch_id {value!r} is not an OpenAI batch id")
    return value


@dataclass(frozen=True, slots=True)
class Destination:
    """The bucket and prefix a batch's folder is in: ``<prefix><batch_id>/``. Checked when made."""

    bucket: str
    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        if not isinstance(self.bucket, str) or not _BUCKET.match(self.bucket):
            raise InvalidBatchPayloadError(f"bucket {self.bucket!r} is not an S3 bucket name")
        if not isinstance(self.prefix, str):
            raise InvalidBatchPayloadError(f"prefix must be a string, got {type(self.prefix).__name__}")
        if (problem := prefix_problem(self.prefix)) is not None:
            raise InvalidBatchPayloadError(f"prefix {problem}")

    def key(self, batch_id: str, name: str) -> str:
        return f"{self.prefix}{batch_id}/{name}"


@dataclass(frozen=True, slots=True)
class BatchFiles:
    """A finished batch and the ids of its files, read from OpenAI's batch object."""

    batch_id: str
    status: str
    output_file_id: str | None
    error_file_id: str | None
    #: The batch object as OpenAI returned it: stored as ``batch.json`` for the batch's timeline.
    batch_object: Mapping[str, Any] | None = None

    @classmethod
    def from_object(cls, batch: Mapping[str, Any]) -> BatchFiles:
        """Raises :class:`InvalidBatchPayloadError` unless ``batch`` is a completed or expired batch."""
        if not isinstance(batch, Mapping):
            raise InvalidBatchPayloadError(f"an OpenAI batch object is a JSON object, not {type(batch).__name__}")
        batch_id = _batch_id(batch.get("id"))
        status = batch.get("status")
        if status not in LOGGABLE_STATUSES:
            raise InvalidBatchPayloadError(
                f"batch {batch_id} has status {status!r}; only {sorted(LOGGABLE_STATUSES)} batches have files to log"
            )
        return cls(
            batch_id=batch_id,
            status=str(status),
            output_file_id=_file_id(batch, "output_file_id"),
            error_file_id=_file_id(batch, "error_file_id"),
            batch_object=dict(batch),
        )


def _file_id(batch: Mapping[str, Any], name: str) -> str | None:
    value = batch.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidBatchPayloadError(f"{name} {value!r} is not an OpenAI file id")
    return value


# --------------------------------------------------------------------------- the SDK's errors, typed


def _detail(err: openai.APIStatusError, api_key: str) -> str:
    """A short, secret-free reason from an error answer (OpenAI's is ``{"error": {"message"}}``)."""
    body = err.body
    message = body.get("message") if isinstance(body, Mapping) else body
    text = " ".join(str(message or "").split())[:_DETAIL_LIMIT]
    return _redact(text, api_key)


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def _is_file(what: str) -> bool:
    return what.endswith("file")


def _transient(what: str) -> type[OpenAIUnavailableError]:
    """The transient error for ``what``: :class:`OpenAIFileError` (which the state machine retries) for a file."""
    return OpenAIFileError if _is_file(what) else OpenAIUnavailableError


def _typed_status(err: openai.APIStatusError, what: str, object_id: str, api_key: str) -> BatchtraceError:
    """The typed error for an error answer (what is left of it after the SDK's retries)."""
    status = err.status_code
    if status in (401, 403):
        return OpenAIAuthError(what, object_id, status)
    if status == 404:
        return (OpenAIFileNotFoundError if _is_file(what) else OpenAINotFoundError)(what, object_id)
    detail = _detail(err, api_key)
    if status in _TRANSIENT_STATUSES or status >= 500:
        return _transient(what)(what, object_id, f"HTTP {status}" + (f": {detail}" if detail else ""))
    return OpenAIRequestError(what, object_id, status, detail)


def _typed(err: Exception, what: str, object_id: str, api_key: str) -> BatchtraceError | None:
    """The typed error for an SDK or transport error; ``None`` for one that is neither."""
    import openai

    if isinstance(err, openai.APIStatusError):
        return _typed_status(err, what, object_id, api_key)
    if isinstance(err, openai.APITimeoutError):
        return _transient(what)(what, object_id, "timed out")
    if isinstance(err, openai.APIConnectionError):
        cause = type(err.__cause__).__name__ if err.__cause__ else "no answer"
        return _transient(what)(what, object_id, f"connection error ({cause})")
    return None


@contextmanager
def _openai_errors(what: str, object_id: str, api_key: str) -> Iterator[None]:
    try:
        yield
    except Exception as err:
        typed = _typed(err, what, object_id, api_key)
        if typed is None:
            raise
        raise typed from None


def _body(chunks: Iterator[bytes], file_id: str, what: str) -> Iterator[bytes]:
    """The body's chunks; a transport error while they stream (a connection dropped, a body shorter
    than its Content-Length) is :class:`OpenAIFileError`. The SDK's retries are over by then, and
    its transport's error types are its own business, so whatever the iteration raises counts.
    """
    try:
        yield from chunks
    except Exception as err:
        raise OpenAIFileError(what, file_id, f"the download broke off ({type(err).__name__})") from None


# --------------------------------------------------------------------------- copying


class _Download:
    """A read-only file over a streamed answer, for ``upload_fileobj``.

    ``read(n)`` returns exactly ``n`` bytes until the end: s3transfer makes one part of whatever
    one read returns, and every part but the last must be at least 5 MiB. The part is built in
    a ``BytesIO``, whose ``getvalue()`` hands over its buffer: one copy of a part in memory, not
    two (a list of chunks and their join).
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._rest = b""
        self._ended = False
        self.bytes_read = 0

    def read(self, size: int = -1, /) -> bytes:
        wanted = size if size >= 0 else None
        part = io.BytesIO()
        have = part.write(self._take_rest(wanted))
        while not self._ended and (wanted is None or have < wanted):
            chunk = next(self._chunks, None)
            if chunk is None:
                self._ended = True
            elif wanted is not None and have + len(chunk) > wanted:
                # Keep the excess for the next read.
                cut = wanted - have
                have += part.write(memoryview(chunk)[:cut])
                self._rest = chunk[cut:]
            else:
                have += part.write(chunk)
        data = part.getvalue()
        self.bytes_read += len(data)
        return data

    def _take_rest(self, wanted: int | None) -> bytes:
        rest, self._rest = self._rest, b""
        if wanted is not None and len(rest) > wanted:
            rest, self._rest = rest[:wanted], rest[wanted:]
        return rest


def _copy_file(
    client: openai.OpenAI, s3: Any, file_id: str, what: str, bucket: str, key: str, transfer: TransferSettings
) -> None:
    started = time.monotonic()
    with (
        _openai_errors(what, file_id, client.api_key),
        client.files.with_streaming_response.content(file_id) as response,
    ):
        download = _Download(_body(response.iter_bytes(), file_id, what))
        s3.upload_fileobj(
            download, bucket, key, ExtraArgs={"ContentType": "application/jsonl"}, Config=transfer.config()
        )
    logger.info(
        "copied OpenAI file",
        extra={
            "file_id": file_id,
            "key": key,
            "bytes": download.bytes_read,
            "duration_ms": int((time.monotonic() - started) * 1000),
        },
    )


def retrieve_batch_object(client: openai.OpenAI, batch_id: str) -> dict[str, Any]:
    """The batch object as OpenAI returns it (any status, ``metadata`` included), from
    ``GET {base_url}/batches/{batch_id}``; the SDK's errors typed as for the files."""
    batch_id = _batch_id(batch_id)
    with _openai_errors("batch", batch_id, client.api_key):
        batch = client.batches.retrieve(batch_id)
    return batch.model_dump()


def retrieve_batch(client: openai.OpenAI, batch_id: str) -> BatchFiles:
    """The batch's status and file ids, from ``GET {base_url}/batches/{batch_id}``."""
    return BatchFiles.from_object(retrieve_batch_object(client, batch_id))


def copy_file(
    client: openai.OpenAI, s3: Any, file_id: str, what: str, bucket: str, key: str, transfer: TransferSettings
) -> None:
    """Stream one OpenAI file (``what``: "input file", ...) into ``s3://bucket/key``, in bounded memory;
    errors typed as for the batch's output and error files."""
    _copy_file(client, s3, file_id, what, bucket, key, transfer)


@contextmanager
def file_content(client: openai.OpenAI, file_id: str, what: str) -> Iterator[Iterator[bytes]]:
    """One OpenAI file's bytes as they stream in (``batchtrace backfill`` writes them to a local
    folder): nothing is held but the chunk at hand; errors typed as for a copy."""
    with (
        _openai_errors(what, file_id, client.api_key),
        client.files.with_streaming_response.content(file_id) as response,
    ):
        yield _body(response.iter_bytes(), file_id, what)


def upload_stream(
    s3: Any, chunks: Iterator[bytes], bucket: str, key: str, transfer: TransferSettings = TransferSettings()
) -> int:
    """Stream ``chunks`` (any provider's download) into ``s3://bucket/key`` as a multipart upload of
    a few parts in memory, as the batch files are copied; the number of bytes uploaded."""
    download = _Download(chunks)
    s3.upload_fileobj(download, bucket, key, ExtraArgs={"ContentType": "application/jsonl"}, Config=transfer.config())
    return download.bytes_read


def copy_batch_files(
    client: openai.OpenAI,
    s3: Any,
    batch: BatchFiles | Mapping[str, Any] | str,
    destination: Destination,
    *,
    names: FileNames = FileNames(),  # noqa: B008 (a frozen dataclass)
    transfer: TransferSettings = TransferSettings(),
    trace: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Copy a finished batch's error and output files into its folder; return the log function's payload.

    ``batch`` is the OpenAI batch object (a mapping, e.g. ``Batch.model_dump()``), its
    :class:`BatchFiles`, or its id (then it is retrieved). The payload::

        {"bucket", "batch_id", "input_key", "output_key", "errors_key"?, "object_version"?,
         "trace_id"?, "span_id"?, "traceparent"?}

    ``object_version`` is the new output object's version id (in a versioned bucket): the log
    function's idempotency key then matches that of the S3 event for the same upload. ``trace``
    is passed through (its :data:`TRACE_FIELDS` that are set).
    """
    files = _batch_files(client, batch)
    batch_id = files.batch_id
    logger.info(
        "copying batch files",
        extra={
            "batch_id": batch_id,
            "status": files.status,
            "bucket": destination.bucket,
            "folder": destination.key(batch_id, ""),
            "output_file_id": files.output_file_id,
            "error_file_id": files.error_file_id,
        },
    )
    payload: dict[str, Any] = {
        "bucket": destination.bucket,
        "batch_id": batch_id,
        "input_key": destination.key(batch_id, names.input),
        "output_key": destination.key(batch_id, names.output),
    }
    # Errors first: the output file's creation triggers the S3 path, which reads both.
    if files.error_file_id:
        payload["errors_key"] = destination.key(batch_id, names.errors)
        _copy_file(client, s3, files.error_file_id, "error file", destination.bucket, payload["errors_key"], transfer)
    stored = _store_batch_object(s3, files, destination)
    try:
        version = _copy_output(client, s3, files.output_file_id, destination.bucket, payload["output_key"], transfer)
    except Exception:
        if stored:  # a failed copy leaves nothing new in the folder
            s3.delete_object(Bucket=destination.bucket, Key=stored)
        raise
    if version:
        payload["object_version"] = version
    payload.update(_trace_fields(trace))
    return payload


def _batch_files(client: openai.OpenAI, batch: BatchFiles | Mapping[str, Any] | str) -> BatchFiles:
    """The batch's status and file ids: as given, read from its object, or retrieved by its id."""
    if isinstance(batch, str):
        return retrieve_batch(client, batch)
    if isinstance(batch, BatchFiles):
        return batch
    return BatchFiles.from_object(batch)


def _store_batch_object(s3: Any, files: BatchFiles, destination: Destination) -> str | None:
    """``batch.json`` beside the files, before the output: the final object gives ``batch_results``
    its timeline (created to completed, every status on the way) and the counts to reconcile."""
    if files.batch_object is None:
        return None
    body = orjson.dumps(files.batch_object, default=str)
    key = destination.key(files.batch_id, BATCH_JSON)
    s3.put_object(Bucket=destination.bucket, Key=key, Body=body, ContentType="application/json")
    return key


def _copy_output(
    client: openai.OpenAI, s3: Any, file_id: str | None, bucket: str, key: str, transfer: TransferSettings
) -> str | None:
    """Copy the output file (or write an empty one when there is none); its new version id, if versioned."""
    if file_id:
        _copy_file(client, s3, file_id, "output file", bucket, key, transfer)
    else:
        # Every request failed (or expired): an empty output file still starts the logging.
        s3.put_object(Bucket=bucket, Key=key, Body=b"", ContentType="application/jsonl")
        logger.info("batch has no output file; wrote an empty one", extra={"key": key})
    version = s3.head_object(Bucket=bucket, Key=key).get("VersionId")
    return str(version) if version and version != "null" else None


def _trace_fields(trace: Mapping[str, str] | None) -> dict[str, str]:
    """The trace context to pass on: the :data:`TRACE_FIELDS` of ``trace`` that are set."""
    given = trace or {}
    return {name: given[name] for name in TRACE_FIELDS if given.get(name)}
