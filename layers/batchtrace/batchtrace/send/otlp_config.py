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
        signal: str = "traces",
    ) -> OtlpConfig:
        """Resolve every setting by precedence; ``respan_api_key`` stands in for ``RESPAN_API_KEY``.

        ``signal`` is ``traces`` or ``metrics``: the signal's own variables win over the shared ones.
        """
        pick = _Picker(os.environ if env is None else env, signal.upper())
        url, resolved_headers = _endpoint(pick, endpoint, respan_api_key, signal)
        if env_headers := pick.signal("HEADERS"):
            resolved_headers.update(parse_headers(env_headers, pick.name("HEADERS")))
        if headers:
            resolved_headers.update({k.lower(): v for k, v in headers.items()})
        chosen = (compression or pick.signal("COMPRESSION") or "none").lower()
        if chosen not in COMPRESSIONS:
            raise InputError(f"invalid OTLP compression {chosen!r}: expected one of {', '.join(COMPRESSIONS)}")
        return cls(url, resolved_headers, chosen, _timeout(pick, timeout_s))


@dataclass(frozen=True, slots=True)
class _Picker:
    """Reads ``OTEL_EXPORTER_OTLP_<SIGNAL>_<NAME>``, then ``OTEL_EXPORTER_OTLP_<NAME>``."""

    env: Mapping[str, str]
    signal_name: str

    def any(self, *names: str) -> str | None:
        return next((self.env[n].strip() for n in names if self.env.get(n, "").strip()), None)

    def name(self, setting: str) -> str:
        return f"OTEL_EXPORTER_OTLP_{self.signal_name}_{setting}"

    def signal(self, setting: str) -> str | None:
        return self.any(self.name(setting), f"OTEL_EXPORTER_OTLP_{setting}")


def _endpoint(
    pick: _Picker, endpoint: str | None, respan_api_key: str | None, signal: str
) -> tuple[str, dict[str, str]]:
    """The URL (``/v1/<signal>`` added to a base endpoint), and Respan's auth header when it is Respan's."""
    headers: dict[str, str] = {}
    url = endpoint or pick.any(pick.name("ENDPOINT")) or _base_endpoint(pick, signal)
    respan_key = respan_api_key or pick.any("RESPAN_API_KEY")
    if not url and respan_key and signal == "traces":
        base = pick.any("RESPAN_BASE_URL") or DEFAULT_RESPAN_BASE_URL
        url = f"{base.rstrip('/')}/v2/traces"
        headers["authorization"] = f"Bearer {respan_key}"
    url = url or DEFAULT_ENDPOINT.replace("/v1/traces", f"/v1/{signal}")
    if not url.startswith(("http://", "https://")):
        raise InputError(f"invalid OTLP endpoint {url!r}: expected an http:// or https:// URL")
    return url, headers


def _base_endpoint(pick: _Picker, signal: str) -> str | None:
    base = pick.any("OTEL_EXPORTER_OTLP_ENDPOINT")
    return f"{base.rstrip('/')}/v1/{signal}" if base else None


def _timeout(pick: _Picker, timeout_s: float | None) -> float:
    if timeout_s is None:
        raw = pick.signal("TIMEOUT")
        try:
            timeout_s = float(raw) if raw else DEFAULT_TIMEOUT_S
        except ValueError:
            raise InputError(f"invalid OTLP timeout {raw!r}: expected seconds") from None
    if not math.isfinite(timeout_s) or timeout_s <= 0:
        raise InputError(f"invalid OTLP timeout {timeout_s!r}: must be positive")
    return timeout_s
