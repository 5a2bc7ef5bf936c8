"""The typed errors of batchtrace: each one is a user-facing, one-line reason.

Entry points translate them at one boundary: the CLI into exit codes, the Lambda handler into
a raised error that Lambda retries or sends to its failure destination.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batchtrace.tally import Summary


class BatchtraceError(Exception):
    """Base of every error batchtrace raises on purpose; ``str(err)`` is the one-line reason."""


class InputError(BatchtraceError, ValueError):
    """The batch cannot be processed as given: a missing file, an unusable argument or trace id.

    Retrying does not help; the user has to fix the input.
    """


class MissingFileError(InputError):
    """A required batch file (the input or the output JSONL) does not exist (yet)."""

    def __init__(self, what: str, location: str) -> None:
        super().__init__(f"{what} not found: {location}")
        self.what = what
        self.location = location


class InvalidTraceContextError(InputError):
    """A trace id, span id or traceparent that is not valid W3C trace context."""


class DeliveryError(BatchtraceError):
    """Some spans could not be delivered after every retry; the summary says how many.

    Raised only after everything deliverable was delivered, so a retry re-sends identical
    (deterministic) spans and the receiver sees each completion once per successful attempt.
    """

    def __init__(self, summary: Summary) -> None:
        super().__init__(f"batch {summary.batch_id or '(unnamed)'}: {summary.failure_reason()}")
        self.summary = summary
