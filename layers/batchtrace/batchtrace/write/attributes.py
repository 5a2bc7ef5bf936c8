"""A span's attributes, with its JSON texts kept as the UTF-8 bytes they were serialised to.

Messages, system instructions, tool definitions and the Traceloop input and output are JSON
strings on the span: several kilobytes each, several per span. ``orjson`` serialises them to
UTF-8; decoding that to a Python string only for the OTLP encoder to encode it back to UTF-8
costs as much as the serialisation itself once the text is not ASCII (Japanese, Cyrillic,
emoji). So a span built by :class:`~batchtrace.write.spans.SpanFactory` keeps them as
:class:`JsonText` in a :class:`SpanAttributes` mapping: the encoder copies the bytes as they are
(:func:`wire_items`), and anyone else reading the attributes (another exporter, a test, the SDK's
``to_json``) gets ordinary strings, decoded on the way out.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, Mapping, ValuesView
from typing import Any

import orjson


class JsonText:
    """A JSON text as UTF-8 bytes: an attribute value that is a string everywhere but in memory."""

    __slots__ = ("utf8",)

    def __init__(self, utf8: bytes) -> None:
        self.utf8 = utf8

    def __str__(self) -> str:
        return self.utf8.decode()

    def __repr__(self) -> str:
        return repr(str(self))


def _plain(value: Any) -> Any:
    return value.utf8.decode() if type(value) is JsonText else value


class SpanAttributes(dict[str, Any]):
    """A span's attributes; reading them gives strings where :class:`JsonText` is stored.

    Every way of reading goes through :meth:`__getitem__` (``dict(attrs)`` and ``{**attrs}``
    too, as iteration is not the dict's own), so a :class:`JsonText` never leaves this mapping
    but through :func:`wire_items`.
    """

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        return _plain(dict.__getitem__(self, key))

    def get(self, key: str, default: Any = None) -> Any:
        return _plain(dict.get(self, key, default))

    def __iter__(self) -> Iterator[str]:
        return iter(dict.keys(self))

    def items(self) -> ItemsView[str, Any]:  # type: ignore[override]
        return ItemsView(self)

    def values(self) -> ValuesView[Any]:  # type: ignore[override]
        return ValuesView(self)

    def pop(self, key: str, *default: Any) -> Any:
        return _plain(dict.pop(self, key, *default))

    def copy(self) -> dict[str, Any]:
        """A plain ``dict`` of the attributes, strings decoded."""
        return {key: _plain(value) for key, value in dict.items(self)}

    def __eq__(self, other: object) -> bool:
        return self.copy() == (dict(other.items()) if isinstance(other, Mapping) else other)

    __hash__ = None

    def __repr__(self) -> str:
        return repr(self.copy())


def wire_items(attributes: Mapping[str, Any]) -> Iterable[tuple[str, Any]]:
    """The attributes as stored: :class:`JsonText` left as bytes (for the OTLP encoder)."""
    if type(attributes) is SpanAttributes:
        return dict.items(attributes)
    return attributes.items()


def set_json(attrs: dict[str, Any], key: str, value: Any) -> None:
    """``attrs[key]``: ``value`` serialised as JSON once; kept as UTF-8 in a :class:`SpanAttributes`."""
    data = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    attrs[key] = JsonText(data) if type(attrs) is SpanAttributes else data.decode()
