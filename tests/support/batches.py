"""The one batch generator of the tests: OpenAI Batch API files with every ``custom_id``'s fate known.

A batch is made by a *recipe*, which decides, request by request, its fate and the content of its
lines; everything else is shared: the line shapes of OpenAI's ``/v1/chat/completions`` batches
(input, output and error file), the :class:`Fate` each ``custom_id`` must show as a span, junk
lines spliced into the files, the batch object, and the ways to hand the files to the code under
test (bytes, a folder, S3, the library's lists). Three recipes:

:func:`hostile_batch`
    The functional tier's: realistic multilingual content, tool calls, ``custom_id``\\ s that naive
    code mangles (spaces, slashes, ``+``, ``%``, quotes, tabs, non-ASCII) spread over every fate,
    ~5% HTTP errors (400/429/500), ~5% ``batch_expired``, ~3% no result, two orphan results, one
    ``usage: null``, one truncated line in the middle of the output file, outputs and errors shuffled.
:func:`fault_batch`
    The fault tier's: small and plain, fates by index (an HTTP 400 when ``i % 11 == 3``,
    ``batch_expired`` when ``i % 11 == 7``, no result when ``i % 13 == 5``, else a 200), so span
    sizes and chunk counts are predictable. :meth:`Batch.with_hostile_lines` splices in every kind
    of hostile line (:func:`hostile_lines`), which carry :data:`CANARY` so a test can prove their
    content never reaches a log.
:func:`large_batch`
    The benchmark's: ``requests`` requests of about ``content_bytes`` of prompt each, ~1% without a
    result and ~2% expired, streamed straight to files (each line is a function of its index, so
    the shuffled output file is written by regenerating lines, never by holding them). Its
    ``shape`` (:data:`SHAPES`) varies what users' batches vary: ASCII or multilingual text, raw or
    escaped JSON, short or long conversations, tools, large completions, many errors.

The two small recipes give a :class:`Batch` in memory (nothing is written until asked); every
recipe can also be streamed to files with :func:`stream`.
"""

from __future__ import annotations

import copy
import json
import random
from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "CANARY",
    "EXPIRED",
    "HTTP_ERROR",
    "NO_RESULT",
    "OK",
    "ORPHAN",
    "ROLES",
    "SHAPES",
    "TOOL_CALL",
    "Batch",
    "BatchFiles",
    "Entry",
    "Fate",
    "Recipe",
    "Shape",
    "batch_object",
    "build",
    "fault_batch",
    "hostile_batch",
    "hostile_lines",
    "large_batch",
    "malformed_lines",
    "stream",
]

OK, TOOL_CALL, HTTP_ERROR, EXPIRED, NO_RESULT, ORPHAN = (
    "ok",
    "tool_call",
    "http_error",
    "expired",
    "no_result",
    "orphan",
)
FAILED_KINDS = frozenset({HTTP_ERROR, EXPIRED, NO_RESULT})
#: The three files of a batch, by role.
ROLES = ("input", "output", "errors")
CANARY = "CANARY-7f3a-do-not-log"
#: Size of the "several MB" hostile lines.
HUGE_LINE_BYTES = 3 * 1024 * 1024
URL = "/v1/chat/completions"

Line = dict[str, Any]
#: A file's lines: an int is the index of an entry (its request or result line), bytes a raw junk line.
FileLines = tuple[int | bytes, ...]


# =========================================================================== what each custom_id must become


@dataclass(frozen=True)
class Fate:
    """What should become of one ``custom_id`` (one span each).

    ``has_usage`` says whether token attributes must be present; ``input_tokens`` and
    ``output_tokens`` are their exact values when known (``None``: any value). ``params`` are the
    ``gen_ai.request.*`` attributes the request's body implies. Text fields are the ones the span's
    message attributes must carry verbatim (``None``: not checked).
    """

    kind: str
    model: str
    error_type: str | None = None
    status_code: int | None = None
    finish_reason: str | None = None
    has_usage: bool = False
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    tool_name: str | None = None
    tool_arguments: dict[str, Any] | None = None
    response_model: str | None = None
    response_id: str | None = None
    line_id: str | None = None
    request_id: str | None = None
    system_fingerprint: str | None = None
    user_text: str | None = None
    system_text: str | None = None
    output_text: str | None = None
    created: int | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.kind in FAILED_KINDS


@dataclass(frozen=True)
class Entry:
    """One ``custom_id``: its input line (None for an orphan), its result line (None: no result), its fate."""

    custom_id: str
    fate: Fate
    request: Line | None = None
    result: Line | None = None

    @property
    def file(self) -> str | None:
        """Where the result line goes: OpenAI puts failed requests in the error file."""
        if self.result is None:
            return None
        return "errors" if self.fate.kind in (HTTP_ERROR, EXPIRED) else "output"


# =========================================================================== OpenAI's line shapes


def request_line(custom_id: str, body: Line) -> Line:
    return {"custom_id": custom_id, "method": "POST", "url": URL, "body": body}


def success_line(custom_id: str, line_id: str, request_id: str, body: Line) -> Line:
    return {
        "id": line_id,
        "custom_id": custom_id,
        "response": {"status_code": 200, "request_id": request_id, "body": body},
        "error": None,
    }


def completion_body(
    completion_id: str, created: int, model: str, message: Line, finish: str, usage: Line | None, **extra: Any
) -> Line:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage,
        **extra,
    }


def usage(prompt: int, completion: int, cached: int = 0) -> Line:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def http_error_line(custom_id: str, line_id: str, request_id: str, status: int, error: Line) -> Line:
    return {
        "id": line_id,
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": request_id, "body": {"error": error}},
        "error": None,
    }


def expired_line(custom_id: str, line_id: str) -> Line:
    return {
        "id": line_id,
        "custom_id": custom_id,
        "response": None,
        "error": {
            "code": "batch_expired",
            "message": "This request could not be executed before the completion window expired.",
        },
    }


def error_type_of(error: Line) -> str:
    """The ``error.type`` a span gets for an HTTP error: OpenAI's ``code``, else its ``type``."""
    return str(error.get("code") or error["type"])


