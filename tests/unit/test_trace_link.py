"""Trace linking: active context > explicit trace id > new trace, with deterministic ids throughout."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from batchtrace.errors import InputError, InvalidTraceContextError
from batchtrace.trace_link import (
    LinkMode,
    active_span_ids,
    parse_span_id,
    parse_trace_id,
    parse_traceparent,
    resolve_link,
)
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

TRACE_HEX = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_HEX = "00f067aa0ba902b7"
TRACE = int(TRACE_HEX, 16)
SPAN = int(SPAN_HEX, 16)


@pytest.fixture
def tracer() -> Iterator[trace.Tracer]:
    """A tracer from a private SDK provider (the global provider is left alone)."""
    provider = TracerProvider()
    yield provider.get_tracer("batchtrace-unit-tests")
    provider.shutdown()


# --- resolve_link: the seed's priority order ------------------------------------------------


def test_active_context_wins_over_explicit_ids() -> None:
    """Inside a caller's span, completions nest directly under it, even if a trace id is also given."""
    link = resolve_link("batch_abc", active=(TRACE, SPAN), trace_id=0x1234, parent_span_id=0x99)
    assert link.mode is LinkMode.ACTIVE
    assert link.trace_id == TRACE
    assert link.completion_parent == SPAN
    assert link.batch_span_id is None
    assert link.batch_parent is None


def test_explicit_trace_id_gets_a_batch_results_span_under_the_stored_span() -> None:
    """A stored trace id (and span id) puts a batch_results span in that trace, completions under it."""
    link = resolve_link("batch_abc", trace_id=TRACE, parent_span_id=SPAN)
    assert link.mode is LinkMode.EXPLICIT
    assert link.trace_id == TRACE
    assert link.trace_id_hex == TRACE_HEX
    assert link.batch_parent == SPAN
    assert link.batch_span_id is not None
    assert link.completion_parent == link.batch_span_id
    assert link.batch_span_id != SPAN


def test_explicit_trace_id_without_span_id_makes_batch_results_a_root_in_that_trace() -> None:
    """With only a trace id, batch_results has no parent but lives in the stored trace."""
    link = resolve_link("batch_abc", trace_id=TRACE)
    assert link.mode is LinkMode.EXPLICIT
    assert link.trace_id == TRACE
    assert link.batch_parent is None
    assert link.completion_parent == link.batch_span_id


def test_no_context_starts_a_new_trace_rooted_at_batch_results() -> None:
    """Without any context, a new trace is derived from the batch, rooted at batch_results."""
    link = resolve_link("batch_abc")
    assert link.mode is LinkMode.NEW
    assert 0 < link.trace_id < 1 << 128
    assert len(link.trace_id_hex) == 32
    assert link.batch_parent is None
    assert link.batch_span_id is not None
    assert link.completion_parent == link.batch_span_id


def test_a_stray_parent_span_id_without_trace_id_is_not_used() -> None:
    """A span id alone cannot place spans: the batch goes to a new trace with a root batch_results."""
    link = resolve_link("batch_abc", parent_span_id=SPAN)
    assert link.mode is LinkMode.NEW
    assert link.batch_parent is None


# --- determinism -----------------------------------------------------------------------------


def test_same_inputs_give_the_same_ids() -> None:
    """A redelivered event or a retried invocation re-sends identical spans (same ids)."""
    for kwargs in ({}, {"trace_id": TRACE}, {"trace_id": TRACE, "parent_span_id": SPAN}, {"active": (TRACE, SPAN)}):
        one = resolve_link("batch_abc", **kwargs)  # type: ignore[arg-type]
        two = resolve_link("batch_abc", **kwargs)  # type: ignore[arg-type]
        assert one == two
        assert one.completion_span_id("req-1") == two.completion_span_id("req-1")
        assert one.completion_span_id("req-1", 2) == two.completion_span_id("req-1", 2)


def test_new_trace_id_depends_only_on_the_batch_key() -> None:
    """Several workers on one batch agree on the new trace without talking; another batch gets another trace."""
    assert resolve_link("batch_abc").trace_id == resolve_link("batch_abc").trace_id
    assert resolve_link("batch_abc").trace_id != resolve_link("batch_abd").trace_id


def test_different_batches_get_different_span_ids_in_the_same_trace() -> None:
    """Two batches stored under one trace id get distinct batch_results and completion span ids."""
    one = resolve_link("batch_one", trace_id=TRACE)
    two = resolve_link("batch_two", trace_id=TRACE)
    assert one.batch_span_id != two.batch_span_id
    assert one.completion_span_id("req-1") != two.completion_span_id("req-1")


def test_completion_span_ids_are_distinct_and_valid() -> None:
    """Each custom_id (and each duplicate occurrence) gets its own non-zero 64-bit span id."""
    link = resolve_link("batch_abc", trace_id=TRACE)
    ids = [link.completion_span_id(f"req-{i}") for i in range(2000)]
    ids += [link.completion_span_id("req-1", occurrence) for occurrence in (1, 2, 3)]
    assert len(set(ids)) == len(ids)
    assert all(0 < span_id < 1 << 64 for span_id in ids)
    assert link.batch_span_id not in ids


def test_custom_ids_that_concatenate_alike_do_not_collide() -> None:
    """Ids are derived from separated parts: ("ab", "c") and ("a", "bc") style inputs differ."""
    assert resolve_link("batch_a").trace_id != resolve_link("batch_").trace_id
    link_one = resolve_link("b1", trace_id=TRACE)
    link_two = resolve_link("b", trace_id=TRACE)
    assert link_one.completion_span_id("x") != link_two.completion_span_id("1x")


