"""The input index reads ids from raw lines: it must say what a full parse says, or say "not sure".

``top_level_id`` is held to the full parse (orjson, then the adapter's ``request_id``) over many
thousands of random lines: random member order, nested objects that carry the same keys, every
kind of string (escapes, quotes, backslashes, non-ASCII, surrogate pairs, control characters),
``ensure_ascii`` or raw UTF-8, odd spacing, duplicate keys, and lines cut or corrupted at random.
Whenever it answers, the answer is the full parse's; on the usual layouts it answers (that is the
point of it). A line broken past its id is counted by the worker that parses it: the run's
counts are those of a full parse (the last test).
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from batchtrace.extract.anthropic import AnthropicAdapter
from batchtrace.extract.openai import ADAPTER
from batchtrace.read.fast_id import top_level_id
from batchtrace.run import run_batch
from batchtrace.send.otlp_config import OtlpConfig

from tests.support.batches import hostile_batch, large_batch
from tests.support.otlp_receiver import OtlpReceiver

OPENAI_KEYS = (b'"custom_id"', b'"body"')
ALPHABET = 'ab yZ09-_/+%.:,{}[]"\\\t\n\x00\x1féüß日本語ёж🚀🎉\u2028'
SEPARATORS = [(",", ":"), (", ", ": "), (" ,", " : "), (",\t", ":\t"), (",  ", ":\r ")]


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 12)))


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randint(0, 7 if depth < 2 else 4)
    scalars = [random_text(rng), rng.randint(-(10**12), 10**12), rng.random() * 1e6, True, None]
    if kind <= 4:
        return scalars[kind]
    if kind == 5:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    keys = ["custom_id", "body", "x", random_text(rng)]
    return {rng.choice(keys): random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def random_request(rng: random.Random) -> dict[str, Any]:
    """A request-like object: usually the real members, in any order, among others."""
    members: dict[str, Any] = {}
    if rng.random() < 0.95:
        members["custom_id"] = rng.choice([random_text(rng), f"req-{rng.randint(0, 999)}", "", 7, None])
    for key in ("method", "url", "x", random_text(rng)):
        if rng.random() < 0.5:
            members[key] = random_value(rng)
    if rng.random() < 0.95:
        members["body"] = rng.choice([{"messages": [random_value(rng)]}, random_value(rng), {}])
    order = list(members)
    rng.shuffle(order)
    if "custom_id" in order and rng.random() < 0.6:  # writers usually put it first
        order.remove("custom_id")
        order.insert(0, "custom_id")
    return {key: members[key] for key in order}


def serialise(obj: dict[str, Any], rng: random.Random) -> bytes:
    """The object as some writer would put it on a line (and, now and then, a duplicate member)."""
    separators = rng.choice(SEPARATORS)
    text = json.dumps(obj, ensure_ascii=rng.random() < 0.5, separators=separators)
    if rng.random() < 0.05 and len(obj) > 0:
        key = rng.choice(["custom_id", "body"])
        text = text[:-1] + f'{separators[0]}"{key}"{separators[1]}' + json.dumps(random_value(rng)) + "}"
    line = text.encode()
    if rng.random() < 0.2:
        line = rng.choice([b" ", b"\t", b"\r", b"\xef\xbb\xbf", b"\x0c"]) + line + rng.choice([b"", b" ", b"\r"])
    return line


def corrupt(line: bytes, rng: random.Random) -> bytes:
    """A line cut short, with a byte flipped, or two lines run together."""
    choice = rng.randint(0, 3)
    if choice == 0:
        return line[: rng.randint(0, len(line))]
    if choice == 1 and line:
        at = rng.randrange(len(line))
        return line[:at] + bytes([rng.randrange(256)]) + line[at + 1 :]
    if choice == 2:
        return line + line
    return line.replace(b'"', b"", 1)


def full_parse(line: bytes, adapter: Any = ADAPTER) -> str | None:
    """What indexing said before: orjson, then the adapter's ``request_id``."""
    try:
        obj = orjson.loads(line.strip())
    except orjson.JSONDecodeError:
        return None
    return adapter.request_id(obj) if isinstance(obj, dict) else None


@pytest.mark.parametrize("seed", range(8))
def test_fast_ids_agree_with_the_full_parse(seed: int) -> None:
    """On well-formed lines, a fast answer is always the full parse's answer."""
    rng = random.Random(seed)
    answered = 0
    for _ in range(4000):
        line = serialise(random_request(rng), rng)
        fast = top_level_id(line, *OPENAI_KEYS)
        if fast is not None:
            answered += 1
            assert fast == full_parse(line) or (fast == "" and full_parse(line) is None), line
    assert answered > 200, "many random layouts are read without parsing"


