"""A realistic large batch for the benchmark: OpenAI Batch input, output and error files.

Each request carries about ``content_bytes`` of prompt text (a system prompt and a user
message drawn from a fixed vocabulary), the output is shuffled like OpenAI's, and a small
share of requests fail, expire or get no result, so every code path is on the clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import orjson

_WORDS = [
    "invoice",
    "customer",
    "refund",
    "shipment",
    "delayed",
    "warehouse",
    "account",
    "billing",
    "subscription",
    "renewal",
    "discount",
    "priority",
    "escalation",
    "ticket",
    "resolved",
    "pending",
    "analysis",
    "summary",
    "contract",
    "clause",
    "liability",
    "payment",
    "overdue",
    "reminder",
    "schedule",
    "meeting",
    "quarterly",
    "revenue",
    "forecast",
    "churn",
    "onboarding",
    "feedback",
    "feature",
    "request",
    "latency",
    "outage",
    "incident",
    "postmortem",
    "deployment",
    "rollback",
    "migration",
    "database",
    "index",
    "query",
    "timeout",
    "region",
    "replica",
    "backup",
    "restore",
    "encryption",
    "compliance",
]
MODEL = "gpt-4o-mini"
BATCH_ID = "batch_bench000000000000000000"


@dataclass(frozen=True)
class GeneratedBatch:
    directory: Path
    requests: int
    results: int
    input_bytes: int

    @property
    def input(self) -> Path:
        return self.directory / "input.jsonl"

    @property
    def output(self) -> Path:
        return self.directory / "output.jsonl"

    @property
    def errors(self) -> Path:
        return self.directory / "errors.jsonl"


def _text(rng: random.Random, size: int) -> str:
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)


def write_batch(directory: Path, requests: int, content_bytes: int = 3000, seed: int = 1) -> GeneratedBatch:
    """Write input.jsonl, output.jsonl (shuffled) and errors.jsonl for ``requests`` requests."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    created = 1_790_000_000
    system = _text(rng, content_bytes // 4)
    outputs: list[bytes] = []
    errors: list[bytes] = []
    with (directory / "input.jsonl").open("wb") as fh:
        for i in range(requests):
            custom_id = f"request-{i:06d}"
            body = {
                "model": MODEL,
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": _text(rng, content_bytes - len(system))},
                ],
                "max_tokens": 400,
                "temperature": 0.2,
            }
            line = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}
            fh.write(orjson.dumps(line) + b"\n")
            fate = rng.random()
            if fate < 0.01:
                continue  # no result at all
            if fate < 0.03:
                errors.append(
                    orjson.dumps(
                        {
                            "id": f"batch_req_{i:024x}",
                            "custom_id": custom_id,
                            "response": None,
                            "error": {"code": "batch_expired", "message": "This request could not be executed"},
                        }
                    )
                )
                continue
            prompt_tokens = content_bytes // 4
            completion = _text(rng, 600)
            outputs.append(
                orjson.dumps(
                    {
                        "id": f"batch_req_{i:024x}",
                        "custom_id": custom_id,
                        "response": {
                            "status_code": 200,
                            "request_id": f"req_{i:032x}",
                            "body": {
                                "id": f"chatcmpl-{i:020x}",
                                "object": "chat.completion",
                                "created": created + i // 10,
                                "model": "gpt-4o-mini-2024-07-18",
                                "choices": [
                                    {
                                        "index": 0,
                                        "message": {"role": "assistant", "content": completion, "refusal": None},
                                        "finish_reason": "stop",
                                    }
                                ],
                                "usage": {
                                    "prompt_tokens": prompt_tokens,
                                    "completion_tokens": 150,
                                    "total_tokens": prompt_tokens + 150,
                                    "prompt_tokens_details": {"cached_tokens": 0},
                                    "completion_tokens_details": {"reasoning_tokens": 0},
                                },
                                "system_fingerprint": "fp_bench",
                            },
                        },
                        "error": None,
                    }
                )
            )
    rng.shuffle(outputs)
    (directory / "output.jsonl").write_bytes(b"\n".join(outputs) + b"\n")
    (directory / "errors.jsonl").write_bytes(b"\n".join(errors) + (b"\n" if errors else b""))
    return GeneratedBatch(directory, requests, len(outputs) + len(errors), (directory / "input.jsonl").stat().st_size)
