"""What the product promises (README), written down once for every tier to check against.

Kept apart from the product's own lists on purpose: a test that read the fields from the code
could not notice the code dropping one.
"""

from __future__ import annotations

#: The summary every entry point returns, logs or prints (README, "Using it": the summary).
SUMMARY_FIELDS = frozenset(
    {
        "batch_id",
        "trace_id",
        "requests",
        "results",
        "errors",
        "expired",
        "no_result",
        "orphan_results",
        "duplicate_ids",
        "malformed_lines",
        "spans_built",
        "spans_exported",
        "spans_failed",
        "input_tokens",
        "output_tokens",
        "duration_ms",
    }
)
