"""A batch stored in S3: find its files beside the output object, read its trace metadata,
and run it through the pipeline straight from S3 streams.

Layout (README, "Using it"): ``<prefix>/<batch_id>/{input.jsonl, trace.json, errors.jsonl, output.jsonl}``.
The client is plain boto3, so ``AWS_ENDPOINT_URL_S3`` points it at any S3 API (moto, MinIO).
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson

from batchtrace.errors import ConfigurationError, MissingFileError
from batchtrace.lifecycle.stored import stored_lifecycle
from batchtrace.read.prefetch import ReadAhead
from batchtrace.run import run_batch
from batchtrace.tally import Summary
from batchtrace.trace_link import TraceHint, hint_from_trace_json

logger = logging.getLogger(__name__)


#: The variables that rename a batch's files (README, "Configuration"), by ``FileNames`` field.
FILE_NAME_VARIABLES = {
    "input": "BATCHTRACE_INPUT_NAME",
    "output": "BATCHTRACE_OUTPUT_NAME",
    "errors": "BATCHTRACE_ERRORS_NAME",
    "trace": "BATCHTRACE_TRACE_NAME",
}


@dataclass(slots=True, frozen=True)
class FileNames:
    """The names of a batch's files inside its folder (configurable; the README's defaults)."""

    input: str = "input.jsonl"
    errors: str = "errors.jsonl"
    trace: str = "trace.json"
    output: str = "output.jsonl"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FileNames:
        """The names from ``BATCHTRACE_{INPUT,OUTPUT,ERRORS,TRACE}_NAME``; unset ones keep their defaults.

        Raises :class:`ConfigurationError` for a name that is not one plain path segment.
        """
        env = os.environ if env is None else env
        names = {field: value.strip() for field, var in FILE_NAME_VARIABLES.items() if (value := env.get(var, ""))}
        for field, name in names.items():
            if not name or "/" in name or name in (".", ".."):
                raise ConfigurationError(f"{FILE_NAME_VARIABLES[field]} must be a plain file name, got {name!r}")
        return cls(**names)


@dataclass(slots=True, frozen=True)
class BatchLocation:
    """Everything needed to find one batch in S3, plus any trace context the caller hands in.

    Unset keys default to siblings of ``output_key``; an unset ``batch_id`` defaults to the
    batch object's id in ``trace.json``, then to the output's folder name.
    """

    bucket: str
    output_key: str
    input_key: str | None = None
    errors_key: str | None = None
    trace_key: str | None = None
    batch_id: str | None = None
    #: The output object's version id, sequencer or ETag: which upload this is (for idempotency).
    #: The latest object is read regardless, so a redelivered old event sends the same spans.
    object_tag: str | None = None
    traceparent: str | None = None
    trace_id: str | None = None
    span_id: str | None = None

    def with_defaults(self, names: FileNames = FileNames()) -> BatchLocation:
        folder = posixpath.dirname(self.output_key)

        def beside(name: str) -> str:
            return posixpath.join(folder, name) if folder else name

        return replace(
            self,
            input_key=self.input_key or beside(names.input),
            errors_key=self.errors_key or beside(names.errors),
            trace_key=self.trace_key or beside(names.trace),
        )

    def uri(self, key: str | None) -> str:
        return f"s3://{self.bucket}/{key}"


def s3_client() -> Any:
    """A boto3 S3 client with standard retries (5 attempts); ``AWS_ENDPOINT_URL_S3`` points it elsewhere."""
    import boto3  # here, not at import: library users of batchtrace need no AWS SDK loaded
    from botocore.config import Config

    return boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 5}))


def _is_missing(err: Exception) -> bool:
    response = getattr(err, "response", None)
    code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, Mapping) else ""
    return code in ("NoSuchKey", "404", "NotFound", "NoSuchVersion")


def _get(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """``get_object``'s response, or ``None`` when the object does not exist (yet)."""
    try:
        return s3.get_object(Bucket=bucket, Key=key)  # type: ignore[no-any-return]
    except Exception as err:
        if _is_missing(err):
            return None
        raise


