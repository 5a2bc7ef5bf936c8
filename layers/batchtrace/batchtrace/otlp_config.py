"""Where spans are sent: the standard ``OTEL_EXPORTER_OTLP_*`` variables, plus a Respan shortcut.

Precedence, as in OpenTelemetry's own exporters: argument > ``OTEL_EXPORTER_OTLP_TRACES_*`` >
``OTEL_EXPORTER_OTLP_*`` > (``RESPAN_API_KEY``, for the endpoint and its header) > default.
Timeouts are in seconds, as the Python SDK reads them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from opentelemetry.util.re import parse_env_headers

from batchtrace.errors import InputError

DEFAULT_ENDPOINT = "http://localhost:4318/v1/traces"
DEFAULT_RESPAN_BASE_URL = "https://api.respan.ai/api"
DEFAULT_TIMEOUT_S = 10.0
COMPRESSIONS = ("none", "gzip", "deflate")


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

        env_headers = pick("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")
        if env_headers:
            resolved_headers.update({k.lower(): v for k, v in parse_env_headers(env_headers, liberal=True).items()})
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
        if timeout_s <= 0:
            raise InputError(f"invalid OTLP timeout {timeout_s!r}: must be positive")
        return cls(url, resolved_headers, chosen, timeout_s)
