"""Choosing a format: by the name a user gives (``--provider``), or from the lines themselves.

Adding a provider is one module in ``batchtrace.extract`` with an ``ADAPTER``; these tests hold
every such module to that, and the picking rules to what the CLI promises (a one-line error
naming the choices for an unknown name, no guess for a line of no known shape).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections import Counter
from typing import Any

import batchtrace.extract
import pytest
from batchtrace.errors import InputError
from batchtrace.extract import FormatAdapter, adapter_named, adapters, detect, provider_names

from tests.support.fixtures import FORMATS


def first_line(name: str) -> dict[str, Any]:
    line: dict[str, Any] = json.loads((FORMATS / name).read_text(encoding="utf-8").splitlines()[0])
    return line


def adapter_modules() -> list[str]:
    return [m.name for m in pkgutil.iter_modules(batchtrace.extract.__path__) if m.name != "base"]


# --------------------------------------------------------------------------- every adapter module


@pytest.mark.parametrize("module_name", adapter_modules())
def test_every_adapter_module_exposes_a_named_adapter(module_name: str) -> None:
    """Each module of the package defines ``ADAPTER``, with a name and a ``gen_ai.provider.name`` value."""
    module = importlib.import_module(f"batchtrace.extract.{module_name}")
    adapter = getattr(module, "ADAPTER", None)
    assert isinstance(adapter, FormatAdapter), f"batchtrace.extract.{module_name} has no ADAPTER"
    assert isinstance(adapter.name, str)
    assert adapter.name
    assert isinstance(adapter.provider, str)
    assert adapter.provider
    assert adapter.name == adapter.name.strip().lower()
    assert all(alias == alias.strip().lower() for alias in adapter.aliases)
    assert adapter in adapters()
    assert adapter_named(adapter.name) is adapter


def test_every_module_is_found_and_names_do_not_collide() -> None:
    """Discovery finds one adapter per module, and no name or alias picks two adapters."""
    found = adapters()
    assert len(found) == len(adapter_modules())
    names = Counter(name for adapter in found for name in {adapter.name, *adapter.aliases})
    assert [name for name, count in names.items() if count > 1] == []


# --------------------------------------------------------------------------- by name


def test_adapter_named_finds_openai_whatever_the_spelling() -> None:
    adapter = adapter_named("openai")
    assert adapter.provider == "openai"
    assert adapter_named("  OpenAI ") is adapter


def test_adapter_named_accepts_the_provider_value_and_aliases() -> None:
    """``--provider`` takes an adapter's name, its ``gen_ai.provider.name`` value, or an alias."""
    for adapter in adapters():
        assert adapter_named(adapter.provider).provider == adapter.provider
        for alias in adapter.aliases:
            assert adapter_named(alias) is adapter


@pytest.mark.parametrize("name", ["not-a-provider", "", "open ai"])
def test_unknown_provider_is_a_one_line_input_error_listing_the_choices(name: str) -> None:
    """An unknown name is the user's input to fix (CLI exit 2): one line that says what would do."""
    with pytest.raises(InputError) as caught:
        adapter_named(name)
    message = str(caught.value)
    assert "\n" not in message
    assert repr(name) in message
    assert "openai" in message
    assert all(choice in message for choice in provider_names())


def test_provider_names_are_every_name_and_alias_sorted() -> None:
    names = provider_names()
    assert names == sorted(names)
    assert "openai" in names
    expected = {name for adapter in adapters() for name in (adapter.name, *adapter.aliases)}
    assert set(names) == expected


# --------------------------------------------------------------------------- from the lines


@pytest.mark.parametrize(
    ("fixture", "is_input"),
    [
        ("openai/chat.requests.jsonl", True),
        ("openai/embeddings.requests.jsonl", True),
        ("openai/responses.requests.jsonl", True),
        ("openai/chat.results.jsonl", False),
        ("openai/chat.errors.jsonl", False),
        ("openai/videos.results.jsonl", False),
    ],
)
def test_openai_lines_are_detected_as_openai(fixture: str, is_input: bool) -> None:
    """An OpenAI Batch API input or output line is detected as the OpenAI family's head, ``openai``."""
    found = detect(first_line(fixture), request=is_input)
    assert found is not None
    assert found.name == "openai"


def test_an_expired_line_alone_is_openai() -> None:
    """The error file's ``batch_expired`` line (``response: null``) is enough to know the format."""
    line = {"id": "batch_req_1", "custom_id": "a", "response": None, "error": {"code": "batch_expired", "message": "m"}}
    found = detect(line, request=False)
    assert found is not None
    assert found.name == "openai"


@pytest.mark.parametrize(
    "line",
    [{}, {"foo": 1}, {"custom_id": 7}, {"custom_id": "a"}, {"body": {}}, {"custom_id": "a", "response": "ok"}],
)
def test_lines_of_no_known_shape_are_not_guessed(line: dict[str, Any]) -> None:
    """A line of no known shape detects nothing (the run then asks for ``--provider``)."""
    assert detect(line, request=False) is None
    assert detect(line, request=True) is None


def test_another_providers_result_is_not_taken_for_openai() -> None:
    """An Anthropic result line has a ``custom_id`` too, but it is not an OpenAI result."""
    line = {"custom_id": "a", "result": {"type": "succeeded", "message": {"content": []}}}
    found = detect(line, request=False)
    assert found is None or found.name != "openai"
    assert adapter_named("openai").result_id(line, 1) is None