def _exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except Exception as err:
        if _is_missing(err):
            return False
        raise
    return True


class _ObjectStream:
    """An S3 object's body, requested only when first read.

    The results are read after the whole input has been indexed (seconds for 200 MB); a body
    opened up front would sit idle on its connection all that time, which S3 may cut.
    """

    def __init__(self, s3: Any, bucket: str, key: str, what: str) -> None:
        self._s3, self._bucket, self._key, self._what = s3, bucket, key, what
        self._body: Any = None

    def read(self, size: int = -1, /) -> bytes:
        if self._body is None:
            response = _get(self._s3, self._bucket, self._key)
            if response is None:
                raise MissingFileError(self._what, f"s3://{self._bucket}/{self._key} (deleted while being processed)")
            self._body = response["Body"]
        return bytes(self._body.read(size if size >= 0 else None))

    def close(self) -> None:
        if self._body is not None:
            self._body.close()


def read_trace_json(s3: Any, location: BatchLocation) -> dict[str, Any] | None:
    """``trace.json`` as a dict; ``None`` when absent or unreadable (a warning says which)."""
    response = _get(s3, location.bucket, location.trace_key or "")
    if response is None:
        return None
    try:
        data = orjson.loads(response["Body"].read())
    except orjson.JSONDecodeError:
        logger.warning("ignoring %s: not valid JSON", location.uri(location.trace_key))
        return None
    if not isinstance(data, dict):
        logger.warning("ignoring %s: not a JSON object", location.uri(location.trace_key))
        return None
    return data


def trace_hint_for(
    location: BatchLocation, trace_doc: Mapping[str, Any] | None, metadata: Mapping[str, str]
) -> TraceHint:
    """The trace hint for a batch, strongest source first.

    A caller's ``traceparent`` (a Step Functions payload) is a live context; a caller's
    ``trace_id``/``span_id`` are strict (a bad one is the caller's error); ids stored in
    ``trace.json`` or the input's ``trace-id``/``span-id`` metadata fall back to a new trace
    when invalid, so one bad file never loses a batch.
    """
    if location.traceparent or location.trace_id:
        return TraceHint(traceparent=location.traceparent, trace_id=location.trace_id, span_id=location.span_id)
    stored = hint_from_trace_json(trace_doc) if trace_doc else None
    if stored is not None:
        return stored
    meta = {k.lower(): v for k, v in metadata.items()}
    if meta.get("trace-id"):
        return TraceHint(trace_id=meta["trace-id"], span_id=meta.get("span-id") or None, strict=False)
    return TraceHint()


#: Bedrock batch inference writes ``<output prefix>/<job id>/<input name>.jsonl.out``.
BEDROCK_SUFFIX = ".jsonl.out"
BEDROCK_MANIFEST = "manifest.json.out"


