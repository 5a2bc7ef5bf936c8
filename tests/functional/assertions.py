"""Checks that a batch arrived complete and correctly linked, with a readable tree on failure.

:func:`assert_batch_delivered` is the one the tests call: it checks the received spans against
a :class:`~tests.support.batches.Batch`'s fates (one span per ``custom_id``, each
with its fate) and against the trace-linking contract for the given ``mode``:

- ``"active"``: completions nest directly under the caller's span; no ``batch_results`` span;
- ``"explicit"``: one ``batch_results`` span in ``trace_id``, child of ``parent_span_id`` (root
  when ``None``), every completion under it;
- ``"new"``: the same, in a new trace rooted at ``batch_results``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tests.support.batches import EXPIRED, HTTP_ERROR, NO_RESULT, ORPHAN, TOOL_CALL, Batch, Fate
from tests.support.contract import SUMMARY_FIELDS
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.support.trace_tree import render_trace_tree

__all__ = [
    "MODES",
    "assert_batch_delivered",
    "assert_fate",
    "assert_linked",
    "assert_summary",
    "completion_spans",
    "delivered",
]

NS = 1_000_000_000
MODES = ("active", "explicit", "new")
CUSTOM_ID = "batchtrace.custom_id"


def delivered(receiver: OtlpReceiver, count: int) -> list[ReceivedSpan]:
    """The received spans, exactly ``count`` of them *already*: every entry point flushes before it returns."""
    assert receiver.span_count == count, (
        f"{receiver.span_count} spans had arrived when the call returned, expected {count}"
        f" (requests answered: {receiver.statuses()})"
    )
    return receiver.spans


def completion_spans(spans: Iterable[ReceivedSpan]) -> list[ReceivedSpan]:
    return [s for s in spans if CUSTOM_ID in s.attributes]


def _tree(spans: Sequence[ReceivedSpan]) -> str:
    return "\n" + render_trace_tree(spans, max_children=15)


def _parts(messages_json: Any) -> list[dict[str, Any]]:
    assert isinstance(messages_json, str), f"expected a JSON string, got {messages_json!r}"
    messages = json.loads(messages_json)
    if isinstance(messages, list) and messages and "parts" not in messages[0]:
        return [m for m in messages if isinstance(m, dict)]  # gen_ai.system_instructions: a list of parts
    return [part for message in messages for part in message.get("parts", [])]


def _texts(messages_json: Any) -> list[str]:
    return [str(p.get("content")) for p in _parts(messages_json) if p.get("type") == "text"]


def assert_linked(
    spans: Sequence[ReceivedSpan],
    *,
    mode: str,
    custom_ids: Iterable[str],
    trace_id: str | None = None,
    parent_span_id: str | None = None,
) -> tuple[ReceivedSpan | None, dict[str, ReceivedSpan]]:
    """Structure only: one trace, unique ids, exactly one span per custom_id, parents as ``mode`` says.

    Returns the ``batch_results`` span (``None`` in active mode) and the completions by custom_id.
    """
    assert mode in MODES, mode
    assert spans, "no spans arrived"
    ids = Counter(s.span_id for s in spans)
    duplicated = {k: v for k, v in ids.items() if v > 1}
    assert not duplicated, f"span ids sent more than once: {duplicated}{_tree(spans)}"
    traces = {s.trace_id for s in spans}
    assert len(traces) == 1, f"spans in {len(traces)} traces: {sorted(traces)}{_tree(spans)}"
    (actual_trace,) = traces
    if trace_id is not None:
        assert actual_trace == trace_id, f"trace {actual_trace}, expected {trace_id}{_tree(spans)}"

    batch_spans = [s for s in spans if s.name == "batch_results"]
    completions = completion_spans(spans)
    others = [s for s in spans if s not in batch_spans and s not in completions]
    assert not others, f"unexpected spans: {[s.name for s in others]}{_tree(spans)}"

    by_id: dict[str, list[ReceivedSpan]] = {}
    for span in completions:
        by_id.setdefault(span.attributes[CUSTOM_ID], []).append(span)
    expected = set(custom_ids)
    missing = sorted(expected - by_id.keys())
    extra = sorted(by_id.keys() - expected)
    repeated = sorted(k for k, v in by_id.items() if len(v) > 1)
    assert not missing, f"{len(missing)} custom_ids without a span: {missing[:10]}{_tree(spans)}"
    assert not extra, f"spans for unexpected custom_ids: {extra[:10]}{_tree(spans)}"
    assert not repeated, f"custom_ids with several spans: {repeated[:10]}{_tree(spans)}"

    batch_span: ReceivedSpan | None = None
    if mode == "active":
        assert parent_span_id is not None, "active mode needs the caller's span id"
        assert not batch_spans, f"a batch_results span was created under an active context{_tree(spans)}"
        completion_parent = parent_span_id
    else:
        assert len(batch_spans) == 1, f"{len(batch_spans)} batch_results spans, expected 1{_tree(spans)}"
        batch_span = batch_spans[0]
        expected_parent = parent_span_id if mode == "explicit" else None
        assert batch_span.parent_span_id == expected_parent, (
            f"batch_results parent {batch_span.parent_span_id}, expected {expected_parent}{_tree(spans)}"
        )
        assert batch_span.attributes.get("traceloop.span.kind") == "task"
        assert batch_span.attributes.get("traceloop.entity.name") == "batch_results"
        assert batch_span.attributes.get("respan.entity.log_type") == "task"
        completion_parent = batch_span.span_id
    wrong = [s.attributes[CUSTOM_ID] for s in completions if s.parent_span_id != completion_parent]
    assert not wrong, f"{len(wrong)} completions not under {completion_parent}: {wrong[:5]}{_tree(spans)}"
    return batch_span, {cid: group[0] for cid, group in by_id.items()}


def assert_fate(span: ReceivedSpan, fate: Fate, *, batch_id: str | None = None) -> None:
    """One completion span shows its fate the way the span contract (README, "What you will see on each span") says."""
    where = f"span for {span.attributes.get(CUSTOM_ID)!r} ({fate.kind}): {span.attributes}"
    _assert_identity(span, fate, batch_id, where)
    _assert_status(span, fate, where)
    if fate.kind != ORPHAN:  # request content, when there was a request
        attrs = span.attributes
        assert "traceloop.entity.input" in attrs, where
        if fate.user_text is not None:
            assert fate.user_text in _texts(attrs.get("gen_ai.input.messages")), where
        if fate.system_text is not None:
            assert fate.system_text in _texts(attrs.get("gen_ai.system_instructions")), where
    if fate.kind in (HTTP_ERROR, EXPIRED, NO_RESULT):
        assert "gen_ai.output.messages" not in span.attributes, where
        assert "gen_ai.usage.input_tokens" not in span.attributes, where
        return
    _assert_response(span.attributes, fate, where)
    _assert_usage(span.attributes, fate, where)
    _assert_output(span.attributes, fate, where)


def _assert_identity(span: ReceivedSpan, fate: Fate, batch_id: str | None, where: str) -> None:
    """Kind, name, operation, provider, model, parameters, batch identity and HTTP status."""
    attrs = span.attributes
    assert span.kind == "CLIENT", where
    assert span.name == f"chat {fate.model}", where
    assert attrs.get("gen_ai.operation.name") == "chat", where
    assert attrs.get("gen_ai.provider.name") == "openai", where
    assert attrs.get("gen_ai.request.model") == fate.model, where
    assert attrs.get("llm.request.type") == "chat", where
    assert attrs.get("respan.entity.log_type") == "chat", where
    assert "traceloop.span.kind" in attrs, where
    if batch_id:
        assert batch_id in attrs.values(), f"batch id {batch_id} not on the {where}"
    for name, value in fate.params.items():
        assert attrs.get(name) == value, f"{name}: {attrs.get(name)!r} != {value!r} on the {where}"
    for known in (fate.line_id, fate.request_id):  # the batch_req id, the request id
        if known:
            assert known in attrs.values(), f"{known} not on the {where}"
    if fate.kind in (NO_RESULT, EXPIRED):
        assert "http.response.status_code" not in attrs, where
    else:
        assert attrs.get("http.response.status_code") == (fate.status_code or 200), where


def _assert_status(span: ReceivedSpan, fate: Fate, where: str) -> None:
    """Flags, and an ERROR status with ``error.type`` exactly for the failed fates."""
    attrs = span.attributes
    assert bool(attrs.get("batchtrace.orphan_result")) == (fate.kind == ORPHAN), where
    assert bool(attrs.get("batchtrace.no_result")) == (fate.kind == NO_RESULT), where
    if fate.failed:
        assert span.status_code == "ERROR", where
        assert span.status_message, f"ERROR without a message on the {where}"
        assert attrs.get("error.type") == fate.error_type, where
    else:
        assert span.status_code != "ERROR", where
        assert "error.type" not in attrs, where


def _assert_response(attrs: Mapping[str, Any], fate: Fate, where: str) -> None:
    if fate.response_model is not None:
        assert attrs.get("gen_ai.response.model") == fate.response_model, where
    if fate.response_id is not None:
        assert attrs.get("gen_ai.response.id") == fate.response_id, where
        # generated batches know the fingerprint exactly
        assert attrs.get("openai.response.system_fingerprint") == fate.system_fingerprint, where
    assert list(attrs.get("gen_ai.response.finish_reasons") or []) == [fate.finish_reason], where


def _assert_usage(attrs: Mapping[str, Any], fate: Fate, where: str) -> None:
    if not fate.has_usage:
        assert "gen_ai.usage.input_tokens" not in attrs, where
        assert "gen_ai.usage.output_tokens" not in attrs, where
        return
    for name in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"):
        assert isinstance(attrs.get(name), int), f"{name} missing on the {where}"
    assert attrs.get("gen_ai.usage.prompt_tokens") == attrs["gen_ai.usage.input_tokens"], where
    assert attrs.get("gen_ai.usage.completion_tokens") == attrs["gen_ai.usage.output_tokens"], where
    if fate.input_tokens is not None:
        assert attrs["gen_ai.usage.input_tokens"] == fate.input_tokens, where
        assert attrs["gen_ai.usage.output_tokens"] == fate.output_tokens, where
    if fate.cached_tokens:
        assert attrs.get("gen_ai.usage.cache_read.input_tokens") == fate.cached_tokens, where


def _assert_output(attrs: Mapping[str, Any], fate: Fate, where: str) -> None:
    assert "traceloop.entity.output" in attrs, where
    parts = _parts(attrs.get("gen_ai.output.messages"))
    if fate.kind == TOOL_CALL or fate.tool_name:
        calls = [p for p in parts if p.get("type") == "tool_call"]
        assert [c.get("name") for c in calls] == [fate.tool_name], where
        assert calls[0].get("id"), where
        if fate.tool_arguments is not None:
            assert calls[0].get("arguments") == fate.tool_arguments, where
    if fate.output_text is not None:
        assert fate.output_text in _texts(attrs.get("gen_ai.output.messages")), where


def _assert_times(spans: Sequence[ReceivedSpan], batch: Batch, fates: Mapping[str, Fate]) -> None:
    now = time.time_ns()
    for span in spans:
        assert 0 < span.start_ns <= span.end_ns <= now, f"bad times on {span.name}: {span.start_ns}..{span.end_ns}"
        assert span.start_ns >= batch.created_at * NS, f"{span.name} starts before the batch was created"
        fate = fates.get(span.attributes.get(CUSTOM_ID, ""))
        if fate is not None and fate.created is not None:
            assert span.start_ns <= fate.created * NS <= span.end_ns, (
                f"span of {span.attributes[CUSTOM_ID]!r} does not cover its response's created {fate.created}"
            )


def assert_batch_delivered(
    spans: Sequence[ReceivedSpan],
    batch: Batch,
    *,
    trace_id: str | None = None,
    parent_span_id: str | None = None,
    mode: str,
    batch_id: str | None = None,
    lifecycle_known: bool = False,
) -> dict[str, ReceivedSpan]:
    """``spans`` hold exactly ``batch``'s spans, each with its fate, linked as ``mode`` says.

    ``parent_span_id`` is the stored span id (explicit mode) or the caller's span (active mode).
    ``batch_id`` is checked on every span when given. With ``lifecycle_known`` (the batch object
    was handed in) the ``batch_results`` span must span exactly the batch's lifecycle.
    Returns the completions by custom_id.
    """
    batch_span, completions = assert_linked(
        spans, mode=mode, custom_ids=batch.fates, trace_id=trace_id, parent_span_id=parent_span_id
    )
    for custom_id, fate in batch.fates.items():
        assert_fate(completions[custom_id], fate, batch_id=batch_id)
    _assert_times(spans, batch, batch.fates)
    if batch_span is not None:
        attrs = batch_span.attributes
        for key, value in batch.expected_counts().items():
            assert attrs.get(f"batchtrace.{key}") == value, f"batch_results {key}: {attrs.get(f'batchtrace.{key}')}"
        if batch_id:
            assert batch_id in attrs.values(), f"batch id {batch_id} not on batch_results: {attrs}"
        assert batch_span.start_ns <= min(s.start_ns for s in completions.values())
        assert batch_span.end_ns >= max(s.end_ns for s in completions.values())
        if lifecycle_known:
            assert batch_span.start_ns == batch.created_at * NS
            assert batch_span.end_ns == batch.completed_at * NS
    return completions


def assert_summary(
    summary: Mapping[str, Any],
    batch: Batch,
    *,
    mode: str,
    trace_id: str | None = None,
    batch_id: str | None = None,
    delivered: bool = True,
) -> None:
    """The summary (the documented fields) counts ``batch`` exactly; all spans delivered unless told otherwise."""
    required = SUMMARY_FIELDS
    assert required <= summary.keys(), f"summary lacks {sorted(required - summary.keys())}"
    json.dumps(dict(summary))  # JSON-serialisable
    for key, value in batch.expected_counts().items():
        assert summary[key] == value, f"summary {key} = {summary[key]}, expected {value}"
    spans = len(batch.fates) + (0 if mode == "active" else 1)
    assert summary["spans_built"] == spans, summary
    if delivered:
        assert (summary["spans_exported"], summary["spans_failed"]) == (spans, 0), summary
    else:
        assert summary["spans_failed"] > 0, summary
        assert summary["spans_exported"] + summary["spans_failed"] == spans, summary
    if trace_id is not None:
        assert summary["trace_id"] == trace_id, summary
    if batch_id is not None:
        assert summary["batch_id"] == batch_id, summary
