"""A hostile OpenAI batch the code under test has never seen, with every ``custom_id``'s fate.

:func:`make_hostile_batch` builds, deterministically from a seed, the three files of an OpenAI
Batch API run against ``/v1/chat/completions`` as lists of dicts, plus what should become of each
``custom_id``:

- output lines shuffled (OpenAI returns them in no particular order);
- ~5% HTTP errors (400/429/500, ``response.body.error``) and ~5% ``batch_expired`` lines
  (``response: null``) in the error file;
- ~3% requests with no result anywhere; 2 orphan results (a ``custom_id`` in no request);
- ``custom_id``s with spaces, slashes, ``+``, ``%``, quotes, tabs, backslashes and non-ASCII
  (é, 日本語, emoji), spread over every fate;
- tool-call completions (``finish_reason: tool_calls``, ``message.tool_calls``), ``null`` in
  optional fields (``system_fingerprint``, ``usage`` on one result, ``refusal``, ``logprobs``);
- realistic models, parameters, multi-turn and multi-part messages, ``created`` timestamps
  inside the batch's lifecycle, and one malformed (truncated) line in the output file.

Nothing is written unless :meth:`HostileBatch.write` is called.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = [
    "EXPIRED",
    "HTTP_ERROR",
    "NO_RESULT",
    "OK",
    "ORPHAN",
    "TOOL_CALL",
    "BatchFiles",
    "Fate",
    "HostileBatch",
    "make_hostile_batch",
    "with_oversized_request",
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
_HTTP_ERRORS = (
    (
        400,
        {
            "message": "Invalid value for 'content': expected a string, got null.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": None,
        },
        "invalid_request_error",
    ),
    (
        429,
        {
            "message": "Rate limit reached for gpt-4o-mini in organization org-x on tokens per min (TPM).",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        },
        "rate_limit_exceeded",
    ),
    (
        500,
        {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        },
        "server_error",
    ),
    (
        400,
        {
            "message": "This model's maximum context length is 128000 tokens.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        },
        "context_length_exceeded",
    ),
)


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
class BatchFiles:
    input: Path
    output: Path
    errors: Path


@dataclass
class HostileBatch:
    """The three files' lines, the expected fate of each ``custom_id`` and the batch object."""

    batch_id: str
    created_at: int
    completed_at: int
    input_lines: list[dict[str, Any]]
    output_lines: list[dict[str, Any]]
    error_lines: list[dict[str, Any]]
    fates: dict[str, Fate]
    #: Raw lines that are not JSON objects, written into the middle of the output file.
    malformed_output: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ files

    def input_bytes(self) -> bytes:
        return _jsonl(self.input_lines)

    def output_bytes(self) -> bytes:
        lines = [_dumps(line) for line in self.output_lines]
        middle = len(lines) // 2
        lines[middle:middle] = self.malformed_output
        return ("\n".join(lines) + "\n").encode() if lines else b""

    def errors_bytes(self) -> bytes:
        return _jsonl(self.error_lines)

    def write(self, directory: Path) -> BatchFiles:
        """Write ``input.jsonl``, ``output.jsonl`` and ``errors.jsonl`` (UTF-8, as OpenAI does)."""
        directory.mkdir(parents=True, exist_ok=True)
        files = BatchFiles(directory / "input.jsonl", directory / "output.jsonl", directory / "errors.jsonl")
        files.input.write_bytes(self.input_bytes())
        files.output.write_bytes(self.output_bytes())
        files.errors.write_bytes(self.errors_bytes())
        return files

    def library_results(self) -> list[Any]:
        """What a library caller passes as ``results``: output and error lines (and the malformed one)."""
        return [*self.output_lines, *self.malformed_output, *self.error_lines]

    # ------------------------------------------------------------------ metadata

    def batch_object(self) -> dict[str, Any]:
        """OpenAI's batch object for this run (``trace.json``'s ``batch``)."""
        failed = sum(1 for f in self.fates.values() if f.kind in (HTTP_ERROR, EXPIRED))
        return {
            "id": self.batch_id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "errors": None,
            "input_file_id": "file-HostileInput0001",
            "completion_window": "24h",
            "status": "completed",
            "output_file_id": "file-HostileOutput001",
            "error_file_id": "file-HostileErrors001",
            "created_at": self.created_at,
            "in_progress_at": self.created_at + 21,
            "expires_at": self.created_at + 86_400,
            "finalizing_at": self.completed_at - 70,
            "completed_at": self.completed_at,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": len(self.input_lines), "completed": len(self.output_lines), "failed": failed},
            "metadata": {"job": "hostile ✓", "owner": "tests/functional"},
        }

    def trace_doc(self, trace_id: str, span_id: str | None = None) -> dict[str, Any]:
        """A ``trace.json`` as written when the batch was submitted."""
        doc: dict[str, Any] = {"trace_id": trace_id, "batch": self.batch_object()}
        if span_id:
            doc["span_id"] = span_id
        return doc

    # ------------------------------------------------------------------ expectations

    def count(self, *kinds: str) -> int:
        return sum(1 for f in self.fates.values() if f.kind in kinds)

    def expected_counts(self) -> dict[str, int]:
        """The summary's counts this batch must produce (spans not included: they depend on the mode)."""
        return {
            "requests": len(self.input_lines),
            "results": len(self.output_lines) + len(self.error_lines),
            "errors": self.count(HTTP_ERROR, EXPIRED),
            "expired": self.count(EXPIRED),
            "no_result": self.count(NO_RESULT),
            "orphan_results": self.count(ORPHAN),
            "duplicate_ids": 0,
            "malformed_lines": len(self.malformed_output),
            "input_tokens": sum(f.input_tokens or 0 for f in self.fates.values()),
            "output_tokens": sum(f.output_tokens or 0 for f in self.fates.values()),
        }


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(_dumps(line) + "\n" for line in lines).encode()


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
        candidates = [i for i, kind in enumerate(kinds) if kind == wanted and i not in taken]
        index = rng.choice(candidates)
        taken.add(index)
        ids[index] = special
    return ids