def _read_json(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """A small JSON object from S3; ``None`` when absent or not an object (a warning says which)."""
    response = _get(s3, bucket, key)
    if response is None:
        return None
    try:
        data = orjson.loads(response["Body"].read())
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        logger.warning("ignoring s3://%s/%s: not a JSON object", bucket, key)
        return None
    return data


def _str(doc: Mapping[str, Any] | None, key: str) -> str | None:
    value = doc.get(key) if doc else None
    return value if isinstance(value, str) and value else None


def _result_streams(s3: Any, location: BatchLocation, bedrock: bool) -> list[tuple[str, ReadAhead]]:
    """The output and error files, each read ahead in a thread from its second chunk (the workers fork first)."""
    output = _ObjectStream(s3, location.bucket, location.output_key, "output file")
    results = [(location.uri(location.output_key), ReadAhead(output, sync_reads=1))]
    if not bedrock and location.errors_key and _exists(s3, location.bucket, location.errors_key):
        errors = _ObjectStream(s3, location.bucket, location.errors_key, "error file")
        results.append((location.uri(location.errors_key), ReadAhead(errors, sync_reads=1)))
    return results


@dataclass(slots=True)
class _Opened:
    """A batch's S3 objects, found and opened: what :func:`run_batch` reads."""

    location: BatchLocation
    bedrock: bool
    input_object: dict[str, Any] | None
    results: list[tuple[str, ReadAhead]]
    trace_doc: dict[str, Any] | None

    @property
    def batch(self) -> dict[str, Any] | None:
        batch = self.trace_doc.get("batch") if self.trace_doc else None
        return batch if isinstance(batch, dict) else None

    @property
    def batch_id(self) -> str | None:
        folder = posixpath.basename(posixpath.dirname(self.location.output_key))
        return self.location.batch_id or _str(self.batch, "id") or folder or None

    def close(self) -> None:
        for _, body in self.results:
            body.close()
        if self.input_object:
            self.input_object["Body"].close()


def _open(s3: Any, location: BatchLocation) -> _Opened:
    """Find the batch's objects; a missing output (or, but for Bedrock, input) is a one-line error."""
    bedrock = location.output_key.endswith(BEDROCK_SUFFIX)
    if not _exists(s3, location.bucket, location.output_key):
        raise MissingFileError("output file", location.uri(location.output_key))
    input_object = None
    if not bedrock:
        input_object = _get(s3, location.bucket, location.input_key or "")
        if input_object is None:
            raise MissingFileError("input file", location.uri(location.input_key))
        input_object["Body"] = ReadAhead(input_object["Body"])  # downloads while it is indexed
    trace_doc = read_trace_json(s3, location)
    return _Opened(location, bedrock, input_object, _result_streams(s3, location, bedrock), trace_doc)


def run_s3_batch(
    s3: Any,
    location: BatchLocation,
    *,
    names: FileNames = FileNames(),
    provider: str | None = None,
    model: str | None = None,
    **options: Any,
) -> Summary:
    """Run the batch at ``location`` through :func:`run_batch`, streaming every file from S3.

    A Bedrock output (``*.jsonl.out``) needs no input file: its lines carry their requests, the
    job id is its folder, and ``manifest.json.out`` beside it is reconciled with what was seen.
    The batch's lifecycle comes from ``batch.json`` beside the output, else ``trace.json``'s
    ``batch`` (:func:`~batchtrace.lifecycle.stored.stored_lifecycle`).
    Otherwise raises :class:`MissingFileError` naming the object when the output or input file
    is not there; the error file and ``trace.json`` are optional. ``provider`` and ``model``
    (a function setting) yield to ``trace.json``'s; ``options`` go to :func:`run_batch`.
    """
    opened = _open(s3, location.with_defaults(names))
    location, input_object = opened.location, opened.input_object
    folder = posixpath.dirname(location.output_key)
    try:
        batch = stored_lifecycle(
            opened.batch,
            lambda name: _read_json(s3, location.bucket, posixpath.join(folder, name)),
            bedrock=opened.bedrock,
        )
        summary = run_batch(
            input_object["Body"] if input_object else None,
            opened.results,
            batch_id=opened.batch_id,
            batch=batch,
            hint=trace_hint_for(location, opened.trace_doc, (input_object or {}).get("Metadata") or {}),
            provider=_str(opened.trace_doc, "provider") or ("bedrock" if opened.bedrock else provider),
            model=_str(opened.trace_doc, "model") or model,
            input_name=location.uri(location.input_key) if input_object else "input",
            **options,
        )
    finally:
        opened.close()
    return summary


#: Public names for the source modules that read other layouts from S3 (``sources/bedrock_job``).
ObjectStream = _ObjectStream
read_json_object = _read_json

#: The idempotency record of one upload's logging, shared by every function that logs a batch folder
#: (LogBatchResultsFunction on the S3 event, the OpenAI webhook receiver after its copy): the same
#: upload (bucket, output key, version) has one record whichever function gets there first, so it is
#: exported once and the other gets the first one's summary.
LOG_IDEMPOTENCY_KEY_PREFIX = "batchtrace.log_s3_batch"
#: What identifies one upload in a :class:`BatchLocation` (JMESPath over its fields).
LOG_IDEMPOTENCY_JMESPATH = "[bucket, output_key, object_tag]"