@pytest.mark.parametrize("seed", range(4))
def test_fast_ids_of_corrupted_lines_never_contradict_a_parse(seed: int) -> None:
    """A corrupted line gets no id, or the id a parse gives; broken bodies are left to the worker."""
    rng = random.Random(1000 + seed)
    for _ in range(4000):
        line = corrupt(serialise(random_request(rng), rng), rng)
        fast = top_level_id(line, *OPENAI_KEYS)
        parsed = full_parse(line)
        if fast and parsed is not None:
            assert fast == parsed, line


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"custom_id": "a", "method": "POST", "url": "/v1/x", "body": {"m": 1}}', "a"),
        (b'{"custom_id":"t\\u00e2che-1","body":{}}', "t\u00e2che-1"),
        ('{"custom_id":"tâche-1","body":{}}'.encode(), "tâche-1"),
        (b'{"custom_id":"\\ud83d\\ude80 \\"q\\" \\\\","body":{}}', '🚀 "q" \\'),
        (b'  {"custom_id" :\t"a" ,  "body" : {}}\r', "a"),
        (b'{"id": "x", "custom_id": "a", "body": {}}', "a"),
    ],
)
def test_usual_layouts_are_read(line: bytes, expected: str) -> None:
    assert top_level_id(line, *OPENAI_KEYS) == expected


@pytest.mark.parametrize(
    "line",
    [
        b'{"custom_id": "a", "body": {}, "custom_id": "b"}',  # JSON's last duplicate wins
        b'{"meta": {"custom_id": "n"}, "custom_id": "a", "body": {}}',  # nested first
        b'{"body": {}, "custom_id": "a"}',  # body first: parsed instead
        b'{"custom_id": "a", "body": []}',  # body not an object
        b'{"custom_id": 7, "body": {}}',
        b'{"custom_id": "a\x01", "body": {}}',  # a raw control character is invalid JSON
        b'{"custom_id": "a", "body": {"m',  # cut short
        b'\xef\xbb\xbf{"custom_id": "a", "body": {}}',  # a BOM: the full parse strips it
        b'{"custom_id": "a", "body": {"q": "\xff"}}',  # invalid UTF-8
        b'{"q": "\\"custom_id", "custom_id": "a", "body": {}}',
    ],
)
def test_unusual_layouts_are_left_to_the_full_parse(line: bytes) -> None:
    assert top_level_id(line, *OPENAI_KEYS) is None


@pytest.mark.parametrize("shape", ["ascii", "multilingual-escaped", "tool-heavy"])
def test_every_line_of_the_benchmark_batches_is_read_without_parsing(shape: str, tmp_path: Path) -> None:
    """The layouts users' files have (raw UTF-8 and ``json.dumps``'s defaults) are all read fast, and right."""
    batch = large_batch(tmp_path, 300, content_bytes=600, shape=shape)
    for line in batch.input.read_bytes().splitlines():
        assert top_level_id(line, *OPENAI_KEYS) == full_parse(line) is not None


def test_the_hostile_batch_is_read_right() -> None:
    """Ids that naive code mangles (quotes, backslashes, tabs, non-ASCII) and junk lines: never a wrong id."""
    for line in hostile_batch().with_hostile_lines().input_bytes().splitlines():
        fast = top_level_id(line, *OPENAI_KEYS)
        assert fast is None or fast == full_parse(line), line[:200]


def test_anthropic_requests_are_read_by_their_params() -> None:
    adapter = AnthropicAdapter()
    line = b'{"custom_id": "a", "params": {"model": "claude"}}'
    assert adapter.fast_request_id(line) == full_parse(line, adapter) == "a"
    assert adapter.fast_request_id(b'{"custom_id": "a", "body": {}}') is None


def result_line(custom_id: str) -> bytes:
    body = {"model": "m", "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    line = {"id": "r", "custom_id": custom_id, "response": {"status_code": 200, "body": body}, "error": None}
    return orjson.dumps(line) + b"\n"


BROKEN_INPUT = (
    b'{"custom_id": "ok", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": []}}\n'
    b'{"custom_id": "broken", "body": {"model": "m", "messages": [}\n'
    b'{"custom_id": "lonely", "body": {"model": "m", "messages": ]}}\n'
)


def test_a_request_line_broken_past_its_id_is_counted_as_malformed() -> None:
    """Indexed by its id, found out by the worker: a malformed input line, its result an orphan, as before."""
    with OtlpReceiver() as receiver:
        summary = run_batch(
            io.BytesIO(BROKEN_INPUT),
            [("output.jsonl", io.BytesIO(result_line("ok") + result_line("broken")))],
            batch_id="b",
            otlp=OtlpConfig.resolve(endpoint=receiver.endpoint),
            workers=0,
            input_name="input.jsonl",
        )
        assert receiver.wait_for_spans(3)
        spans = {span.attributes.get("batchtrace.custom_id"): span for span in receiver.spans}
    counts = (summary.requests, summary.malformed_lines, summary.orphan_results, summary.no_result)
    assert counts == (1, 2, 1, 0)
    assert summary.malformed_by_file == {"input.jsonl": 2}
    assert summary.spans_failed == 0
    assert spans["broken"].attributes.get("batchtrace.orphan_result") is True
    assert "lonely" not in spans
