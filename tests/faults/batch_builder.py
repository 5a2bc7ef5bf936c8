"""A small, deterministic OpenAI batch for the fault tests, with every line's fate known.

``make_batch(n)`` gives ``n`` chat-completion requests (``req-0000``...) whose results are, by
index: an HTTP 400 in the error file (``i % 11 == 3``), ``batch_expired`` in the error file
(``i % 11 == 7``), no result at all (``i % 13 == 5``), else a 200 in the (shuffled) output file.
Every request, whatever its fate, must become exactly one completion span; with the
``batch_results`` span that is ``len(custom_ids) + 1`` spans for a batch in a stored trace.

:meth:`FaultBatch.with_hostile_lines` splices hostile lines (broken JSON, arrays, nulls, blank
lines, a line of several MB, invalid UTF-8, wrong-shaped objects) into each file and records
their 1-based line numbers, so tests can check they were counted and logged one by one.
Hostile lines carry :data:`CANARY` so a test can prove their content never reaches a log.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

CANARY = "CANARY-7f3a-do-not-log"
MODEL = "gpt-4o-mini"
CREATED_AT = 1_767_225_600  # 2026-01-01T00:00:00Z
#: Size of the "several MB" hostile lines.
HUGE_LINE_BYTES = 3 * 1024 * 1024


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def request_line(custom_id: str, i: int, *, pad: int = 0) -> bytes:
    body = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You answer in one word."},
            {"role": "user", "content": f"Question {i}: what is {i} + {i}?" + (" filler" * pad)},
        ],
        "max_tokens": 16,
        "temperature": 0,
    }
    return _dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body})


def ok_line(custom_id: str, i: int) -> bytes:
    return _dumps(
        {
            "id": f"batch_req_{i:06d}",
            "custom_id": custom_id,
            "response": {
                "status_code": 200,
                "request_id": f"req_{i:06d}",
                "body": {
                    "id": f"chatcmpl-{i:06d}",
                    "object": "chat.completion",
                    "created": CREATED_AT + 60 + i,
                    "model": f"{MODEL}-2024-07-18",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": str(2 * i), "refusal": None},
                            "logprobs": None,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 20 + i % 7, "completion_tokens": 2, "total_tokens": 22 + i % 7},
                    "system_fingerprint": None,
                },
            },
            "error": None,
        }
    )


def http_error_line(custom_id: str, i: int) -> bytes:
    return _dumps(
        {
            "id": f"batch_req_{i:06d}",
            "custom_id": custom_id,
            "response": {
                "status_code": 400,
                "request_id": f"req_{i:06d}",
                "body": {
                    "error": {
                        "message": "Invalid value for 'temperature'.",
                        "type": "invalid_request_error",
                        "param": "temperature",
                        "code": "invalid_value",
                    }
                },
            },
            "error": None,
        }
    )


def expired_line(custom_id: str, i: int) -> bytes:
    return _dumps(
        {
            "id": f"batch_req_{i:06d}",
            "custom_id": custom_id,
            "response": None,
            "error": {
                "code": "batch_expired",
                "message": "This request could not be executed before the completion window expired.",
            },
        }
    )


@dataclass(frozen=True)
class FaultBatch:
    """The three files of one batch as lists of raw lines, plus what is expected of them."""

    batch_id: str
    input_lines: tuple[bytes, ...]
    output_lines: tuple[bytes, ...]
    error_lines: tuple[bytes, ...]
    #: Every custom_id that must become exactly one completion span.
    custom_ids: frozenset[str]
    ok: int
    http_errors: int
    expired: int
    no_result: int
    #: 1-based numbers of the hostile lines in each file ("input", "output", "errors").
    bad_lines: dict[str, tuple[int, ...]] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return len(self.custom_ids)

    @property
    def results(self) -> int:
        return self.ok + self.http_errors + self.expired

    def batch_object(self) -> dict[str, Any]:
        """OpenAI's batch object, as trace.json stores it."""
        return {
            "id": self.batch_id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "status": "completed",
            "created_at": CREATED_AT,
            "completed_at": CREATED_AT + 3600,
        }

    def trace_doc(self, trace_id: Any = None, span_id: Any = None, **extra: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {"batch": self.batch_object(), **extra}
        if trace_id is not None:
            doc["trace_id"] = trace_id
        if span_id is not None:
            doc["span_id"] = span_id
        return doc

    @staticmethod
    def _join(lines: tuple[bytes, ...]) -> bytes:
        return b"".join(line + b"\n" for line in lines)

    def input_bytes(self) -> bytes:
        return self._join(self.input_lines)

    def output_bytes(self) -> bytes:
        return self._join(self.output_lines)

    def errors_bytes(self) -> bytes:
        return self._join(self.error_lines)

    def write(self, folder: Path) -> dict[str, Path]:
        """Write the three files into ``folder``; returns their paths by role."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"input": folder / "input.jsonl", "output": folder / "output.jsonl", "errors": folder / "errors.jsonl"}
        paths["input"].write_bytes(self.input_bytes())
        paths["output"].write_bytes(self.output_bytes())
        paths["errors"].write_bytes(self.errors_bytes())
        return paths

    def upload(
        self,
        s3: Any,
        bucket: str,
        folder: str,
        *,
        trace_doc: dict[str, Any] | None = None,
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

    def with_hostile_lines(self) -> FaultBatch:
        """This batch with every hostile line kind spliced into each of its three files."""
        input_lines, input_bad = _splice(self.input_lines, hostile_lines("input"))
        output_lines, output_bad = _splice(self.output_lines, hostile_lines("output"))
        error_lines, error_bad = _splice(self.error_lines, hostile_lines("errors"))
        return replace(
            self,
            input_lines=input_lines,
            output_lines=output_lines,
            error_lines=error_lines,
            bad_lines={"input": input_bad, "output": output_bad, "errors": error_bad},
        )


def make_batch(n: int, *, batch_id: str = "batch_faults_0001", pad: int = 0, seed: int = 7) -> FaultBatch:
    """``n`` requests with mixed fates (see the module docstring); ``pad`` fattens every prompt."""
    input_lines: list[bytes] = []
    output_lines: list[bytes] = []
    error_lines: list[bytes] = []
    ok = http_errors = expired = no_result = 0
    for i in range(n):
        custom_id = f"req-{i:04d}"
        input_lines.append(request_line(custom_id, i, pad=pad))
        if i % 11 == 3:
            error_lines.append(http_error_line(custom_id, i))
            http_errors += 1
        elif i % 11 == 7:
            error_lines.append(expired_line(custom_id, i))
            expired += 1
        elif i % 13 == 5:
            no_result += 1
        else:
            output_lines.append(ok_line(custom_id, i))
            ok += 1
    random.Random(seed).shuffle(output_lines)
    return FaultBatch(
        batch_id=batch_id,
        input_lines=tuple(input_lines),
        output_lines=tuple(output_lines),
        error_lines=tuple(error_lines),
        custom_ids=frozenset(f"req-{i:04d}" for i in range(n)),
        ok=ok,
        http_errors=http_errors,
        expired=expired,
        no_result=no_result,
    )


def with_big_request(batch: FaultBatch, index: int, chars: int) -> FaultBatch:
    """``batch`` with request ``index``'s prompt made ``chars`` long (its result unchanged)."""
    lines = list(batch.input_lines)
    obj = json.loads(lines[index])
    obj["body"]["messages"][1]["content"] = "z" * chars
    lines[index] = _dumps(obj)
    return replace(batch, input_lines=tuple(lines))


def hostile_lines(role: str) -> list[bytes]:
    """Every hostile line kind for one file; none is a usable request or result.

    ``role`` is ``input``, ``output`` or ``errors``: the wrong-shaped lines differ per file
    (a request with a null body; a result with a null custom_id or a non-object response).
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
            _dumps({"custom_id": "null-body", "method": "POST", "url": "/v1/chat/completions", "body": None}),
            _dumps({"custom_id": None, "method": "POST", "body": {"model": MODEL, "messages": [CANARY]}}),
            _dumps({"custom_id": 17, "body": {"model": MODEL}}),
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


def _splice(lines: tuple[bytes, ...], bad: list[bytes]) -> tuple[tuple[bytes, ...], tuple[int, ...]]:
    """Spread ``bad`` lines through ``lines`` (first, middle, last...); returns the lines and bad line numbers."""
    tagged: list[tuple[bool, bytes]] = [(False, line) for line in lines]
    slots = len(bad)
    for k, line in enumerate(bad):
        position = 0 if k == 0 else len(tagged) if k == slots - 1 else (k * len(tagged)) // slots
        tagged.insert(position, (True, line))
    numbers = tuple(i + 1 for i, (is_bad, _) in enumerate(tagged) if is_bad)
    return tuple(line for _, line in tagged), numbers
