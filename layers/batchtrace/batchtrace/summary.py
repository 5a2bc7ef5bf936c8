"""The run summary: what every entry point returns, logs or prints (DESIGN.md, "Summary")."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class Summary:
    """Counts for one batch; JSON-serialisable through :meth:`as_dict`.

    ``errors`` counts results that failed (HTTP status >= 400 or an ``error`` object), of which
    ``expired`` are ``batch_expired``. ``spans_built`` includes the ``batch_results`` span when
    one is created. ``malformed_by_file`` breaks ``malformed_lines`` down per file and
    ``failure_reasons`` says why spans were not delivered, and ``stage_ms`` where the time went
    (build/encode/send are summed over worker processes, so they can exceed the wall time);
    these three are beyond DESIGN.md's fields.
    """

    batch_id: str | None = None
    trace_id: str | None = None
    requests: int = 0
    results: int = 0
    errors: int = 0
    expired: int = 0
    no_result: int = 0
    orphan_results: int = 0
    duplicate_ids: int = 0
    malformed_lines: int = 0
    spans_built: int = 0
    spans_exported: int = 0
    spans_failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    duration_ms: int = 0
    malformed_by_file: dict[str, int] = field(default_factory=dict)
    failure_reasons: list[str] = field(default_factory=list)
    stage_ms: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def delivered_all(self) -> bool:
        return self.spans_failed == 0 and self.spans_exported == self.spans_built

    def failure_reason(self) -> str:
        """One line on what was not delivered and why, for errors and exit messages."""
        why = "; ".join(self.failure_reasons) or "see the log"
        return f"{self.spans_failed} of {self.spans_built} spans not delivered ({why})"
