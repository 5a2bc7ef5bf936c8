"""Where spans are sent: the standard ``OTEL_EXPORTER_OTLP_*`` variables, plus a Respan shortcut.

Precedence, as in OpenTelemetry's own exporters: argument > ``OTEL_EXPORTER_OTLP_TRACES_*`` >
``OTEL_EXPORTER_OTLP_*`` > (``RESPAN_API_KEY``, for the endpoint and its header) > default.
Timeouts are in seconds, as the Python SDK reads them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

from batchtrace.errors import InputError

DEFAULT_ENDPOINT = "http://localhost:4318/v1/traces"
DEFAULT_RESPAN_BASE_URL = "https://api.respan.ai/api"
DEFAULT_TIMEOUT_S = 10.0
COMPRESSIONS = ("none", "gzip", "deflate")


def parse_headers(text: str, source: str = "OTLP headers") -> dict[str, str]:
    """``key=value,key2=value2`` (values URL-encoded, as OTEL_EXPORTER_OTLP_HEADERS) to a dict.

    Written here rather than taken from ``opentelemetry.util.re`` because that parser logs a
    malformed entry verbatim, and these entries carry credentials: the error names the entry's
    position and key, never its value.
    """
    headers: dict[str, str] = {}
    for position, entry in enumerate(text.split(","), start=1):
        if not entry.strip():
            continue
        key, sep, value = entry.partition("=")
        key = unquote(key).strip().lower()
        if not sep or not key or any(c in key for c in ' "(),/:;<=>?@[\\]{}'):
            shown = f" (key {key!r})" if sep and key else ""
            raise InputError(f"malformed entry {position} in {source}{shown}: expected key=value")
        headers[key] = unquote(value).strip()
    return headers


@dataclass(slots=True, frozen=True)
class OtlpConfig:
    """A resolved OTLP/HTTP trace destination. ``repr`` never shows header values."""

    endpoint: str = DEFAULT_ENDPOINT
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    compression: str = "none"
    timeout_s: float = DEFAULT_TIMEOUT_S

    @classmethod
    def resolve(
        cls,
        *,
        endpoint: str | None = None,
        headers: Mapping[str, str] | None = None,
        compression: str | None = None,
        timeout_s: float | None = None,
        respan_api_key: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> OtlpConfig:
        """Resolve every setting by precedence; ``respan_api_key`` stands in for ``RESPAN_API_KEY``."""
        env = os.environ if env is None else env

        def pick(*names: str) -> str | None:
            return next((env[n].strip() for n in names if env.get(n, "").strip()), None)

        resolved_headers: dict[str, str] = {}
        respan_key = respan_api_key or pick("RESPAN_API_KEY")
        url = endpoint or pick("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        if not url and (base := pick("OTEL_EXPORTER_OTLP_ENDPOINT")):
            url = f"{base.rstrip('/')}/v1/traces"
        if not url and respan_key:
            base = pick("RESPAN_BASE_URL") or DEFAULT_RESPAN_BASE_URL
            url = f"{base.rstrip('/')}/v2/traces"
            resolved_headers["authorization"] = f"Bearer {respan_key}"
        url = url or DEFAULT_ENDPOINT
        if not url.startswith(("http://", "https://")):
            raise InputError(f"invalid OTLP endpoint {url!r}: expected an http:// or https:// URL")

        for name in ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"):
            if env_headers := pick(name):
                resolved_headers.update(parse_headers(env_headers, name))
                break
        if headers:
            resolved_headers.update({k.lower(): v for k, v in headers.items()})

        chosen = (
            compression or pick("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION") or "none"
        ).lower()
        if chosen not in COMPRESSIONS:
            raise InputError(f"invalid OTLP compression {chosen!r}: expected one of {', '.join(COMPRESSIONS)}")

        if timeout_s is None:
            raw = pick("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
            try:
                timeout_s = float(raw) if raw else DEFAULT_TIMEOUT_S
            except ValueError:
                raise InputError(f"invalid OTLP timeout {raw!r}: expected seconds") from None
        if not math.isfinite(timeout_s) or timeout_s <= 0:
            raise InputError(f"invalid OTLP timeout {timeout_s!r}: must be positive")
        return cls(url, resolved_headers, chosen, timeout_s)
