"""Which provider's batch object this is, told from its own fields, and its :class:`BatchLifecycle`.

The shapes are checked most specific first: several share field names (Mistral's job and
OpenAI's batch both say ``object: "batch"``; Gemini, Vertex AI and Fireworks all have ``name``
and a ``JOB_STATE_*``), and a ``trace.json`` may keep only a fragment of OpenAI's object, which
is why OpenAI's shape is the last tried and the loosest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from batchtrace.errors import InputError
from batchtrace.lifecycle import anthropic, bedrock, google, openai, others
from batchtrace.lifecycle.model import BatchLifecycle

logger = logging.getLogger(__name__)

_Shape = tuple[str, Callable[[Mapping[str, Any]], bool], Callable[[Mapping[str, Any]], BatchLifecycle]]

SHAPES: tuple[_Shape, ...] = (
    ("Anthropic message batch", anthropic.is_anthropic, anthropic.parse),
    ("Bedrock model invocation job", bedrock.is_job, bedrock.parse_job),
    ("Bedrock manifest.json.out", bedrock.is_manifest, bedrock.parse_manifest),
    ("Vertex AI batch prediction job", google.is_vertex, google.parse_vertex),
    ("Fireworks batch inference job", google.is_fireworks, google.parse_fireworks),
    ("Gemini API batch", google.is_gemini, google.parse_gemini),
    ("Mistral batch job", others.is_mistral, others.parse_mistral),
    ("Together AI batch job", others.is_together, others.parse_together),
    ("OpenAI batch", openai.is_openai, openai.parse),
)
KNOWN = ", ".join(name for name, _, _ in SHAPES)


def lifecycle_of(obj: Any) -> BatchLifecycle | None:
    """The lifecycle of a provider's batch object or job, or ``None`` when it is of no known shape."""
    if isinstance(obj, BatchLifecycle):
        return obj
    if not isinstance(obj, Mapping):
        return None
    for _, matches, parse in SHAPES:
        if matches(obj):
            return parse(obj)
    return None


def require_lifecycle(obj: Any, what: str) -> BatchLifecycle:
    """:func:`lifecycle_of`, or a one-line :class:`InputError` naming ``what`` (a file the user gave)."""
    found = lifecycle_of(obj)
    if found is None:
        raise InputError(f"{what} is not a batch object or job of a known provider (expected one of: {KNOWN})")
    return found


def lifecycle_or_warn(obj: Any, what: str = "the batch object") -> BatchLifecycle:
    """:func:`lifecycle_of`, or the empty lifecycle and one warning line: a stored object never stops a run."""
    found = lifecycle_of(obj)
    if found is not None:
        return found
    if obj:
        logger.warning("ignoring %s: not a batch object or job of a known provider", what)
    return BatchLifecycle()