def test_ids_are_the_same_in_another_process() -> None:
    """A retried Lambda invocation runs in a fresh process: the ids must not depend on hash seeding."""
    code = (
        "from batchtrace.trace_link import resolve_link\n"
        "link = resolve_link('batch_abc')\n"
        "print(link.trace_id, link.batch_span_id, link.completion_span_id('req-1'))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    link = resolve_link("batch_abc")
    assert out.stdout.split() == [str(link.trace_id), str(link.batch_span_id), str(link.completion_span_id("req-1"))]


# --- parsing ids -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        TRACE_HEX,
        TRACE_HEX.upper(),
        f"  {TRACE_HEX}\n",
        "4bf92f35-77b3-4da6-a3ce-929d0e0e4736",
        "4BF92F35-77B3-4DA6-A3CE-929D0E0E4736",
    ],
)
def test_parse_trace_id_accepts_hex_in_any_case_and_uuids(value: str) -> None:
    """Trace ids as people store them (upper case, a UUID with dashes, stray whitespace) are accepted."""
    assert parse_trace_id(value) == TRACE


@pytest.mark.parametrize(
    "value",
    [
        "",
        "abc",
        TRACE_HEX[:-1],
        TRACE_HEX + "0",
        "z" * 32,
        "0x" + TRACE_HEX[2:],
        "0" * 32,
        "00000000-0000-0000-0000-000000000000",
        "4bf92f35-77b3-4da6-a3ce-929d0e0e47",
        f"{TRACE_HEX[:16]}\n{TRACE_HEX[16:]}",
    ],
)
def test_parse_trace_id_rejects_invalid_ids_with_one_line_message(value: str) -> None:
    """An invalid trace id is an input error (exit 2, no retry) with a one-line message naming it."""
    with pytest.raises(InvalidTraceContextError) as caught:
        parse_trace_id(value)
    assert isinstance(caught.value, InputError)
    message = str(caught.value)
    assert message
    assert "\n" not in message
    assert "trace id" in message


def test_parse_span_id() -> None:
    """Span ids are 16 hex digits in any case; wrong length, non-hex and all zeros are rejected."""
    assert parse_span_id(SPAN_HEX) == SPAN
    assert parse_span_id(SPAN_HEX.upper()) == SPAN
    for bad in ("", SPAN_HEX[:-1], SPAN_HEX + "a", "g" * 16, "0" * 16, TRACE_HEX):
        with pytest.raises(InvalidTraceContextError) as caught:
            parse_span_id(bad)
        assert "\n" not in str(caught.value)


def test_parse_traceparent_reads_a_w3c_header() -> None:
    """A W3C traceparent (e.g. from a Step Functions payload) gives its trace and span ids."""
    assert parse_traceparent(f"00-{TRACE_HEX}-{SPAN_HEX}-01") == (TRACE, SPAN)
    assert parse_traceparent(f" 00-{TRACE_HEX}-{SPAN_HEX}-00 ") == (TRACE, SPAN)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        f"{TRACE_HEX}-{SPAN_HEX}",
        f"00-{TRACE_HEX}-{SPAN_HEX}",
        f"00-{'0' * 32}-{SPAN_HEX}-01",
        f"00-{TRACE_HEX}-{'0' * 16}-01",
        f"00-{TRACE_HEX[:-2]}-{SPAN_HEX}-01",
        f"ff-{TRACE_HEX}-{SPAN_HEX}-01",
    ],
)
def test_parse_traceparent_rejects_invalid_headers(value: str) -> None:
    """Garbage or all-zero ids in a traceparent are an input error with a one-line message."""
    with pytest.raises(InvalidTraceContextError) as caught:
        parse_traceparent(value)
    assert "\n" not in str(caught.value)
    assert "traceparent" in str(caught.value)


# --- active context --------------------------------------------------------------------------


def test_no_active_span_outside_any_span() -> None:
    """Outside a span there is no active context: the batch is placed by stored ids or a new trace."""
    assert active_span_ids() is None


def test_active_span_ids_inside_start_as_current_span(tracer: trace.Tracer) -> None:
    """Inside ``start_as_current_span`` the current span's ids are found, and gone again after it."""
    with tracer.start_as_current_span("submit-batch") as span:
        context = span.get_span_context()
        assert active_span_ids() == (context.trace_id, context.span_id)
        with tracer.start_as_current_span("inner") as inner:
            assert active_span_ids() == (context.trace_id, inner.get_span_context().span_id)
        assert active_span_ids() == (context.trace_id, context.span_id)
    assert active_span_ids() is None


def test_active_span_ids_with_use_span(tracer: trace.Tracer) -> None:
    """A span made current with ``trace.use_span`` is found too, and feeds ACTIVE mode."""
    span = tracer.start_span("submit-batch")
    with trace.use_span(span, end_on_exit=True):
        active = active_span_ids()
        assert active is not None
        link = resolve_link("batch_abc", active=active, trace_id=TRACE)
    assert link.mode is LinkMode.ACTIVE
    assert link.trace_id == span.get_span_context().trace_id
    assert link.completion_parent == span.get_span_context().span_id


def test_non_recording_invalid_span_is_not_an_active_context() -> None:
    """``INVALID_SPAN`` made current (what a no-op setup gives) does not count as an active context."""
    with trace.use_span(trace.INVALID_SPAN):
        assert active_span_ids() is None
