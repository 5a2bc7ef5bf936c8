"""Anthropic's past Message Batches for ``batchtrace backfill``: listed with the official SDK, results streamed, sent.

``client.messages.batches.list`` pages through the workspace's batches newest first (the SDK
follows ``after_id`` while the answer says ``has_more``); ``ANTHROPIC_API_KEY`` and
``ANTHROPIC_BASE_URL`` have the SDK's meaning (the base URL without ``/v1``). An ended batch's
results are streamed from its ``results_url`` (``client.messages.batches.results``, read as raw
bytes, not parsed into objects) into its folder (:mod:`.batch_folder`), and replayed with the
``message_batch`` object as the lifecycle. Its status for ``--status`` is ``processing_status``
(``in_progress``, ``canceling``, ``ended``) or how an ended batch ended (``completed``,
``expired``, ``cancelled``).

The requests cannot be read back from the API: a results line is ``{custom_id, result}`` only.
So unless the user kept them, as ``<requests_dir>/<batch_id>.jsonl`` (the ``{custom_id, params}``
lines that were submitted) or as the ``input.jsonl`` already in the batch's folder, the spans
have the responses, tokens and errors but no input messages or parameters; the table says so.
A batch whose results Anthropic no longer serves (29 days after creation) gets its
``batch_results`` span alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import anthropic

from batchtrace.errors import InputError
from batchtrace.lifecycle.anthropic import PROVIDER, parse
from batchtrace.lifecycle.status import log_batch_status
from batchtrace.lifecycle.stored import BATCH_JSON
from batchtrace.sources.backfill import (
    BackfillNotFoundError,
    BackfillUnavailableError,
    ListedBatch,
    RunOptions,
    SdkErrors,
    Sent,
    sdk_errors,
)
from batchtrace.sources.batch_folder import BatchFolder, Folders
from batchtrace.sources.openai_files import check_api_key
from batchtrace.tally import Summary

#: ``processing_status`` values, then how an ended batch ended.
STATUSES = ("in_progress", "canceling", "ended", "completed", "expired", "cancelled")
PAGE_SIZE = 100
SDK = SdkErrors(anthropic.AnthropicError, anthropic.APIConnectionError)
_CHUNK = 1 << 20
_GONE = "batch span only: Anthropic no longer serves its results"
_NO_REQUESTS = "results only, no input messages: the API does not return requests (see --requests-dir)"


def client_from_env(env: Mapping[str, str] | None = None) -> anthropic.Anthropic:
    """An SDK client from ``ANTHROPIC_API_KEY`` (required) and ``ANTHROPIC_BASE_URL`` (the SDK reads it).

    The SDK's own spans are switched off: the backfill's spans are the batch's, not the listing's.
    """
    env = os.environ if env is None else env
    key = check_api_key(env.get("ANTHROPIC_API_KEY", ""), "ANTHROPIC_API_KEY")
    return anthropic.Anthropic(
        api_key=key,
        base_url=env.get("ANTHROPIC_BASE_URL") or None,
        timeout=anthropic.Timeout(120.0, connect=10.0),
        open_telemetry=False,
    )


def listed(obj: Mapping[str, Any]) -> ListedBatch:
    """A ``message_batch`` object (``MessageBatch.model_dump(mode="json")``) as a listing entry."""
    return ListedBatch.of(obj, parse(obj))


def _chunks(chunks: Iterator[bytes], what: str) -> Iterator[bytes]:
    """The body's chunks; a transport error while they stream (after the SDK's retries) is transient."""
    try:
        yield from chunks
    except Exception as err:
        raise BackfillUnavailableError(f"Anthropic: {what} broke off ({type(err).__name__})") from None


@dataclass(slots=True)
class AnthropicBatches:
    """Anthropic's Message Batches API as a :class:`~batchtrace.sources.backfill.BatchSource`."""

    provider: ClassVar[str] = PROVIDER
    statuses: ClassVar[tuple[str, ...]] = STATUSES

    client: anthropic.Anthropic
    folders: Folders
    options: RunOptions = field(default_factory=RunOptions)
    #: ``<batch_id>.jsonl`` files holding the requests that were submitted, when the user kept them.
    requests_dir: Path | None = None
    page_size: int = PAGE_SIZE

    def __post_init__(self) -> None:
        if self.requests_dir is not None and not self.requests_dir.is_dir():
            raise InputError(f"--requests-dir {self.requests_dir} is not a directory")

    @property
    def _key(self) -> str:
        return self.client.api_key or ""

    def list_batches(self) -> Iterator[ListedBatch]:
        with sdk_errors(SDK, "Anthropic", "listing message batches", self._key):
            for batch in self.client.messages.batches.list(limit=self.page_size):
                yield listed(batch.model_dump(mode="json"))

    def deliver(self, batch: ListedBatch) -> Sent:
        if not batch.obj.get("results_url"):
            return Sent(self._batch_span(batch.obj), _GONE)
        try:
            return self._replay(batch.id, batch.obj)
        except BackfillNotFoundError:
            return Sent(self._batch_span(batch.obj), _GONE)

    def _batch_span(self, obj: Mapping[str, Any]) -> Summary:
        return log_batch_status(obj, **self.options.for_status())

    def _replay(self, batch_id: str, obj: Mapping[str, Any]) -> Sent:
        """Requests, ``batch.json``, results (the results last: in S3 their creation starts the function)."""
        with self.folders.batch(batch_id) as folder:
            note = self._put_requests(folder, batch_id)
            folder.put_json(BATCH_JSON, obj)
            with self._results(batch_id) as chunks:
                folder.put(folder.names.output, chunks)
            return Sent(folder.run(obj, provider=PROVIDER, **self.options.for_files()), note)

    def _put_requests(self, folder: BatchFolder, batch_id: str) -> str:
        """The user's saved requests, or what the folder already holds; a note when there are none."""
        saved = self.requests_dir / f"{batch_id}.jsonl" if self.requests_dir is not None else None
        if saved is not None and saved.is_file():
            with saved.open("rb") as fh:
                folder.put(folder.names.input, iter(lambda: fh.read(_CHUNK), b""))
            return ""
        return "" if folder.ensure(folder.names.input) else _NO_REQUESTS

    @contextmanager
    def _results(self, batch_id: str) -> Iterator[Iterator[bytes]]:
        what = f"downloading the results of {batch_id}"
        with (
            sdk_errors(SDK, "Anthropic", what, self._key),
            self.client.messages.batches.with_streaming_response.results(batch_id) as response,
        ):
            yield _chunks(response.iter_bytes(), what)
