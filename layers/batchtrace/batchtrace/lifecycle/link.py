"""The trace a batch's submitter left in the batch itself: a ``traceparent`` in its metadata or labels.

The documented order for where a batch's spans go: the caller's context, then ``trace.json`` (or the
input's metadata), then the batch's own metadata (OpenAI and Mistral ``metadata``, Vertex AI
``labels``), then a new trace derived from the batch id. Submitting code that tags its batch
needs no ``trace.json`` at all.
"""

from __future__ import annotations

from batchtrace.lifecycle.model import BatchLifecycle
from batchtrace.trace_link import TraceHint, active_span_ids, hint_from_trace_json


def hint_with_stored_traceparent(hint: TraceHint, lifecycle: BatchLifecycle) -> TraceHint:
    """``hint``, or, when it names no trace, the ``traceparent`` kept in the batch's metadata or labels.

    The documented order: the caller's context, then ``trace.json``, then the batch's own metadata. A
    stored traceparent is treated like ``trace.json``'s: not strict, the span nests under it.
    """
    if lifecycle.traceparent is None or hint.traceparent or hint.trace_id:
        return hint
    if hint.use_active_context and active_span_ids() is not None:
        return hint
    return hint_from_trace_json({"traceparent": lifecycle.traceparent}) or hint
