"""OpenAI's past batches for ``batchtrace backfill``: listed with the official SDK, their files streamed, sent.

``client.batches.list`` pages through the organisation's batches newest first (the SDK follows
``after`` while the answer says ``has_more``), so ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` have
the SDK's meaning, ``/v1`` included. Each batch object is its spans' lifecycle, and the
``traceparent`` a submitter kept in its ``metadata`` places them in the submitting trace (else a
new trace derived from the batch id: the same one on every run).

A finished batch with result files (completed, expired, or cancelled after some requests ran)
has its input, error and output files streamed into its folder (:mod:`.batch_folder`) and is
replayed from there. The input file (``input_file_id``) is what pairs each result with its
request: the messages and the parameters. A batch without result files (it failed validation, or
was cancelled before anything ran) gets its ``batch_results`` span alone. Files that OpenAI no
longer has (deleted, or past their expiry): without the input, the results are sent without
their requests; without the results, the batch span alone is sent. The table's note says which.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import openai

from batchtrace.errors import OpenAIFileNotFoundError
from batchtrace.lifecycle.openai import parse
from batchtrace.lifecycle.status import log_batch_status
from batchtrace.lifecycle.stored import BATCH_JSON
from batchtrace.sources.backfill import ListedBatch, RunOptions, SdkErrors, Sent, sdk_errors
from batchtrace.sources.batch_folder import BatchFolder, Folders
from batchtrace.sources.openai_files import FetchSettings, check_api_key, file_content
from batchtrace.tally import Summary

PROVIDER = "openai"
#: Every status of OpenAI's batch object, in the order a batch goes through them.
STATUSES = ("validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled")
#: The largest page the API serves.
PAGE_SIZE = 100
SDK = SdkErrors(openai.OpenAIError, openai.APIConnectionError)


def client_from_env(env: Mapping[str, str] | None = None) -> openai.OpenAI:
    """An SDK client from ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` (with ``/v1``, as the SDK reads it),
    with ``batchtrace fetch``'s timeout and retry settings. :class:`InputError` without a usable key."""
    env = os.environ if env is None else env
    settings = FetchSettings.from_env(env)
    return settings.openai.client(check_api_key(env.get("OPENAI_API_KEY", ""), "OPENAI_API_KEY"))


def listed(obj: Mapping[str, Any]) -> ListedBatch:
    """A batch object (``Batch.model_dump(mode="json")``) as a listing entry."""
    return ListedBatch.of(obj, parse(obj))


def _has_results(obj: Mapping[str, Any]) -> bool:
    return bool(obj.get("output_file_id") or obj.get("error_file_id"))


@dataclass(slots=True)
class OpenAIBatches:
    """The OpenAI Batch API as a :class:`~batchtrace.sources.backfill.BatchSource`."""

    provider: ClassVar[str] = PROVIDER
    statuses: ClassVar[tuple[str, ...]] = STATUSES

    client: openai.OpenAI
    folders: Folders
    options: RunOptions = field(default_factory=RunOptions)
    page_size: int = PAGE_SIZE

    def list_batches(self) -> Iterator[ListedBatch]:
        with sdk_errors(SDK, "OpenAI", "listing batches", self.client.api_key):
            for batch in self.client.batches.list(limit=self.page_size):
                yield listed(batch.model_dump(mode="json"))

    def deliver(self, batch: ListedBatch) -> Sent:
        if not _has_results(batch.obj):
            return Sent(self._batch_span(batch.obj), "batch span only: the batch has no result files")
        try:
            return self._replay(batch.id, batch.obj)
        except OpenAIFileNotFoundError as err:
            return Sent(self._batch_span(batch.obj), f"batch span only: {err}")

    def _batch_span(self, obj: Mapping[str, Any]) -> Summary:
        return log_batch_status(obj, **self.options.for_status())

    def _replay(self, batch_id: str, obj: Mapping[str, Any]) -> Sent:
        """Input, errors, ``batch.json``, output (the output last: in S3 its creation starts the function)."""
        with self.folders.batch(batch_id) as folder:
            note = self._put_input(folder, obj)
            self._put(folder, folder.names.errors, obj.get("error_file_id"), "error file")
            folder.put_json(BATCH_JSON, obj)
            if not self._put(folder, folder.names.output, obj.get("output_file_id"), "output file"):
                folder.ensure(folder.names.output)
            return Sent(folder.run(obj, **self.options.for_files()), note)

    def _put(self, folder: BatchFolder, name: str, file_id: Any, what: str) -> bool:
        """Stream the file into the folder; ``False`` when the batch has no such file."""
        if not file_id:
            return False
        with file_content(self.client, str(file_id), what) as chunks:
            folder.put(name, chunks)
        return True

    def _put_input(self, folder: BatchFolder, obj: Mapping[str, Any]) -> str:
        """The input file, or a note that the results go without their requests."""
        try:
            if self._put(folder, folder.names.input, obj.get("input_file_id"), "input file"):
                return ""
        except OpenAIFileNotFoundError as err:
            folder.ensure(folder.names.input)
            return f"sent without the requests: {err}"
        folder.ensure(folder.names.input)
        return "sent without the requests: the batch names no input file"