def batch_object(
    batch_id: str,
    status: str,
    *,
    output_file_id: str | None = None,
    error_file_id: str | None = None,
    total: int = 0,
    completed: int = 0,
    failed: int = 0,
    errors: Any = None,
    created_at: int = 1_773_100_000,
    completed_at: int | None = None,
    metadata: dict[str, str] | None = None,
) -> Line:
    """An OpenAI batch object with every field the API returns (nullable ones as ``None``)."""
    done = status in ("completed", "expired", "failed", "cancelled")
    end = created_at + 3_100 if completed_at is None else completed_at
    return {
        "id": batch_id,
        "object": "batch",
        "endpoint": URL,
        "errors": errors,
        "input_file_id": "file-input",
        "completion_window": "24h",
        "status": status,
        "output_file_id": output_file_id,
        "error_file_id": error_file_id,
        "created_at": created_at,
        "in_progress_at": created_at + 60 if status != "validating" else None,
        "expires_at": created_at + 86_400,
        "finalizing_at": end - 100 if done and status != "failed" else None,
        "completed_at": end if status == "completed" else None,
        "failed_at": created_at + 30 if status == "failed" else None,
        "expired_at": created_at + 86_500 if status == "expired" else None,
        "cancelling_at": created_at + 500 if status in ("cancelling", "cancelled") else None,
        "cancelled_at": created_at + 600 if status == "cancelled" else None,
        "request_counts": {"total": total, "completed": completed, "failed": failed},
        "metadata": {"submitted_by": "batchtrace-tests"} if metadata is None else metadata,
    }


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


# =========================================================================== junk lines


