"""Reconciliation: the provider's own counts beside what the files held.

The figures have one meaning for every provider, and each is compared with what the run saw:

- ``total``: every request in the batch; the files' ``requests``.
- ``processed``: requests that got a result line (Bedrock, Mistral, Fireworks); ``results``.
- ``succeeded``: requests that succeeded; ``results - errors``.
- ``failed``: requests that ran and failed, plus those canceled (Anthropic's ``errored +
  canceled``: both get an error line), not the expired ones; ``errors - expired``.
- ``expired``: requests the batch ran out of time for (Anthropic); ``expired``.
- ``input_tokens``, ``output_tokens``: token totals (OpenAI ``usage``, Bedrock's manifest,
  Fireworks); the files' token totals.

Provider mappings (see each parser): OpenAI ``request_counts`` ``total``, ``completed`` ->
succeeded, ``failed`` (an expired batch's unrun requests are in neither ``completed`` nor
``failed``: they are ``batch_expired`` lines, counted as expired); Anthropic the five buckets;
Bedrock ``manifest.json.out``; Gemini ``batchStats``; Vertex AI ``completionStats``; Mistral's
job counters; Fireworks ``jobProgress``. Only figures the provider gave are compared.

A disagreement is worth a warning, never a failure: one ``.jsonl.out`` is one of a Bedrock job's
files while the manifest counts the whole job, and a ``trace.json`` may hold a batch object
from before the batch finished.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from batchtrace.lifecycle.model import BatchLifecycle

logger = logging.getLogger(__name__)


class Seen(Protocol):
    """What a run saw in the files: a :class:`~batchtrace.tally.Tally` or a :class:`~batchtrace.tally.Summary`."""

    requests: int
    results: int
    errors: int
    expired: int
    input_tokens: int
    output_tokens: int


_SEEN: dict[str, Callable[[Seen], int]] = {
    "total": lambda seen: seen.requests,
    "processed": lambda seen: seen.results,
    "succeeded": lambda seen: seen.results - seen.errors,
    "failed": lambda seen: seen.errors - seen.expired,
    "expired": lambda seen: seen.expired,
    "input_tokens": lambda seen: seen.input_tokens,
    "output_tokens": lambda seen: seen.output_tokens,
}


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """The provider's figures and the run's, side by side, and whether every one agrees."""

    source: str
    provider: dict[str, int]
    seen: dict[str, int]

    @property
    def agree(self) -> bool:
        return self.provider == self.seen

    def differences(self) -> str:
        """``succeeded 8 (files 7), failed 2 (files 3)``: the figures that disagree."""
        return ", ".join(
            f"{name} {value} (files {self.seen[name]})"
            for name, value in self.provider.items()
            if value != self.seen[name]
        )

    def as_dict(self) -> dict[str, Any]:
        """The summary's ``reconciliation``: ``{source, provider, seen, agree}``."""
        return {"source": self.source, "provider": dict(self.provider), "seen": dict(self.seen), "agree": self.agree}


def comparable(counts: Mapping[str, int]) -> dict[str, int]:
    """The figures that can be compared with the files, canceled requests counted as failed."""
    found = {name: value for name, value in counts.items() if name in _SEEN}
    if "canceled" in counts and "failed" in found:
        found["failed"] += counts["canceled"]
    return found


def reconcile(provider_counts: Mapping[str, int], seen: Seen, source: str) -> Reconciliation | None:
    """The provider's figures beside the run's; ``None`` when the provider gave none that compare."""
    provider = comparable(provider_counts)
    if not provider:
        return None
    return Reconciliation(source, provider, {name: _SEEN[name](seen) for name in provider})


def check_counts(lifecycle: BatchLifecycle, seen: Seen, batch_id: str | None) -> Reconciliation | None:
    """:func:`reconcile` the lifecycle's counts, with one warning line when they disagree.

    A batch object from before the batch finished (``trace.json``'s, written at submission, says
    ``validating``) counts what had run by then: it is not compared, and one info line says why.
    """
    if lifecycle.running and lifecycle.counts:
        logger.info(
            "batch %s: counts not reconciled: the batch object says %r, not a final state",
            batch_id or "(unnamed)",
            lifecycle.status,
        )
        return None
    found = reconcile(lifecycle.counts, seen, lifecycle.counts_source or "batch object")
    if found is not None and not found.agree:
        logger.warning(
            "batch %s: the provider's counts (%s) disagree with the files: %s",
            batch_id or "(unnamed)",
            found.source,
            found.differences(),
        )
    return found