def _hex(rng: random.Random, bits: int = 128) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def _chat_id(rng: random.Random) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "chatcmpl-" + "".join(rng.choice(alphabet) for _ in range(29))


def _request(custom_id: str, kind: str, rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    """An input line and the facts about it a span must show."""
    model = rng.choice(list(_MODELS))
    system = rng.choice(_SYSTEM_PROMPTS)
    user_text = rng.choice(_USER_TEXTS)
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    if rng.random() < 0.25:  # a multi-turn thread
        messages.append({"role": "user", "content": "Hello 👋"})
        messages.append({"role": "assistant", "content": "Hi! How can I help?", "refusal": None})
    if rng.random() < 0.3:  # content as typed parts
        messages.append({"role": "user", "content": [{"type": "text", "text": user_text}]})
    else:
        messages.append({"role": "user", "content": user_text})
    body: dict[str, Any] = {"model": model, "messages": messages}
    params: dict[str, Any] = {}
    if rng.random() < 0.5:
        body["max_tokens"] = rng.choice((16, 64, 256))
        params["gen_ai.request.max_tokens"] = body["max_tokens"]
    else:
        body["max_completion_tokens"] = rng.choice((32, 200, 1024))
        params["gen_ai.request.max_tokens"] = body["max_completion_tokens"]
    if rng.random() < 0.8:
        body["temperature"] = rng.choice((0, 0.2, 0.7, 1.0))
        params["gen_ai.request.temperature"] = body["temperature"]
    if rng.random() < 0.5:
        body["top_p"] = rng.choice((1, 0.9, 0.5))
        params["gen_ai.request.top_p"] = body["top_p"]
    if rng.random() < 0.3:
        body["seed"] = rng.randint(1, 2**31)
        params["gen_ai.request.seed"] = body["seed"]
    if rng.random() < 0.2:
        body["stop"] = ["\n\n", "END"]
        params["gen_ai.request.stop_sequences"] = ["\n\n", "END"]
    if rng.random() < 0.15:
        body["response_format"] = {"type": "json_object"}
    if rng.random() < 0.2:
        body["service_tier"] = rng.choice(("default", "flex"))
        params["openai.request.service_tier"] = body["service_tier"]
    if rng.random() < 0.1:
        body["presence_penalty"] = 0.5
        params["gen_ai.request.presence_penalty"] = 0.5
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
    line = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}
    facts = {"model": model, "user_text": user_text, "system_text": system, "params": params}
    return line, facts


