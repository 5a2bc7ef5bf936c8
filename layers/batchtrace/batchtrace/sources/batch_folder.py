"""Where a backfilled batch's files go on their way to spans: a local folder, or its folder in S3.

Either way the folder has the documented layout (``input.jsonl``, ``errors.jsonl``, ``batch.json``,
``output.jsonl``, names from :class:`~batchtrace.s3_batch.FileNames`), every file is streamed in
from the provider's API (memory: a chunk locally, a few multipart parts for S3, whatever the file
size), and the batch is then run from the folder: :func:`~batchtrace.run.run_batch` over the local
files, :func:`~batchtrace.s3_batch.run_s3_batch` over the S3 objects.

* :class:`LocalFolders`: a temporary folder per batch, removed once its spans are sent; or, with
  ``keep``, ``<keep>/<batch_id>/`` left in place, ready for ``batchtrace replay``. A
  ``input.jsonl`` already there (Anthropic requests the user saved) is used.
* :class:`S3Folders`: ``s3://<bucket>/<prefix><batch_id>/``. The sources write the input first
  and the output last, as the S3-triggered function expects (the output's creation is what
  starts it); an ``input.jsonl`` already there is kept when the provider has none to give.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from batchtrace.lifecycle.stored import BATCH_JSON
from batchtrace.run import run_batch
from batchtrace.s3_batch import BatchLocation, FileNames, run_s3_batch
from batchtrace.sources.openai_files import Destination, TransferSettings, upload_stream
from batchtrace.tally import Summary


class BatchFolder(Protocol):
    """One batch's folder: files are put in it, then the batch is run from it."""

    names: FileNames

    def put(self, name: str, chunks: Iterable[bytes]) -> None: ...

    def put_json(self, name: str, obj: Mapping[str, Any]) -> None: ...

    def ensure(self, name: str) -> bool:
        """An empty file unless there is one already (a user's saved requests, an earlier copy);
        whether one with content was there."""

    def run(self, batch: Mapping[str, Any], **options: Any) -> Summary: ...


class Folders(Protocol):
    """Where batch folders are made."""

    def batch(self, batch_id: str) -> contextlib.AbstractContextManager[BatchFolder]: ...


def _json(obj: Mapping[str, Any]) -> bytes:
    return orjson.dumps(obj, default=str, option=orjson.OPT_INDENT_2)


# --------------------------------------------------------------------------- local


@dataclass(slots=True)
class LocalFolder:
    """A batch's files in a local directory."""

    path: Path
    batch_id: str
    names: FileNames = field(default_factory=FileNames)

    def put(self, name: str, chunks: Iterable[bytes]) -> None:
        with (self.path / name).open("wb") as fh:
            for chunk in chunks:
                fh.write(chunk)

    def put_json(self, name: str, obj: Mapping[str, Any]) -> None:
        (self.path / name).write_bytes(_json(obj))

    def ensure(self, name: str) -> bool:
        path = self.path / name
        if path.is_file():
            return path.stat().st_size > 0
        path.touch()
        return False

    def _open(self, name: str, stack: contextlib.ExitStack) -> IO[bytes] | None:
        path = self.path / name
        return stack.enter_context(path.open("rb")) if path.is_file() else None

    def run(self, batch: Mapping[str, Any], **options: Any) -> Summary:
        """Run the batch over the files that are there (no input: spans without their requests)."""
        with contextlib.ExitStack() as stack:
            results = [
                (str(self.path / name), stream)
                for name in (self.names.output, self.names.errors)
                if (stream := self._open(name, stack)) is not None
            ]
            return run_batch(
                self._open(self.names.input, stack),
                results,
                batch_id=self.batch_id,
                batch=batch,
                input_name=str(self.path / self.names.input),
                **options,
            )


@dataclass(frozen=True, slots=True)
class LocalFolders:
    """A temporary folder per batch, or ``<keep>/<batch_id>/`` when the files are to stay."""

    keep: Path | None = None
    names: FileNames = field(default_factory=FileNames)

    @contextlib.contextmanager
    def batch(self, batch_id: str) -> Iterator[BatchFolder]:
        if self.keep is not None:
            path = self.keep / batch_id
            path.mkdir(parents=True, exist_ok=True)
            yield LocalFolder(path, batch_id, self.names)
            return
        path = Path(tempfile.mkdtemp(prefix=f"batchtrace-{batch_id[:40]}-"))
        try:
            yield LocalFolder(path, batch_id, self.names)
        finally:
            shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- S3


def _size(s3: Any, bucket: str, key: str) -> int | None:
    """The object's size, or ``None`` when there is no such object."""
    try:
        return int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
    except Exception as err:
        response = getattr(err, "response", None)
        if isinstance(response, dict) and response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return None
        raise


@dataclass(slots=True)
class S3Folder:
    """A batch's objects under ``<prefix><batch_id>/`` in a bucket."""

    s3: Any
    destination: Destination
    batch_id: str
    names: FileNames = field(default_factory=FileNames)
    transfer: TransferSettings = field(default_factory=TransferSettings)

    def key(self, name: str) -> str:
        return self.destination.key(self.batch_id, name)

    def put(self, name: str, chunks: Iterable[bytes]) -> None:
        upload_stream(self.s3, iter(chunks), self.destination.bucket, self.key(name), self.transfer)

    def put_json(self, name: str, obj: Mapping[str, Any]) -> None:
        bucket, key = self.destination.bucket, self.key(name)
        self.s3.put_object(Bucket=bucket, Key=key, Body=_json(obj), ContentType="application/json")

    def ensure(self, name: str) -> bool:
        size = _size(self.s3, self.destination.bucket, self.key(name))
        if size is None:
            self.s3.put_object(Bucket=self.destination.bucket, Key=self.key(name), Body=b"")
        return bool(size)

    def run(self, batch: Mapping[str, Any], **options: Any) -> Summary:
        """Run the batch from S3; its lifecycle is the ``batch.json`` put beside the output."""
        location = BatchLocation(self.destination.bucket, self.key(self.names.output), batch_id=self.batch_id)
        return run_s3_batch(self.s3, location, names=self.names, **options)


@dataclass(frozen=True, slots=True)
class S3Folders:
    """Batch folders in a bucket: ``s3://<bucket>/<prefix><batch_id>/``."""

    s3: Any
    destination: Destination
    names: FileNames = field(default_factory=FileNames)
    transfer: TransferSettings = field(default_factory=TransferSettings)

    @contextlib.contextmanager
    def batch(self, batch_id: str) -> Iterator[BatchFolder]:
        yield S3Folder(self.s3, self.destination, batch_id, self.names, self.transfer)


__all__ = ["BATCH_JSON", "BatchFolder", "Folders", "LocalFolder", "LocalFolders", "S3Folder", "S3Folders"]