def hostile_lines(role: str) -> list[bytes]:
    """Every hostile line kind for one file; none is a usable request or result.

    ``role`` is ``input``, ``output`` or ``errors``: the wrong-shaped lines differ per file
    (a request with a null body; a result with a null custom_id or a non-object response).
    Each is counted as one malformed line.
    """
    canary = CANARY.encode()
    common = [
        b'{"custom_id": "broken-' + role.encode() + b'", "body": {"messages": [{"content": "' + canary,  # truncated
        b'["an", "array", "' + canary + b'"]',
        b"null",
        b"",  # blank
        b"   \t ",  # blank but for whitespace
        b'"' + canary + b' a bare string"',
        b"12345",
        # several MB, never closed
        b'{"custom_id": "huge-' + role.encode() + b'", "x": "' + canary * (HUGE_LINE_BYTES // len(canary)),
        # invalid UTF-8 inside an otherwise well-formed object
        b'{"custom_id": "utf8-' + role.encode() + b'", "note": "\xff\xfe\xc3 ' + canary + b'"}',
    ]
    if role == "input":
        shaped = [
            _dumps({"custom_id": "null-body", "method": "POST", "url": URL, "body": None}),
            _dumps({"custom_id": None, "method": "POST", "body": {"model": "gpt-4o-mini", "messages": [CANARY]}}),
            _dumps({"custom_id": 17, "body": {"model": "gpt-4o-mini"}}),
            _dumps({"custom_id": "list-body", "body": [CANARY]}),
        ]
    else:
        shaped = [
            _dumps({"id": "batch_req_x", "custom_id": None, "response": {"status_code": 200, "body": CANARY}}),
            _dumps({"id": "batch_req_y", "custom_id": "req-0000-wrong", "response": [CANARY], "error": None}),
            _dumps({"id": "batch_req_z", "custom_id": "req-0001-wrong", "response": CANARY, "error": None}),
            _dumps({"response": {"status_code": 200}, "error": None}),
        ]
    return common + shaped


def malformed_lines(count: int) -> list[bytes]:
    """``count`` cheap malformed lines (truncated objects, not JSON, a wrong-shaped object), in turn."""
    kinds = [b'{"custom_id": "trunc', b"not json at all", b"[1, 2", b'{"x": 0}']
    return [kinds[k % len(kinds)] for k in range(count)]


def _splice(lines: FileLines, bad: Sequence[bytes]) -> FileLines:
    """``lines`` with the ``bad`` ones spliced in: one goes in the middle, several from the first line to the last."""
    if len(bad) == 1:
        return (*lines[: len(lines) // 2], bad[0], *lines[len(lines) // 2 :])
    out = list(lines)
    for k, line in enumerate(bad):
        out.insert(0 if k == 0 else len(out) if k == len(bad) - 1 else (k * len(out)) // len(bad), line)
    return tuple(out)


# =========================================================================== the batch


@dataclass(frozen=True)
class BatchFiles:
    """A batch written to disk: its three paths, and how many requests and results they hold."""

    input: Path
    output: Path
    errors: Path
    requests: int = 0
    results: int = 0

    def __getitem__(self, role: str) -> Path:
        return {"input": self.input, "output": self.output, "errors": self.errors}[role]

    def items(self) -> list[tuple[str, Path]]:
        return [(role, self[role]) for role in ROLES]

    def cli_args(self) -> list[str]:
        """``--requests IN --results OUT --errors ERR`` for ``batchtrace replay``."""
        return ["--requests", str(self.input), "--results", str(self.output), "--errors", str(self.errors)]


@dataclass(frozen=True)
class Batch:
    """The three files of one batch, and the fate of every ``custom_id`` in them."""

    batch_id: str
    created_at: int
    completed_at: int
    entries: tuple[Entry, ...]
    files: Mapping[str, FileLines]

    # ------------------------------------------------------------------ lines

    @property
    def input_lines(self) -> list[Line]:
        """The requests, parsed (what a library caller passes as ``requests``)."""
        return self._parsed("input")

    @property
    def output_lines(self) -> list[Line]:
        return self._parsed("output")

    @property
    def error_lines(self) -> list[Line]:
        return self._parsed("errors")

    def _parsed(self, role: str) -> list[Line]:
        """Fresh copies, as if the file had just been read: a caller may change them."""
        return [copy.deepcopy(_line_of(self.entries[i], role)) for i in self.files[role] if isinstance(i, int)]

    def library_results(self) -> list[Any]:
        """What a library caller passes as ``results``: output lines (junk as text), then error lines."""
        output = [
            _line_of(self.entries[item], "output") if isinstance(item, int) else item.decode("utf-8", "replace")
            for item in self.files["output"]
        ]
        return [*output, *self.error_lines]

    @property
    def bad_lines(self) -> dict[str, tuple[int, ...]]:
        """1-based numbers of the junk lines in each file."""
        return {
            role: tuple(n for n, item in enumerate(self.files[role], 1) if isinstance(item, bytes)) for role in ROLES
        }

    # ------------------------------------------------------------------ expectations

    @property
    def fates(self) -> dict[str, Fate]:
        """Every custom_id that must become exactly one completion span, with what it must show."""
        return {entry.custom_id: entry.fate for entry in self.entries}

    @property
    def custom_ids(self) -> frozenset[str]:
        return frozenset(entry.custom_id for entry in self.entries)

    def count(self, *kinds: str) -> int:
        return sum(1 for entry in self.entries if entry.fate.kind in kinds)

    @property
    def requests(self) -> int:
        return sum(1 for item in self.files["input"] if isinstance(item, int))

    @property
    def results(self) -> int:
        return sum(1 for role in ("output", "errors") for item in self.files[role] if isinstance(item, int))

    @property
    def http_errors(self) -> int:
        return self.count(HTTP_ERROR)

    @property
    def expired(self) -> int:
        return self.count(EXPIRED)

    @property
    def no_result(self) -> int:
        return self.count(NO_RESULT)

    @property
    def malformed(self) -> int:
        return sum(len(numbers) for numbers in self.bad_lines.values())

    def expected_counts(self) -> dict[str, int]:
        """The summary's counts this batch must produce (spans not included: they depend on the mode)."""
        return {
            "requests": self.requests,
            "results": self.results,
            "errors": self.count(HTTP_ERROR, EXPIRED),
            "expired": self.expired,
            "no_result": self.no_result,
            "orphan_results": self.count(ORPHAN),
            "duplicate_ids": 0,
            "malformed_lines": self.malformed,
            "input_tokens": sum(entry.fate.input_tokens or 0 for entry in self.entries),
            "output_tokens": sum(entry.fate.output_tokens or 0 for entry in self.entries),
        }

    def plain_id(self, kind: str) -> str:
        """The first ``custom_id`` of that fate whose id is plain (``req-...``)."""
        return next(e.custom_id for e in self.entries if e.fate.kind == kind and e.custom_id.startswith("req-"))

    # ------------------------------------------------------------------ metadata

    def batch_object(self) -> Line:
        """OpenAI's batch object for this run (``trace.json``'s ``batch``)."""
        return batch_object(
            self.batch_id,
            "completed",
            output_file_id="file-output",
            error_file_id="file-errors",
            total=self.requests,
            completed=len(self.output_lines),
            failed=self.count(HTTP_ERROR, EXPIRED),
            created_at=self.created_at,
            completed_at=self.completed_at,
            metadata={"job": "tests ✓", "owner": "tests/support/batches.py"},
        )

    def trace_doc(self, trace_id: Any = None, span_id: Any = None, **extra: Any) -> Line:
        """A ``trace.json`` as written when the batch was submitted (``extra``: e.g. a ``traceparent``)."""
        doc: Line = {"batch": self.batch_object(), **extra}
        if trace_id is not None:
            doc["trace_id"] = trace_id
        if span_id is not None:
            doc["span_id"] = span_id
        return doc

    # ------------------------------------------------------------------ bytes, folders, S3

    def file_bytes(self, role: str) -> bytes:
        return b"".join(_encode(self.entries, role, item) + b"\n" for item in self.files[role])

    def input_bytes(self) -> bytes:
        return self.file_bytes("input")

    def output_bytes(self) -> bytes:
        return self.file_bytes("output")

    def errors_bytes(self) -> bytes:
        return self.file_bytes("errors")

    def write(self, directory: Path) -> BatchFiles:
        """Write ``input.jsonl``, ``output.jsonl`` and ``errors.jsonl`` (UTF-8, as OpenAI does)."""
        directory.mkdir(parents=True, exist_ok=True)
        files = replace(_paths(directory), requests=self.requests, results=self.results)
        for role, path in files.items():
            path.write_bytes(self.file_bytes(role))
        return files

    def upload(
        self,
        s3: Any,
        bucket: str,
        folder: str,
        *,
        trace_doc: Line | None = None,
        trace_json: bytes | None = None,
        input_metadata: dict[str, str] | None = None,
        with_input: bool = True,
        with_output: bool = True,
    ) -> str:
        """Upload the batch under ``folder`` (output last, as OpenAI's arrives); returns the output key."""
        if with_input:
            s3.put_object(
                Bucket=bucket, Key=f"{folder}/input.jsonl", Body=self.input_bytes(), Metadata=input_metadata or {}
            )
        if trace_doc is not None:
            trace_json = json.dumps(trace_doc).encode()
        if trace_json is not None:
            s3.put_object(Bucket=bucket, Key=f"{folder}/trace.json", Body=trace_json)
        s3.put_object(Bucket=bucket, Key=f"{folder}/errors.jsonl", Body=self.errors_bytes())
        if with_output:
            s3.put_object(Bucket=bucket, Key=f"{folder}/output.jsonl", Body=self.output_bytes())
        return f"{folder}/output.jsonl"

    # ------------------------------------------------------------------ variants

    def with_junk(self, junk: Mapping[str, Sequence[bytes]]) -> Batch:
        """This batch with raw ``junk`` lines spliced into the files named (see :func:`_splice`)."""
        return replace(self, files={role: _splice(lines, junk.get(role, ())) for role, lines in self.files.items()})

    def with_hostile_lines(self) -> Batch:
        """This batch with every hostile line kind spliced into each of its three files."""
        return self.with_junk({role: hostile_lines(role) for role in ROLES})

    def with_long_prompt(self, custom_id: str, chars: int) -> Batch:
        """This batch with ``custom_id``'s last message a ``chars``-long user prompt (its result unchanged)."""
        filler = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * (chars // 57 + 1))[:chars]
        entries = list(self.entries)
        index = next(i for i, e in enumerate(entries) if e.custom_id == custom_id)
        entry = entries[index]
        request = copy.deepcopy(entry.request)
        assert request is not None, f"{custom_id} has no request"
        request["body"]["messages"][-1] = {"role": "user", "content": filler}
        entries[index] = replace(entry, request=request, fate=replace(entry.fate, user_text=None))
        return replace(self, entries=tuple(entries))

    def subset(self, kinds: Collection[str]) -> Batch:
        """Only the custom_ids of these fates; a file left without any of its lines is empty (junk goes too)."""
        kept = [i for i, e in enumerate(self.entries) if e.fate.kind in kinds]
        renumber = {old: new for new, old in enumerate(kept)}
        files: dict[str, FileLines] = {}
        for role, items in self.files.items():
            lines = tuple(
                item if isinstance(item, bytes) else renumber[item]
                for item in items
                if item in renumber or isinstance(item, bytes)
            )
            files[role] = lines if any(isinstance(item, int) for item in lines) else ()
        return replace(self, entries=tuple(self.entries[i] for i in kept), files=files)


def _paths(directory: Path) -> BatchFiles:
    return BatchFiles(directory / "input.jsonl", directory / "output.jsonl", directory / "errors.jsonl")


def _line_of(entry: Entry, role: str) -> Line:
    line = entry.request if role == "input" else entry.result
    assert line is not None, f"{entry.custom_id} has no {role} line"
    return line


def _encode(entries: Sequence[Entry], role: str, item: int | bytes) -> bytes:
    return item if isinstance(item, bytes) else _dumps(_line_of(entries[item], role))


# =========================================================================== recipes


class Recipe(ABC):
    """How a batch's requests are made: the fate and lines of request ``i``, and the batch's metadata.

    ``entry(i)`` must be a pure function of ``i`` (and the recipe's settings), so that
    :func:`stream` can write the shuffled output file by regenerating lines instead of holding them.
    """

    n: int
    seed: int
    batch_id: str
    created_at: int
    completed_at: int
    #: OpenAI's output file is in no particular order; the error file too, in the hostile batch.
    shuffle_errors: bool = False

    @abstractmethod
    def entry(self, i: int) -> Entry: ...

    def junk(self) -> Mapping[str, Sequence[bytes]]:
        """Junk lines the recipe always splices in, by file."""
        return {}

    def orphans(self) -> list[Entry]:
        """Results without a request, after the ``n`` requests."""
        return []

    def encode(self, role: str, i: int, line: Line) -> bytes:
        """How entry ``i``'s line is written in file ``role`` (compact UTF-8, as OpenAI writes)."""
        return _dumps(line)


def _layout(recipe: Recipe, where: Sequence[str | None], has_request: Sequence[bool]) -> dict[str, FileLines]:
    """Which entry's line is on which line of which file, with the recipe's shuffle."""
    rng = random.Random(recipe.seed)
    output = [k for k, file in enumerate(where) if file == "output"]
    errors = [k for k, file in enumerate(where) if file == "errors"]
    rng.shuffle(output)
    if recipe.shuffle_errors:
        rng.shuffle(errors)
    inputs = tuple(k for k, has in enumerate(has_request) if has)
    return {"input": inputs, "output": tuple(output), "errors": tuple(errors)}


def build(recipe: Recipe) -> Batch:
    """The recipe's batch, in memory."""
    entries = tuple([recipe.entry(i) for i in range(recipe.n)] + recipe.orphans())
    files = _layout(recipe, [e.file for e in entries], [e.request is not None for e in entries])
    return Batch(recipe.batch_id, recipe.created_at, recipe.completed_at, entries, files).with_junk(recipe.junk())


def stream(recipe: Recipe, directory: Path) -> BatchFiles:
    """Write the recipe's batch to ``directory`` holding no more than one line at a time (and the line order)."""
    directory.mkdir(parents=True, exist_ok=True)
    orphans = recipe.orphans()

    def entry(k: int) -> Entry:
        return recipe.entry(k) if k < recipe.n else orphans[k - recipe.n]

    paths = _paths(directory)
    where: list[str | None] = []
    has_request: list[bool] = []
    with paths.input.open("wb") as fh:
        for k in range(recipe.n + len(orphans)):
            current = entry(k)
            where.append(current.file)
            has_request.append(current.request is not None)
            if current.request is not None:
                fh.write(recipe.encode("input", k, current.request) + b"\n")
    files = _layout(recipe, where, has_request)
    for role in ("output", "errors"):
        with paths[role].open("wb") as fh:
            for item in files[role]:
                assert isinstance(item, int)
                fh.write(recipe.encode(role, item, _line_of(entry(item), role)) + b"\n")
    results = len(files["output"]) + len(files["errors"])
    return replace(paths, requests=len(files["input"]), results=results)


def _rng(*parts: object) -> random.Random:
    """A generator of its own for one request: its lines do not depend on any other request's."""
    return random.Random(":".join(map(str, parts)))


def _hex(rng: random.Random, bits: int = 128) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


# --------------------------------------------------------------------------- the fault tier's


_FAULT_CREATED_AT = 1_767_225_600  # 2026-01-01T00:00:00Z
_FAULT_MODEL = "gpt-4o-mini"
_FAULT_HTTP_ERROR = {
    "message": "Invalid value for 'temperature'.",
    "type": "invalid_request_error",
    "param": "temperature",
    "code": "invalid_value",
}


@dataclass
class _FaultRecipe(Recipe):
    n: int
    batch_id: str
    seed: int
    created_at: int = _FAULT_CREATED_AT
    completed_at: int = _FAULT_CREATED_AT + 3600

    def entry(self, i: int) -> Entry:
        custom_id = f"req-{i:0{max(4, len(str(self.n - 1)))}d}"
        system, user = "You answer in one word.", f"Question {i}: what is {i} + {i}?"
        body = {
            "model": _FAULT_MODEL,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "max_tokens": 16,
            "temperature": 0,
        }
        params = {"gen_ai.request.max_tokens": 16, "gen_ai.request.temperature": 0}
        fate = Fate(kind=OK, model=_FAULT_MODEL, user_text=user, system_text=system, params=params)
        line_id, request_id = f"batch_req_{i:06d}", f"req_{i:06d}"
        if i % 11 == 3:
            result = http_error_line(custom_id, line_id, request_id, 400, dict(_FAULT_HTTP_ERROR))
            fate = replace(fate, kind=HTTP_ERROR, error_type=error_type_of(_FAULT_HTTP_ERROR), status_code=400)
            return Entry(
                custom_id, replace(fate, line_id=line_id, request_id=request_id), request_line(custom_id, body), result
            )
        if i % 11 == 7:
            fate = replace(fate, kind=EXPIRED, error_type="batch_expired", line_id=line_id)
            return Entry(custom_id, fate, request_line(custom_id, body), expired_line(custom_id, line_id))
        if i % 13 == 5:
            return Entry(
                custom_id, replace(fate, kind=NO_RESULT, error_type="no_result"), request_line(custom_id, body)
            )
        created, answer, prompt = self.created_at + 60 + i, str(2 * i), 20 + i % 7
        message = {"role": "assistant", "content": answer, "refusal": None}
        tokens = {"prompt_tokens": prompt, "completion_tokens": 2, "total_tokens": prompt + 2}
        completion = completion_body(
            f"chatcmpl-{i:06d}", created, f"{_FAULT_MODEL}-2024-07-18", message, "stop", tokens, system_fingerprint=None
        )
        fate = replace(
            fate,
            finish_reason="stop",
            has_usage=True,
            input_tokens=prompt,
            output_tokens=2,
            response_model=completion["model"],
            response_id=completion["id"],
            line_id=line_id,
            request_id=request_id,
            output_text=answer,
            created=created,
        )
        return Entry(
            custom_id, fate, request_line(custom_id, body), success_line(custom_id, line_id, request_id, completion)
        )


def fault_batch(n: int, *, batch_id: str = "batch_faults_0001", seed: int = 7) -> Batch:
    """``n`` plain requests (``req-0000``...) with fates by index; see the module docstring."""
    return build(_FaultRecipe(n=n, batch_id=batch_id, seed=seed))


# --------------------------------------------------------------------------- the functional tier's hostile batch


#: custom_ids a naive implementation mangles (URL-decoding, path joining, stripping, ASCII-only).
SPECIAL_IDS = (
    "invoice 7/ñandú-日本",
    "résumé review/2026 Q1",
    "a+b=c & d",
    "100% sure?",
    "quote \"double\" and 'single'",
    "emoji 🚀 launch/🎉",
    "日本語のリクエスト",
    "path/../with//slashes/",
    "  leading and trailing spaces  ",
    "tab\tand back\\slash",
    "%2F-looks-encoded+plus",
    "Ünïcödé + 100%/é",
)
ORPHAN_IDS = ("orphan/ghost 👻 0001", "ticket-9999 (never submitted)")
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
TRUNCATED_LINE = b'{"id": "batch_req_truncated", "custom_id": "req-trunc", "response": {"status_code": 200, "bo'

_MODELS = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4o": "gpt-4o-2024-08-06",
}
_SYSTEM_PROMPTS = (
    "You are the support triage assistant. Answer with one category.",
    "Tu es un assistant qui résume des tickets en français.",
    "あなたはカスタマーサポートのアシスタントです。",
    None,
)
_USER_TEXTS = (
    "Our dashboard shows 503 since 08:10 UTC — please help!",
    "Facture n° 2026-0193 : montant 1 240,00 € TTC, échéance 15/04.",
    "注文番号 A-1029 の配送状況を教えてください。",
    "Can you summarise this thread? 🧵 It's long…",
    'He said "refund me" and then wrote \\o/ — what category?',
    "Zähle die Wörter: Größe, Maß, Straße.",
)
_ANSWERS = ("outage", "billing", "配送中です。", "Résumé : le client veut un remboursement.", "other 🤷")
_TOOLS: dict[str, dict[str, Any]] = {
    "lookup_order": {"order_id": "A-1029", "locale": "ja-JP"},
    "record_invoice": {"invoice_no": "2026-0193", "total": 1240.0, "currency": "EUR", "note": "échéance 15/04"},
    "escalate_ticket": {"priority": "p1", "reason": "503 on eu-west-1 — customers affected"},
}
_HTTP_ERRORS: tuple[tuple[int, Line], ...] = (
    (400, {"message": "Invalid value for 'content': expected a string, got null.", "type": "invalid_request_error",
           "param": "messages", "code": None}),
    (429, {"message": "Rate limit reached for gpt-4o-mini in organization org-x on tokens per min (TPM).",
           "type": "requests", "param": None, "code": "rate_limit_exceeded"}),
    (500, {"message": "The server had an error while processing your request. Sorry about that!",
           "type": "server_error", "param": None, "code": None}),
    (400, {"message": "This model's maximum context length is 128000 tokens.", "type": "invalid_request_error",
           "param": "messages", "code": "context_length_exceeded"}),
)  # fmt: skip
#: Optional request parameters: (share of requests, body key, values, span attribute or None).
_OPTIONAL_PARAMS: tuple[tuple[float, str, tuple[Any, ...], str | None], ...] = (
    (0.8, "temperature", (0, 0.2, 0.7, 1.0), "gen_ai.request.temperature"),
    (0.5, "top_p", (1, 0.9, 0.5), "gen_ai.request.top_p"),
    (0.3, "seed", (7, 1234, 2**31 - 1), "gen_ai.request.seed"),
    (0.2, "stop", (["\n\n", "END"],), "gen_ai.request.stop_sequences"),
    (0.15, "response_format", ({"type": "json_object"},), None),
    (0.2, "service_tier", ("default", "flex"), "openai.request.service_tier"),
    (0.1, "presence_penalty", (0.5,), "gen_ai.request.presence_penalty"),
)


def _fate_kinds(n: int, rng: random.Random) -> list[str]:
    counts = {
        HTTP_ERROR: max(4, round(n * 0.05)),
        EXPIRED: max(2, round(n * 0.05)),
        NO_RESULT: max(2, round(n * 0.03)),
        TOOL_CALL: max(3, round(n * 0.10)),
    }
    fixed = sum(counts.values())
    if n < fixed + 6:
        raise ValueError(f"a hostile batch needs at least {fixed + 6} requests, got {n}")
    kinds = [kind for kind, count in counts.items() for _ in range(count)]
    kinds += [OK] * (n - len(kinds))
    rng.shuffle(kinds)
    return kinds


def _custom_ids(kinds: list[str], rng: random.Random) -> list[str]:
    """Plain ids, with the special ones spread so every fate gets some of them."""
    ids = [f"req-{i:05d}" for i in range(len(kinds))]
    cycle = (OK, TOOL_CALL, HTTP_ERROR, EXPIRED, NO_RESULT)
    taken: set[int] = set()
    for k, special in enumerate(SPECIAL_IDS):
        wanted = cycle[k % len(cycle)]
        index = rng.choice([i for i, kind in enumerate(kinds) if kind == wanted and i not in taken])
        taken.add(index)
        ids[index] = special
    return ids


def _messages(rng: random.Random, system: str | None, user_text: str) -> list[Line]:
    messages: list[Line] = [{"role": "system", "content": system}] if system else []
    if rng.random() < 0.25:  # a multi-turn thread
        hello = {"role": "assistant", "content": "Hi! How can I help?", "refusal": None}
        messages += [{"role": "user", "content": "Hello 👋"}, hello]
    content: Any = [{"type": "text", "text": user_text}] if rng.random() < 0.3 else user_text  # typed parts
    return [*messages, {"role": "user", "content": content}]


def _hostile_body(kind: str, rng: random.Random) -> tuple[Line, Line]:
    """A request body and the facts about it a span must show."""
    model = rng.choice(list(_MODELS))
    system, user_text = rng.choice(_SYSTEM_PROMPTS), rng.choice(_USER_TEXTS)
    body: Line = {"model": model, "messages": _messages(rng, system, user_text)}
    cap = "max_tokens" if rng.random() < 0.5 else "max_completion_tokens"
    body[cap] = rng.choice((16, 64, 256) if cap == "max_tokens" else (32, 200, 1024))
    params: Line = {"gen_ai.request.max_tokens": body[cap]}
    for share, key, values, attribute in _OPTIONAL_PARAMS:
        if rng.random() < share:
            body[key] = rng.choice(values)
            if attribute:
                params[attribute] = body[key]
    if kind == TOOL_CALL or rng.random() < 0.1:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": f"{name} (hostile test tool)",
                    "parameters": {"type": "object", "properties": {k: {"type": "string"} for k in args}},
                },
            }
            for name, args in _TOOLS.items()
        ]
        body["tool_choice"] = "auto"
    return body, {"model": model, "user_text": user_text, "system_text": system, "params": params}


def _hostile_message(kind: str, rng: random.Random) -> tuple[Line, str, Line]:
    """The assistant's message, OpenAI's finish reason, and the facts about them."""
    message: Line = {"role": "assistant", "refusal": None, "annotations": []}
    if kind == TOOL_CALL:
        name = rng.choice(list(_TOOLS))
        arguments = json.dumps(_TOOLS[name], ensure_ascii=False)
        message["content"] = None
        message["tool_calls"] = [
            {"id": f"call_{_hex(rng, 96)}", "type": "function", "function": {"name": name, "arguments": arguments}}
        ]
        return message, "tool_calls", {"tool_name": name, "tool_arguments": _TOOLS[name], "output_text": None}
    message["content"] = answer = rng.choice(_ANSWERS)
    return message, "length" if rng.random() < 0.1 else "stop", {"output_text": answer}


def _hostile_success(
    custom_id: str, model: str, kind: str, created: int, rng: random.Random, *, null_usage: bool
) -> tuple[Line, Line]:
    """An output line for a successful completion, and its facts."""
    response_model = _MODELS.get(model, model)
    fingerprint = None if rng.random() < 0.25 else f"fp_{_hex(rng, 40)}"
    message, finish, facts = _hostile_message(kind, rng)
    prompt, completion = rng.randint(20, 2400), rng.randint(1, 400)
    tokens = None if null_usage else usage(prompt, completion, rng.choice((0, 1024)) if prompt > 1024 else 0)
    chat_id = "chatcmpl-" + "".join(rng.choice(_ID_ALPHABET) for _ in range(29))
    body = completion_body(
        chat_id,
        created,
        response_model,
        message,
        finish,
        tokens,
        service_tier="default",
        system_fingerprint=fingerprint,
    )
    line = success_line(custom_id, f"batch_req_{_hex(rng)}", _hex(rng), body)
    facts.update(
        # The span carries the semantic conventions' finish reason, not OpenAI's spelling.
        finish_reason={"tool_calls": "tool_call"}.get(finish, finish),
        has_usage=tokens is not None,
        input_tokens=tokens["prompt_tokens"] if tokens else None,
        output_tokens=tokens["completion_tokens"] if tokens else None,
        cached_tokens=tokens["prompt_tokens_details"]["cached_tokens"] if tokens else None,
        response_model=response_model,
        response_id=chat_id,
        line_id=line["id"],
        request_id=line["response"]["request_id"],
        system_fingerprint=fingerprint,
        created=created,
    )
    return line, facts


@dataclass
class _HostileRecipe(Recipe):
    n: int
    seed: int
    batch_id: str = ""
    created_at: int = 0
    completed_at: int = 0
    shuffle_errors: bool = True
    kinds: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        self.batch_id = f"batch_hostile{self.seed:04d}{_hex(rng, 64)}"
        self.created_at = 1_772_900_000 + rng.randint(0, 86_400)  # early March 2026, a few months back
        self.completed_at = self.created_at + 4 * 3600 + rng.randint(0, 3600)
        self.kinds = _fate_kinds(self.n, rng)
        self.ids = _custom_ids(self.kinds, rng)
        self._null_usage = self.kinds.index(OK)  # one success reports ``usage: null``

    def junk(self) -> Mapping[str, Sequence[bytes]]:
        return {"output": [TRUNCATED_LINE]}  # one truncated line, in the middle of the output file

    def entry(self, i: int) -> Entry:
        rng, kind, custom_id = _rng("hostile", self.seed, i), self.kinds[i], self.ids[i]
        body, facts = _hostile_body(kind, rng)
        request = request_line(custom_id, body)
        if kind in (OK, TOOL_CALL):
            created = rng.randint(self.created_at + 60, self.completed_at - 120)
            line, more = _hostile_success(
                custom_id, facts["model"], kind, created, rng, null_usage=i == self._null_usage
            )
            return Entry(custom_id, Fate(kind=kind, **facts, **more), request, line)
        line_id = f"batch_req_{_hex(rng)}"
        if kind == HTTP_ERROR:
            status, error = _HTTP_ERRORS[self.kinds[:i].count(HTTP_ERROR) % len(_HTTP_ERRORS)]
            line = http_error_line(custom_id, line_id, _hex(rng), status, dict(error))
            fate = Fate(kind=kind, error_type=error_type_of(error), status_code=status, line_id=line_id,
                        request_id=line["response"]["request_id"], **facts)  # fmt: skip
            return Entry(custom_id, fate, request, line)
        if kind == EXPIRED:
            fate = Fate(kind=kind, error_type="batch_expired", line_id=line_id, **facts)
            return Entry(custom_id, fate, request, expired_line(custom_id, line_id))
        return Entry(custom_id, Fate(kind=kind, error_type="no_result", **facts), request)  # in neither file

    def orphans(self) -> list[Entry]:
        entries = []
        for k, custom_id in enumerate(ORPHAN_IDS):
            rng = _rng("hostile-orphan", self.seed, k)
            created = rng.randint(self.created_at + 60, self.completed_at - 120)
            line, facts = _hostile_success(custom_id, "gpt-4o-mini", OK, created, rng, null_usage=False)
            # A result without a request: the span can only be named after the response's model.
            entries.append(Entry(custom_id, Fate(kind=ORPHAN, model=facts["response_model"], **facts), None, line))
        return entries


def hostile_batch(n: int = 200, seed: int = 7) -> Batch:
    """A hostile batch of ``n`` requests, the same for the same ``(n, seed)``; writes nothing."""
    return build(_HostileRecipe(n=n, seed=seed))


# --------------------------------------------------------------------------- the benchmark's large batch


_VOCABULARY = (
    "invoice customer refund shipment delayed warehouse account billing subscription renewal discount priority "
    "escalation ticket resolved pending analysis summary contract clause liability payment overdue reminder "
    "schedule meeting quarterly revenue forecast churn onboarding feedback feature request latency outage "
    "incident postmortem deployment rollback migration database index query timeout region replica backup "
    "restore encryption compliance"
)
#: Latin with accents, Japanese, Cyrillic and emoji (astral: a surrogate pair once escaped), among English.
_MULTILINGUAL = (
    "café résumé naïve Größe Straße façade piñata déjà-vu señor crème brûlée élève garçon échéance Æsir "
    "注文 配送 請求書 返金 確認 お客様 状況 対応 問題 解決 予定 連絡 ありがとうございます 申し訳ありません "
    "заказ доставка счёт возврат клиент проблема решение статус оплата подписка "
    "🚀 🎉 👍 🙏 📦 💳 ✅ ❌ 🔥 😊 "
)
LARGE_MODEL = "gpt-4o-mini"


@dataclass(frozen=True)
class Shape:
    """What the benchmark's requests look like; :data:`SHAPES` names the ones users have.

    ``content_bytes`` (the recipe's) is the UTF-8 size of each request's prompt text whatever the
    shape, so shapes differ in how the same amount of text is laid out, not in how much there is.
    ``escaped_share`` of the input lines are written the way ``json.dumps`` writes by default (every
    non-ASCII character a ``\\uXXXX`` escape, ``", "`` and ``": "`` separators); the rest compact
    raw UTF-8, as OpenAI writes. ``turns`` user messages make the conversation (each earlier one
    answered by the assistant); ``tools`` tool definitions go with every request, with a tool round
    trip in its history and a tool call in half the replies. ``error_share`` of the requests fail
    (expired, and HTTP 400/429/500 when ``http_errors``), ``no_result_share`` get no result.
    """

    name: str
    multilingual: bool = False
    escaped_share: float = 0.0
    turns: int = 1
    tools: int = 0
    completion_bytes: int = 600
    error_share: float = 0.02
    http_errors: bool = False
    no_result_share: float = 0.01


#: The shapes the benchmark covers (``--shapes``), ASCII first: the figure the README long quoted.
SHAPES: dict[str, Shape] = {
    shape.name: shape
    for shape in (
        Shape("ascii"),
        Shape("multilingual", multilingual=True),
        Shape("multilingual-escaped", multilingual=True, escaped_share=0.5),
        Shape("long-conversation", turns=10),
        Shape("tool-heavy", tools=8),
        Shape("large-completion", completion_bytes=4000),
        Shape("error-heavy", error_share=0.5, http_errors=True),
    )
}


@cache
def _corpus(seed: int, multilingual: bool = False) -> str:
    """256 K words of the vocabulary (a quarter multilingual when asked); each text is a window of it."""
    rng, words = random.Random(seed), _VOCABULARY.split()
    foreign = _MULTILINGUAL.split()
    if not multilingual:
        return " ".join(rng.choice(words) for _ in range(32_768))
    return " ".join(rng.choice(foreign) if rng.random() < 0.25 else rng.choice(words) for _ in range(32_768))


@cache
def _bytes_per_char(seed: int, multilingual: bool) -> float:
    corpus = _corpus(seed, multilingual)
    return len(corpus.encode()) / len(corpus)


def _window(seed: int, rng: random.Random, size: int, multilingual: bool = False) -> str:
    """About ``size`` UTF-8 bytes of text, starting at a word."""
    corpus = _corpus(seed, multilingual)
    chars = max(1, int(size / _bytes_per_char(seed, multilingual)))
    start = corpus.index(" ", rng.randrange(len(corpus) - chars - 20)) + 1
    return corpus[start : start + chars]


def _bench_tools(count: int) -> list[Line]:
    """``count`` function definitions with a JSON schema each, as tool-heavy requests send them."""
    return [
        {
            "type": "function",
            "function": {
                "name": f"tool_{k}_lookup",
                "description": f"Look up record kind {k} by its id and return its status, owner and history.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "record_id": {"type": "string", "description": "The record's id."},
                        "include_history": {"type": "boolean"},
                        "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                    },
                    "required": ["record_id"],
                },
            },
        }
        for k in range(count)
    ]


