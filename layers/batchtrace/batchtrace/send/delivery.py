"""Delivering finished spans over OTLP/HTTP: bounded chunks, retried, every span accounted for.

The stock pipeline loses spans in two places a batch job cannot afford: the
BatchSpanProcessor drops them once its queue is full, and the OTLP exporter gives up inside
one timeout for all attempts and drops a chunk at once on 413 or 500. Here each chunk (bounded
by span count and encoded size) goes straight to the receiver, is retried with backoff and
jitter on connection errors, timeouts, 408, 429 (honouring ``Retry-After``) and 5xx until a
per-run deadline, and a 413 splits it. Whatever still fails is counted, never dropped silently.
"""

from __future__ import annotations

import gzip
import logging
import random
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import urllib3
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan

from batchtrace import __version__
from batchtrace.send.encode import encode_request
from batchtrace.send.otlp_config import OtlpConfig
from batchtrace.tally import Tally

logger = logging.getLogger(__name__)

_RETRYABLE_STATUS = frozenset({408, 429})
#: A receiver asking to wait longer than this is not waited for: the chunk fails, counted.
MAX_RETRY_AFTER_S = 300


@dataclass(slots=True, frozen=True)
class DeliveryPolicy:
    """How hard to try. ``deadline`` is a ``time.monotonic()`` instant after which nothing is sent."""

    max_spans_per_request: int = 1_000
    max_request_bytes: int = 4 << 20
    max_attempts: int = 6
    backoff_base_s: float = 0.5
    backoff_max_s: float = 10.0
    deadline: float | None = None

    def remaining(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


class OtlpSender:
    """POSTs encoded span chunks to one OTLP/HTTP endpoint, with retries and 413 splitting."""

    def __init__(self, config: OtlpConfig, policy: DeliveryPolicy, *, receiver_failing: bool = False) -> None:
        """``receiver_failing`` starts in fail-fast mode (one attempt a chunk until one succeeds)."""
        self.config = config
        self.policy = policy
        self._pool = urllib3.PoolManager(maxsize=1, retries=False)
        self._receiver_failing = receiver_failing
        self._headers = {
            "content-type": "application/x-protobuf",
            "user-agent": f"batchtrace/{__version__}",
            **config.headers,
        }
        if config.compression != "none":
            self._headers["content-encoding"] = config.compression

    def send(self, spans: Sequence[ReadableSpan], tally: Tally) -> None:
        """Deliver ``spans`` (splitting on size or 413) and record the outcome in ``tally``."""
        if not spans:
            return
        started = time.perf_counter()
        payload = encode_request(spans)
        tally.add_seconds("encode", time.perf_counter() - started)
        if len(payload) > self.policy.max_request_bytes and len(spans) > 1:
            half = len(spans) // 2
            self.send(spans[:half], tally)
            self.send(spans[half:], tally)
            return
        outcome, detail = self._post(payload)
        if outcome == "too_large" and len(spans) > 1:
            logger.info("receiver answered 413 for %d spans; splitting the chunk", len(spans))
            half = len(spans) // 2
            self.send(spans[:half], tally)
            self.send(spans[half:], tally)
        elif outcome == "ok":
            rejected = min(detail, len(spans)) if isinstance(detail, int) else 0
            if rejected:
                reason = f"receiver rejected {rejected} spans (partial success)"
                logger.error("%s", reason)
            tally.delivered(len(spans) - rejected, rejected, reason if rejected else None)
        else:
            reason = str(detail)
            logger.error("%d spans not delivered to %s: %s", len(spans), self.config.endpoint, reason)
            tally.delivered(0, len(spans), reason)

    def _compress(self, payload: bytes) -> bytes:
        if self.config.compression == "gzip":
            return gzip.compress(payload, compresslevel=1, mtime=0)
        if self.config.compression == "deflate":
            return zlib.compress(payload, 1)
        return payload

    def _post(self, payload: bytes) -> tuple[str, int | str]:
        """One chunk's fate: ``("ok", rejected_count)``, ``("too_large", …)`` or ``("failed", reason)``."""
        body = self._compress(payload)
        policy = self.policy
        reason = "not attempted"
        # Once a chunk has used every attempt, the receiver is taken as down: later chunks get
        # two attempts each until one succeeds, so a dead endpoint fails a 50,000-span batch in
        # a minute, not in an hour of full backoff per chunk, and a receiver that comes back is
        # still caught by the second attempt.
        attempts = min(2, policy.max_attempts) if self._receiver_failing else policy.max_attempts
        for attempt in range(attempts):
            remaining = policy.remaining()
            if remaining <= 0:
                return "failed", f"deadline reached after {attempt} attempts (last: {reason})"
            final, reason, retry_after = self._attempt(body, min(self.config.timeout_s, remaining))
            if final is not None:
                return final
            if attempt + 1 == attempts:
                break
            delay, why_not = self._delay(attempt, reason, retry_after)
            if why_not:
                return "failed", why_not
            logger.warning("export attempt %d failed (%s); retrying in %.2fs", attempt + 1, reason, delay)
            time.sleep(delay)
        if self._receiver_failing:
            return "failed", f"{reason} after {attempts} attempts (an earlier chunk already used every attempt)"
        self._receiver_failing = True
        return "failed", f"{reason} after {attempts} attempts"

    def _attempt(self, body: bytes, timeout: float) -> tuple[tuple[str, int | str] | None, str, float | None]:
        """One POST: ``(final fate or None to retry, reason, Retry-After seconds)``."""
        try:
            response = self._pool.request(
                "POST",
                self.config.endpoint,
                body=body,
                headers=self._headers,
                timeout=urllib3.Timeout(connect=min(timeout, 5.0), read=timeout),
                preload_content=True,
                redirect=False,
            )
        except urllib3.exceptions.HTTPError as err:
            return None, f"{type(err).__name__}: {str(err).split(': ', 1)[-1][:200]}", None
        status = response.status
        if 200 <= status < 300:
            self._receiver_failing = False
            return ("ok", _rejected_spans(response.data)), "", None
        if status == 413:
            return ("too_large", "HTTP 413"), "", None
        reason = f"HTTP {status}"
        if status not in _RETRYABLE_STATUS and status < 500:
            return ("failed", f"{reason} (not retryable)"), reason, None
        return None, reason, _retry_after_seconds(response.headers.get("retry-after"))

    def _delay(self, attempt: int, reason: str, retry_after: float | None) -> tuple[float, str | None]:
        """How long to wait before the next attempt, or why there is none."""
        policy = self.policy
        delay = min(policy.backoff_base_s * 2**attempt, policy.backoff_max_s) * random.uniform(0.5, 1.0)
        if retry_after is not None:
            if retry_after > MAX_RETRY_AFTER_S:
                return 0.0, f"{reason} with Retry-After {retry_after:.0f} s (longer than {MAX_RETRY_AFTER_S} s)"
            delay = retry_after
        if delay >= policy.remaining():
            return 0.0, f"deadline too close to retry after {reason}"
        return delay, None

    def close(self) -> None:
        self._pool.clear()


def _rejected_spans(data: bytes) -> int:
    """``partial_success.rejected_spans`` of an OTLP response (0 when absent or not protobuf)."""
    if not data:
        return 0
    try:
        response = ExportTraceServiceResponse.FromString(data)
    except Exception:  # a JSON or empty-ish body from a lenient receiver still means success
        return 0
    return int(response.partial_success.rejected_spans)