def _usage(rng: random.Random) -> dict[str, Any]:
    prompt, completion = rng.randint(20, 2400), rng.randint(1, 400)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": rng.choice((0, 1024)) if prompt > 1024 else 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _success(
    custom_id: str,
    model: str,
    kind: str,
    created: int,
    rng: random.Random,
    *,
    null_usage: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An output line for a successful completion, and its facts."""
    response_model = _MODELS.get(model, model)
    fingerprint = None if rng.random() < 0.25 else f"fp_{_hex(rng, 40)}"
    message: dict[str, Any] = {"role": "assistant", "refusal": None, "annotations": []}
    facts: dict[str, Any] = {}
    if kind == TOOL_CALL:
        name = rng.choice(list(_TOOLS))
        message["content"] = None
        message["tool_calls"] = [
            {
                "id": f"call_{_hex(rng, 96)}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(_TOOLS[name], ensure_ascii=False)},
            }
        ]
        finish = "tool_calls"
        facts.update(tool_name=name, tool_arguments=_TOOLS[name], output_text=None)
    else:
        answer = rng.choice(_ANSWERS)
        message["content"] = answer
        finish = "length" if rng.random() < 0.1 else "stop"
        facts.update(output_text=answer)
    usage = None if null_usage else _usage(rng)
    body = {
        "id": _chat_id(rng),
        "object": "chat.completion",
        "created": created,
        "model": response_model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": fingerprint,
    }
    line: dict[str, Any] = {
        "id": f"batch_req_{_hex(rng)}",
        "custom_id": custom_id,
        "response": {"status_code": 200, "request_id": _hex(rng), "body": body},
        "error": None,
    }
    facts.update(
        # The span carries the semantic conventions' finish reason, not OpenAI's spelling.
        finish_reason={"tool_calls": "tool_call"}.get(finish, finish),
        has_usage=usage is not None,
        input_tokens=usage["prompt_tokens"] if usage else None,
        output_tokens=usage["completion_tokens"] if usage else None,
        cached_tokens=usage["prompt_tokens_details"]["cached_tokens"] if usage else None,
        response_model=response_model,
        response_id=body["id"],
        line_id=line["id"],
        request_id=line["response"]["request_id"],
        system_fingerprint=fingerprint,
        created=created,
    )
    return line, facts


def make_hostile_batch(n: int = 200, seed: int = 7) -> HostileBatch:
    """A hostile batch of ``n`` requests, the same for the same ``(n, seed)``; writes nothing."""
    rng = random.Random(seed)
    batch_id = f"batch_hostile{seed:04d}{_hex(rng, 64)}"
    created_at = 1_772_900_000 + rng.randint(0, 86_400)  # early March 2026, a few months back
    completed_at = created_at + 4 * 3600 + rng.randint(0, 3600)
    kinds = _fate_kinds(n, rng)
    ids = _custom_ids(kinds, rng)

    input_lines: list[dict[str, Any]] = []
    output_lines: list[dict[str, Any]] = []
    error_lines: list[dict[str, Any]] = []
    fates: dict[str, Fate] = {}
    null_usage_done = False
    http_errors = 0

    for custom_id, kind in zip(ids, kinds, strict=True):
        request, req_facts = _request(custom_id, kind, rng)
        input_lines.append(request)
        model = req_facts["model"]
        common = {
            "model": model,
            "user_text": req_facts["user_text"],
            "system_text": req_facts["system_text"],
            "params": req_facts["params"],
        }
        if kind in (OK, TOOL_CALL):
            created = rng.randint(created_at + 60, completed_at - 120)
            null_usage = kind == OK and not null_usage_done
            null_usage_done = null_usage_done or null_usage
            line, facts = _success(custom_id, model, kind, created, rng, null_usage=null_usage)
            output_lines.append(line)
            fates[custom_id] = Fate(kind=kind, **common, **facts)
        elif kind == HTTP_ERROR:
            status, error, error_type = _HTTP_ERRORS[http_errors % len(_HTTP_ERRORS)]
            http_errors += 1
            line = {
                "id": f"batch_req_{_hex(rng)}",
                "custom_id": custom_id,
                "response": {"status_code": status, "request_id": _hex(rng), "body": {"error": dict(error)}},
                "error": None,
            }
            error_lines.append(line)
            fates[custom_id] = Fate(
                kind=kind,
                error_type=error_type,
                status_code=status,
                line_id=line["id"],
                request_id=line["response"]["request_id"],
                **common,
            )
        elif kind == EXPIRED:
            line = {
                "id": f"batch_req_{_hex(rng)}",
                "custom_id": custom_id,
                "response": None,
                "error": {
                    "code": "batch_expired",
                    "message": "This request could not be executed before the completion window expired.",
                },
            }
            error_lines.append(line)
            fates[custom_id] = Fate(kind=kind, error_type="batch_expired", line_id=line["id"], **common)
        else:  # NO_RESULT: in neither file
            fates[custom_id] = Fate(kind=kind, error_type="no_result", **common)

    for custom_id in ORPHAN_IDS:
        model = "gpt-4o-mini"
        created = rng.randint(created_at + 60, completed_at - 120)
        line, facts = _success(custom_id, model, OK, created, rng, null_usage=False)
        output_lines.append(line)
        # A result without a request: the span can only be named after the response's model.
        fates[custom_id] = Fate(kind=ORPHAN, model=facts["response_model"], **facts)

    rng.shuffle(output_lines)
    rng.shuffle(error_lines)
    malformed = ['{"id": "batch_req_truncated", "custom_id": "req-trunc", "response": {"status_code": 200, "bo']
    return HostileBatch(
        batch_id=batch_id,
        created_at=created_at,
        completed_at=completed_at,
        input_lines=input_lines,
        output_lines=output_lines,
        error_lines=error_lines,
        fates=fates,
        malformed_output=malformed,
    )


def with_oversized_request(batch: HostileBatch, chars: int = 40_000) -> tuple[HostileBatch, str]:
    """A copy of ``batch`` whose first plain successful request carries a ``chars``-long prompt.

    Its span alone is far larger than the others, so a receiver with a body limit between the two
    sizes accepts every span but that one (after 413s split the chunks): a partial delivery.
    """
    copy = HostileBatch(
        batch_id=batch.batch_id,
        created_at=batch.created_at,
        completed_at=batch.completed_at,
        input_lines=json.loads(json.dumps(batch.input_lines)),
        output_lines=batch.output_lines,
        error_lines=batch.error_lines,
        fates=dict(batch.fates),
        malformed_output=list(batch.malformed_output),
    )
    custom_id = next(cid for cid, fate in batch.fates.items() if fate.kind == OK and cid.startswith("req-"))
    line = next(line for line in copy.input_lines if line["custom_id"] == custom_id)
    huge = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * (chars // 57 + 1))[:chars]
    line["body"]["messages"][-1] = {"role": "user", "content": huge}
    copy.fates[custom_id] = replace(batch.fates[custom_id], user_text=None)
    return copy, custom_id
