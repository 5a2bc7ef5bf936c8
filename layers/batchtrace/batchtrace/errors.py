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


# --------------------------------------------------------------------------- copying a batch's files from OpenAI
# The class names below are what Step Functions sees as the error name (statemachine/): the
# state machine retries OpenAIFileError and nothing else of these.


class ConfigurationError(InputError):
    """A setting (environment variable, secret) is unusable: fix the configuration, then rerun."""


class FetchConfigurationError(ConfigurationError):
    """A setting needed to copy a batch's files from OpenAI is unusable (the API key, its secret, the URL)."""


class InvalidBatchPayloadError(InputError):
    """The request does not name a finished batch whose files can be copied (a bad id, bucket, prefix or status)."""


class OpenAIRequestError(InputError):
    """OpenAI refused a request with a 4xx answer that a retry does not change.

    ``what`` names the object ("batch", "output file", "error file"), ``object_id`` its id,
    ``detail`` OpenAI's reason (never the API key).
    """

    def __init__(self, what: str, object_id: str, status: int, detail: str = "") -> None:
        super().__init__(self._message(what, object_id, status, detail))
        self.what = what
        self.object_id = object_id
        self.status = status

    @staticmethod
    def _message(what: str, object_id: str, status: int, detail: str) -> str:
        reason = f"HTTP {status}" + (f": {detail}" if detail else "")
        return f"OpenAI refused the request for {what} {object_id} ({reason})"


class OpenAIAuthError(OpenAIRequestError):
    """OpenAI refused the API key (401) or its permissions (403). The message never holds the key."""

    @staticmethod
    def _message(what: str, object_id: str, status: int, detail: str) -> str:
        # OpenAI's own message repeats part of the key: left out.
        return f"OpenAI refused the API key for {what} {object_id} (HTTP {status})"


class OpenAINotFoundError(OpenAIRequestError):
    """OpenAI has no such batch or file (404): deleted, or the id is wrong."""

    def __init__(self, what: str, object_id: str) -> None:
        super().__init__(what, object_id, 404)

    @staticmethod
    def _message(what: str, object_id: str, status: int, detail: str) -> str:
        return f"OpenAI {what} {object_id} not found (HTTP 404)"


class OpenAIFileNotFoundError(OpenAINotFoundError):
    """OpenAI has no such output or error file (404)."""

    @property
    def file_id(self) -> str:
        return self.object_id


class OpenAIUnavailableError(BatchtraceError):
    """OpenAI could not be reached or kept failing: a connection error, a timeout, 408/409/429/5xx
    after the SDK's retries, a download cut off. Transient: a later retry may succeed.
    """

    def __init__(self, what: str, object_id: str, reason: str) -> None:
        super().__init__(f"could not get OpenAI {what} {object_id}: {reason}")
        self.what = what
        self.object_id = object_id


class OpenAIFileError(OpenAIUnavailableError):
    """An output or error file could not be downloaded for a transient reason (the state machine retries it)."""

    @property
    def file_id(self) -> str:
        return self.object_id


# --------------------------------------------------------------------------- reading a Bedrock batch inference job


class BedrockJobError(InputError):
    """Bedrock refused to describe a batch inference job (no such job, a bad ARN, no permission):
    a retry does not change it. The message names the job and Bedrock's error code.
    """


class BedrockUnavailableError(BatchtraceError):
    """Bedrock could not be reached or kept throttling after the SDK's retries: a later retry may succeed."""


# --------------------------------------------------------------------------- OpenAI's webhooks (sources/openai_webhook)


class WebhookRejected(InputError):
    """A webhook request that is refused: ``status`` is the HTTP answer (401: no valid signature or a
    timestamp outside five minutes; 400: not an OpenAI event; 405: not a POST). The message says why,
    for the log; the caller gets the status and a generic reason only.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
