"""A request line's id read straight from its bytes, without parsing the line.

Indexing the input parsed every line in full only to read its ``custom_id``: 200 MB of JSON
turned into Python objects and thrown away, on the one process that must finish indexing
before any span is built (and most costly for lines written with ``ensure_ascii``, where every
non-ASCII character is an escape to decode). The span workers parse each request anyway, so
the index reads the id from the bytes when the line is laid out the usual way, and says
``None`` whenever it cannot be sure, for the full parse to decide:

- the line is one JSON object (``{`` ... ``}``, JSON whitespace around) of valid UTF-8;
- the id key is a key of that object: everything before it is the opening brace and simple
  ``"key": value`` pairs (no nested object or array, no escape);
- its value is a JSON string (escapes decoded by orjson, as the full parse would);
- the object key the format requires (OpenAI's ``body``) follows in the same way, opening an object;
- neither key appears again (JSON's last duplicate wins; a nested one is not worth telling apart).

What is not checked is the rest of the object: a line broken inside its body is found out when
a worker parses it (:func:`batchtrace.read.request_index.parse_request`), and counted then.
"""

from __future__ import annotations

import re

import orjson

_JSON_WHITESPACE = b" \t\r\n"
_BACKSLASH = 0x5C
#: What may not stand between the object's opening brace and a key for that key to be a member of it.
_NESTED_OR_ESCAPED = re.compile(rb"[{}\[\]\\]")
_CONTROL = re.compile(rb"[\x00-\x1f]")


def _members_only(line: bytes, start: int, stop: int) -> bool:
    """Whether ``line[start:stop]`` is a (possibly empty) run of ``"key": scalar,`` members."""
    segment = line[start:stop]
    if _NESTED_OR_ESCAPED.search(segment) or segment.count(b'"') % 2:
        return False
    last = segment.rstrip(_JSON_WHITESPACE)[-1:]
    return last in (b"", b",") if start == 1 else last == b","


def _after_colon(line: bytes, pos: int) -> int:
    """The position of the value after ``"key"`` ending at ``pos`` (-1 when there is no colon)."""
    while line[pos : pos + 1] in (b" ", b"\t", b"\r", b"\n"):
        pos += 1
    if line[pos : pos + 1] != b":":
        return -1
    pos += 1
    while line[pos : pos + 1] in (b" ", b"\t", b"\r", b"\n"):
        pos += 1
    return pos


def _string_end(line: bytes, start: int) -> int:
    """The index of the quote closing the JSON string opened at ``start`` (-1 if none)."""
    end = line.find(b'"', start + 1)
    while end > 0:
        slashes = 0
        while line[end - 1 - slashes] == _BACKSLASH:
            slashes += 1
        if slashes % 2 == 0:
            return end
        end = line.find(b'"', end + 1)
    return -1


def _string_at(line: bytes, start: int) -> tuple[str | None, int]:
    """The JSON string opened at ``start``, decoded, and where it ends; ``(None, -1)`` if it is not one."""
    end = _string_end(line, start) if line[start : start + 1] == b'"' else -1
    if end < 0:
        return None, -1
    raw = line[start : end + 1]
    if _CONTROL.search(raw):
        return None, -1
    if b"\\" not in raw:
        return raw[1:-1].decode(), end + 1  # the whole line is valid UTF-8 by now
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, -1
    return (value, end + 1) if isinstance(value, str) else (None, -1)


def _one_object(line: bytes) -> bytes | None:
    """``line`` without JSON whitespace around, if it is one object of valid UTF-8."""
    stripped = line.strip(_JSON_WHITESPACE)
    if stripped[:1] != b"{" or stripped[-1:] != b"}":
        return None
    if not stripped.isascii():
        try:
            stripped.decode()
        except UnicodeDecodeError:
            return None
    return stripped


def _id_member(text: bytes, id_key: bytes) -> tuple[str | None, int]:
    """The string value of the member ``id_key`` and where it ends, if it is surely a member of ``text``."""
    at = text.find(id_key)
    if at < 0 or not _members_only(text, 1, at):
        return None, -1
    value_at = _after_colon(text, at + len(id_key))
    value, end = _string_at(text, value_at) if value_at > 0 else (None, -1)
    if value is None or text.find(id_key, end) >= 0:
        return None, -1
    return value, end


def _object_member_follows(text: bytes, start: int, object_key: bytes) -> bool:
    """Whether the member ``object_key``, after ``start``, is surely there and opens an object."""
    at = text.find(object_key, start)
    if at < 0 or not _members_only(text, start, at) or text.find(object_key, at + 1) >= 0:
        return False
    opens = _after_colon(text, at + len(object_key))
    return opens > 0 and text[opens : opens + 1] == b"{"


def top_level_id(line: bytes, id_key: bytes, object_key: bytes) -> str | None:
    """The string under ``id_key`` (a quoted key, ``b'"custom_id"'``) when sure; ``None`` to parse instead.

    ``object_key`` (``b'"body"'``) must follow as a member whose value is an object.
    """
    text = _one_object(line)
    if text is None:
        return None
    value, end = _id_member(text, id_key)
    return value if value is not None and _object_member_follows(text, end, object_key) else None
