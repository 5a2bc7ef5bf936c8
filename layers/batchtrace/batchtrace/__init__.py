"""batchtrace: OpenAI Batch API results as OpenTelemetry chat-completion spans.

The public surface is small: :func:`log_batch_results` (the library call), :func:`run_batch`
(streams in, summary out), :func:`run_s3_batch` (a batch in S3), :func:`log_batch_status` (a
batch that failed or was cancelled, from its object alone), the :class:`Summary` they
return, :func:`submission_metadata` (the submitting trace, for the batch's own metadata), and
the typed errors.
"""

__version__ = "0.1.0"

from batchtrace.api import log_batch_results
from batchtrace.content import ContentPolicy
from batchtrace.errors import (
    BatchtraceError,
    DeliveryError,
    InputError,
    InvalidTraceContextError,
    MissingFileError,
)
from batchtrace.lifecycle import BatchLifecycle
from batchtrace.lifecycle.status import log_batch_status
from batchtrace.run import run_batch
from batchtrace.s3_batch import BatchLocation, FileNames, run_s3_batch
from batchtrace.send.delivery import DeliveryPolicy
from batchtrace.send.otlp_config import OtlpConfig
from batchtrace.submit import submission_metadata
from batchtrace.tally import Summary
from batchtrace.trace_link import TraceHint

__all__ = [
    "BatchLifecycle",
    "BatchLocation",
    "BatchtraceError",
    "ContentPolicy",
    "DeliveryError",
    "DeliveryPolicy",
    "FileNames",
    "InputError",
    "InvalidTraceContextError",
    "MissingFileError",
    "OtlpConfig",
    "Summary",
    "TraceHint",
    "__version__",
    "log_batch_results",
    "log_batch_status",
    "run_batch",
    "run_s3_batch",
    "submission_metadata",
]