@dataclass
class _LargeRecipe(Recipe):
    n: int
    content_bytes: int
    seed: int
    shape: Shape = field(default_factory=lambda: SHAPES["ascii"])
    batch_id: str = "batch_bench000000000000000000"
    created_at: int = 1_790_000_000
    completed_at: int = 1_790_000_000 + 7200
    system: str = ""

    def __post_init__(self) -> None:
        # One system prompt for every request, as a batch built from one template has.
        self.system = self.text(random.Random(self.seed), self.content_bytes // 4)

    def text(self, rng: random.Random, size: int) -> str:
        return _window(self.seed, rng, size, self.shape.multilingual)

    def custom_id(self, i: int) -> str:
        return f"tâche-{i:06d}" if self.shape.multilingual else f"request-{i:06d}"

    def messages(self, rng: random.Random) -> list[Line]:
        """The conversation: the system prompt, then ``turns`` user messages (earlier ones answered)."""
        shape = self.shape
        messages: list[Line] = [{"role": "system", "content": self.system}]
        turn_bytes = (self.content_bytes - self.content_bytes // 4) // (2 * shape.turns - 1)
        for _ in range(shape.turns - 1):
            messages.append({"role": "user", "content": self.text(rng, turn_bytes)})
            messages.append({"role": "assistant", "content": self.text(rng, turn_bytes)})
        if shape.tools:
            call = {"id": "call_lookup_0", "type": "function",
                    "function": {"name": "tool_0_lookup", "arguments": '{"record_id":"R-1029"}'}}  # fmt: skip
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
            messages.append({"role": "tool", "tool_call_id": "call_lookup_0", "content": self.text(rng, 200)})
        messages.append({"role": "user", "content": self.text(rng, turn_bytes)})
        return messages

    def body(self, rng: random.Random) -> Line:
        body: Line = {"model": LARGE_MODEL, "messages": self.messages(rng), "max_tokens": 400, "temperature": 0.2}
        if self.shape.tools:
            body["tools"] = _bench_tools(self.shape.tools)
            body["tool_choice"] = "auto"
        return body

    def reply(self, i: int, rng: random.Random) -> tuple[Line, str]:
        if self.shape.tools and rng.random() < 0.5:
            arguments = json.dumps({"record_id": f"R-{i}", "include_history": True, "note": self.text(rng, 80)})
            call = {"id": f"call_{i:024x}", "type": "function",
                    "function": {"name": f"tool_{i % self.shape.tools}_lookup", "arguments": arguments}}  # fmt: skip
            return {"role": "assistant", "content": None, "tool_calls": [call], "refusal": None}, "tool_calls"
        return {"role": "assistant", "content": self.text(rng, self.shape.completion_bytes), "refusal": None}, "stop"

    def failure(self, i: int, fortune: float, custom_id: str, fate: Fate, body: Line) -> Entry:
        """A request that failed: expired, or (``http_errors``) half of them an HTTP error."""
        line_id = f"batch_req_{i:024x}"
        if self.shape.http_errors and fortune < self.shape.no_result_share + self.shape.error_share / 2:
            status, error = _HTTP_ERRORS[i % 3]
            result = http_error_line(custom_id, line_id, f"req_{i:032x}", status, dict(error))
            fate = replace(fate, kind=HTTP_ERROR, error_type=error_type_of(error), status_code=status)
            return Entry(custom_id, fate, request_line(custom_id, body), result)
        fate = replace(fate, kind=EXPIRED, error_type="batch_expired")
        return Entry(custom_id, fate, request_line(custom_id, body), expired_line(custom_id, line_id))

    def entry(self, i: int) -> Entry:
        rng, custom_id, shape = _rng("large", self.seed, i), self.custom_id(i), self.shape
        body = self.body(rng)
        fate = Fate(kind=OK, model=LARGE_MODEL)
        fortune = rng.random()
        if fortune < shape.no_result_share:
            return Entry(
                custom_id, replace(fate, kind=NO_RESULT, error_type="no_result"), request_line(custom_id, body)
            )
        if fortune < shape.no_result_share + shape.error_share:
            return self.failure(i, fortune, custom_id, fate, body)
        prompt = self.content_bytes // 4
        message, finish = self.reply(i, rng)
        completion = completion_body(
            f"chatcmpl-{i:020x}", self.created_at + i // 10, "gpt-4o-mini-2024-07-18", message, finish,
            usage(prompt, 150), system_fingerprint="fp_bench",
        )  # fmt: skip
        fate = replace(fate, has_usage=True, input_tokens=prompt, output_tokens=150,
                       finish_reason={"tool_calls": "tool_call"}.get(finish, finish))  # fmt: skip
        result = success_line(custom_id, f"batch_req_{i:024x}", f"req_{i:032x}", completion)
        return Entry(custom_id, fate, request_line(custom_id, body), result)

    def encode(self, role: str, i: int, line: Line) -> bytes:
        """``escaped_share`` of the input lines as ``json.dumps`` writes by default; the rest compact UTF-8."""
        if role == "input" and _rng("large-escape", self.seed, i).random() < self.shape.escaped_share:
            return json.dumps(line).encode()
        return _dumps(line)


def large_batch(
    directory: Path, requests: int, content_bytes: int = 3000, seed: int = 1, shape: Shape | str = "ascii"
) -> BatchFiles:
    """Stream the benchmark's batch to ``directory``: ``requests`` requests of ~``content_bytes`` of prompt each.

    ``shape`` (a :class:`Shape` or a name in :data:`SHAPES`) decides the text, the line encoding,
    the conversation's length, the tools, the size of the completions and the share of errors.
    """
    chosen = SHAPES[shape] if isinstance(shape, str) else shape
    return stream(_LargeRecipe(n=requests, content_bytes=content_bytes, seed=seed, shape=chosen), directory)
