"""The function's configuration, read and validated once per cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from batchtrace import ContentPolicy, FileNames, InputError
from batchtrace.extract import adapter_named
from batchtrace.sources.bedrock_job import S3Folder
from batchtrace.timestamps import TimestampPolicy


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
    #: ``BATCHTRACE_PROVIDER``/``BATCHTRACE_MODEL``: the format and model when the lines do not say.
    provider: str | None = None
    model: str | None = None
    #: ``BATCHTRACE_BEDROCK_OUTPUT_URI`` (``s3://bucket/prefix/``): the Bedrock jobs this stack logs. A job
    #: state change event for a job writing elsewhere in the account is none of its business.
    bedrock_output_uri: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str, default: str | None = None) -> str | None:
            return env.get(name) or default

        provider = get("BATCHTRACE_PROVIDER")
        if provider:
            adapter_named(provider)  # a wrong name fails at cold start, in one line
        TimestampPolicy.from_env(env)  # so does a wrong BATCHTRACE_TIMESTAMPS (each run reads it again)
        if bedrock_output_uri := get("BATCHTRACE_BEDROCK_OUTPUT_URI"):
            S3Folder.parse(bedrock_output_uri)  # and a BATCHTRACE_BEDROCK_OUTPUT_URI that is no s3:// location
        return cls(
            names=FileNames.from_env(env),
            content=ContentPolicy.from_env(env),
            otlp_headers_secret=get("OTLP_HEADERS_SECRET_ARN"),
            respan_api_key_secret=get("RESPAN_API_KEY_SECRET_ARN"),
            idempotency_table=get("IDEMPOTENCY_TABLE"),
            deadline_margin_s=_margin(get("BATCHTRACE_DEADLINE_MARGIN_SECONDS", "15") or ""),
            metrics_namespace=get("POWERTOOLS_METRICS_NAMESPACE", "Batchtrace") or "",
            provider=provider,
            model=get("BATCHTRACE_MODEL"),
            bedrock_output_uri=bedrock_output_uri,
        )


def _margin(raw: str) -> float:
    try:
        return max(float(raw), 0.0)
    except ValueError:
        raise InputError(f"BATCHTRACE_DEADLINE_MARGIN_SECONDS must be a number, got {raw!r}") from None
