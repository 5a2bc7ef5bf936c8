"""Extract: one adapter module per batch format, found by looking in this package.

Each module here that defines ``ADAPTER`` (a :class:`FormatAdapter`) is a format; adding a
provider means adding one such module and its fixtures, and nothing else. This module picks
the adapter: by name (``--provider``, a ``provider`` argument or setting, ``trace.json``), or by
looking at the lines where their shape is unambiguous.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from batchtrace.errors import InputError
from batchtrace.extract.base import ExtractContext, FormatAdapter, JsonObject

__all__ = ["ExtractContext", "FormatAdapter", "adapter_named", "adapters", "detect", "provider_names"]


@functools.cache
def adapters() -> tuple[FormatAdapter, ...]:
    """Every adapter in this package, in detection order (specific shapes first)."""
    found: list[FormatAdapter] = []
    for module in pkgutil.iter_modules(__path__):
        if module.name == "base":
            continue
        adapter = getattr(importlib.import_module(f"{__name__}.{module.name}"), "ADAPTER", None)
        if isinstance(adapter, FormatAdapter):
            found.append(adapter)
    return tuple(sorted(found, key=lambda a: (a.detect_order, a.name)))


def provider_names() -> list[str]:
    """The names ``--provider`` accepts."""
    return sorted(name for adapter in adapters() for name in (adapter.name, *adapter.aliases))


def adapter_named(name: str) -> FormatAdapter:
    """The adapter for a name or alias (``openai``, ``bedrock``, ``aws.bedrock``, ...); a one-line error otherwise."""
    wanted = name.strip().lower()
    for adapter in adapters():
        if wanted in (adapter.name, adapter.provider, *adapter.aliases):
            return adapter
    raise InputError(f"unknown provider {name!r}: expected one of {', '.join(provider_names())}")


def detect(line: JsonObject, *, request: bool) -> FormatAdapter | None:
    """The format a line is unambiguously of, or ``None``; an OpenAI-like line gives the family's head."""
    for adapter in adapters():
        if not adapter.detectable:
            continue
        if adapter.is_request(line) if request else adapter.is_result(line):
            return adapter
    return None
