"""The lifecycle of a batch stored with its files: ``batch.json``, ``trace.json``'s ``batch``, Bedrock's manifest.

``batch.json`` beside the output is the provider's batch object or job as it was when the batch
finished (whoever copied the files wrote it), so it wins over ``trace.json``'s ``batch``, which
was written when the batch was submitted and may still say ``validating``. For a Bedrock output,
``manifest.json.out`` beside it gives the job's counts. Where the files come from (S3, a folder)
is the caller's business: it hands in a reader of the objects beside the output.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from batchtrace.lifecycle.bedrock import MANIFEST, parse_manifest
from batchtrace.lifecycle.detect import lifecycle_or_warn
from batchtrace.lifecycle.model import BatchLifecycle

BATCH_JSON = "batch.json"

#: Reads a small JSON object beside the output by name; ``None`` when there is none.
ReadBeside = Callable[[str], Mapping[str, Any] | None]


def stored_lifecycle(
    trace_batch: Mapping[str, Any] | None, read_beside: ReadBeside, *, bedrock: bool = False
) -> BatchLifecycle | None:
    """The batch's lifecycle from what is stored with it, or ``None`` when nothing is.

    A stored object of no known shape is ignored with one warning line: it never stops a run.
    """
    lifecycle = lifecycle_or_warn(read_beside(BATCH_JSON), BATCH_JSON)
    if not lifecycle.known and trace_batch:
        lifecycle = lifecycle_or_warn(trace_batch, "trace.json's batch")
    if bedrock:
        manifest = read_beside(MANIFEST)
        if manifest is not None:
            lifecycle = lifecycle.with_counts(parse_manifest(manifest))
    return lifecycle if lifecycle.known else None
