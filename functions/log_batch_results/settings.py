"""The function's configuration, read and validated once per cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from batchtrace import ContentPolicy, FileNames, InputError


@dataclass(slots=True, frozen=True)
class Settings:
    """Everything the handler reads from its environment (template.yaml sets these)."""

    #: ``BATCHTRACE_{INPUT,OUTPUT,ERRORS,TRACE}_NAME``, shared with the fetch function.
    names: FileNames
    content: ContentPolicy
    otlp_headers_secret: str | None
    respan_api_key_secret: str | None
    idempotency_table: str | None
    #: Seconds kept back from Lambda's remaining time, so the function fails cleanly, not killed.
    deadline_margin_s: float
    #: ``POWERTOOLS_METRICS_NAMESPACE``, with a default so metrics never fail for want of one.
    metrics_namespace: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        margin_raw = env.get("BATCHTRACE_DEADLINE_MARGIN_SECONDS", "15")
        try:
            margin = float(margin_raw)
        except ValueError:
            raise InputError(f"BATCHTRACE_DEADLINE_MARGIN_SECONDS must be a number, got {margin_raw!r}") from None
        return cls(
            names=FileNames.from_env(env),
            content=ContentPolicy.from_env(env),
            otlp_headers_secret=env.get("OTLP_HEADERS_SECRET_ARN") or None,
            respan_api_key_secret=env.get("RESPAN_API_KEY_SECRET_ARN") or None,
            idempotency_table=env.get("IDEMPOTENCY_TABLE") or None,
            deadline_margin_s=max(margin, 0.0),
            metrics_namespace=env.get("POWERTOOLS_METRICS_NAMESPACE") or "Batchtrace",
        )
