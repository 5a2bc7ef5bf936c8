"""The OpenAI-compatible hosts' fixture batches through ``batchtrace replay``, as a user runs it.

Each host's files (``tests/fixtures/formats/<host>/``) are replayed by the real CLI in a
subprocess, exporting to the suite's OTLP receiver. What a user would check in their backend is
checked on the spans that arrived: one per request plus ``batch_results``, the provider's name,
``{operation} {model}`` span names, the tokens of each line, the messages' text, ERROR status
with ``error.type`` on the failed ones, and the provider's own id in ``batchtrace.custom_id``;
and on the summary printed on stdout: counts and token totals equal to the sums over the lines.
Azure is also replayed without ``--provider``: its input looks like OpenAI's and its first
result's content-filter fields refine the format to Azure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.functional.assertions import CUSTOM_ID, delivered
from tests.support.cli import assert_exit, replay, run_batchtrace
from tests.support.fixtures import FORMATS, by_id, lines
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.timeout(60)


@dataclass(frozen=True)
class Host:
    """A host's fixture batch and what replaying it must show."""

    name: str
    provider: str
    model: str | None = None  # the job's model, for hosts whose lines do not name it

    @property
    def folder(self) -> Path:
        return FORMATS / self.name

    def files(self) -> list[str]:
        args = ["--requests", str(self.folder / "requests.jsonl"), "--results", str(self.folder / "results.jsonl")]
        return [*args, "--errors", str(self.folder / "errors.jsonl")]

    def options(self) -> list[str]:
        return ["--provider", self.name, *(["--model", self.model] if self.model else [])]


HOSTS = [
    Host("azure", "azure.ai.openai"),
    Host("mistral", "mistral_ai", model="mistral-small-latest"),
    Host("groq", "groq"),
    Host("together", "together_ai"),
    Host("fireworks", "fireworks_ai", model="accounts/fireworks/models/llama-v3p1-8b-instruct"),
]
AZURE, MISTRAL, GROQ = HOSTS[0], HOSTS[1], HOSTS[2]


@dataclass(frozen=True)
class Expected:
    """What the fixture lines themselves say, computed without the product's code."""

    requests: dict[str, dict[str, Any]]  # custom_id -> request body
    failed: set[str]  # the error file's ids
    tokens: dict[str, tuple[int, int]]  # custom_id -> (prompt_tokens, completion_tokens)
    expired: int

    @classmethod
    def of(cls, host: Host) -> Expected:
        requests = {line["custom_id"]: line["body"] for line in lines(host.folder / "requests.jsonl")}
        errors = lines(host.folder / "errors.jsonl")
        tokens: dict[str, tuple[int, int]] = {}
        for line in lines(host.folder / "results.jsonl"):
            body = line["response"]["body"] if "response" in line else line
            usage = body["usage"]
            tokens[line["custom_id"]] = (usage["prompt_tokens"], usage["completion_tokens"])
        expired = sum(1 for e in errors if (e.get("error") or {}).get("code") == "batch_expired")
        return cls(requests, {e["custom_id"] for e in errors}, tokens, expired)


def texts_of(span: ReceivedSpan, key: str) -> list[str]:
    raw = span.attributes.get(key)
    if raw is None:
        return []
    return [part["content"] for m in json.loads(raw) for part in m["parts"] if part["type"] == "text"]


def assert_summary_matches_lines(summary: dict[str, Any], expected: Expected, provider: str) -> None:
    assert summary["requests"] == len(expected.requests)
    assert summary["results"] == len(expected.requests)
    assert summary["errors"] == len(expected.failed)
    assert summary["expired"] == expected.expired
    assert summary["no_result"] == summary["orphan_results"] == summary["duplicate_ids"] == 0
    assert summary["malformed_lines"] == 0
    assert summary["input_tokens"] == sum(t[0] for t in expected.tokens.values())
    assert summary["output_tokens"] == sum(t[1] for t in expected.tokens.values())
    assert summary["spans_built"] == summary["spans_exported"] == len(expected.requests) + 1
    assert summary["spans_failed"] == 0
    assert summary.get("provider", provider) == provider


def assert_spans_match_lines(spans: list[ReceivedSpan], expected: Expected, host: Host, provider: str) -> None:
    assert len(spans) == len(expected.requests) + 1
    assert [s.name for s in spans if CUSTOM_ID not in s.attributes] == ["batch_results"]
    completions = by_id(spans)
    assert set(completions) == set(expected.requests)
    for custom_id, span in completions.items():
        attrs = span.attributes
        assert attrs["gen_ai.provider.name"] == provider
        model = expected.requests[custom_id].get("model") or host.model
        assert model and attrs["gen_ai.request.model"] == model
        assert span.name == f"chat {model}"
        assert span.kind == "CLIENT"
        if custom_id in expected.failed:
            assert span.status_code == "ERROR", custom_id
            assert attrs["error.type"], custom_id
            assert "gen_ai.usage.input_tokens" not in attrs
        else:
            assert span.status_code != "ERROR", custom_id
            assert "error.type" not in attrs
            prompt, completion = expected.tokens[custom_id]
            assert attrs["gen_ai.usage.input_tokens"] == prompt
            assert attrs["gen_ai.usage.output_tokens"] == completion
        sent = [m["content"] for m in expected.requests[custom_id]["messages"] if m["role"] != "system"]
        if isinstance(sent[0], str) and sent[0]:
            assert sent[0] in texts_of(span, "gen_ai.input.messages")


# ------------------------------------------------------------------------------- each host, named


@pytest.mark.parametrize("host", HOSTS, ids=[h.name for h in HOSTS])
def test_replay_with_provider(receiver: OtlpReceiver, host: Host) -> None:
    expected = Expected.of(host)
    _, summary = replay(*host.files(), *host.options())
    assert_summary_matches_lines(summary, expected, host.provider)
    spans = delivered(receiver, len(expected.requests) + 1)
    assert_spans_match_lines(spans, expected, host, host.provider)


def test_azure_is_detected_from_its_results_and_shows_the_content_filter(receiver: OtlpReceiver) -> None:
    expected = Expected.of(AZURE)
    _, summary = replay(*AZURE.files())
    assert_summary_matches_lines(summary, expected, "azure.ai.openai")
    spans = by_id(delivered(receiver, len(expected.requests) + 1))
    assert_spans_match_lines([*spans.values(), _batch_span(receiver)], expected, AZURE, "azure.ai.openai")
    filtered_output = spans["task-4"].attributes
    assert filtered_output["gen_ai.response.finish_reasons"] == ["content_filter"]
    assert filtered_output["azure.content_filter.completion.filtered"] == ["violence"]
    assert "violence:high" in filtered_output["azure.content_filter.completion.severities"]
    assert spans["task-4"].status_code != "ERROR"
    refused_prompt = spans["task-5"]
    assert refused_prompt.status_code == "ERROR"
    assert refused_prompt.attributes["error.type"] == "content_filter"
    assert refused_prompt.attributes["azure.content_filter.prompt.filtered"] == ["jailbreak"]
    assert spans["task-6"].attributes["error.type"] == "invalid_value"
    assert texts_of(spans["task-1"], "gen_ai.output.messages") == [
        "東海道新幹線「のぞみ」で、東京から新大阪まで約2時間30分（150分）です。"  # noqa: RUF001
    ]
    assert spans["task-0"].attributes["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"


def _batch_span(receiver: OtlpReceiver) -> ReceivedSpan:
    return next(s for s in receiver.spans if CUSTOM_ID not in s.attributes)


def test_provider_overrides_azure_detection(receiver: OtlpReceiver) -> None:
    expected = Expected.of(AZURE)
    _, summary = replay(*AZURE.files(), "--provider", "openai")
    assert_summary_matches_lines(summary, expected, "openai")
    spans = delivered(receiver, len(expected.requests) + 1)
    assert_spans_match_lines(spans, expected, AZURE, "openai")


def test_groq_lines_detect_as_openai_and_provider_makes_them_groq(receiver: OtlpReceiver) -> None:
    """Groq's files are OpenAI's shape: detection says OpenAI; ``--provider groq`` adds Groq's facts."""
    expected = Expected.of(GROQ)
    replay(*GROQ.files())
    detected = by_id(delivered(receiver, len(expected.requests) + 1))
    assert {s.attributes["gen_ai.provider.name"] for s in detected.values()} == {"openai"}
    receiver.reset()
    replay(*GROQ.files(), "--provider", "groq")
    named = by_id(delivered(receiver, len(expected.requests) + 1))
    first = named["request-1"].attributes
    assert first["gen_ai.provider.name"] == "groq"
    assert first["groq.usage.queue_time"] == pytest.approx(1.008715442)
    assert first["groq.usage.total_time"] == pytest.approx(0.021901563)
    assert first["groq.x_groq.id"] == "req_01txhqziskdyl7ikbyqy1yt8n4q4"
    calls = [p for m in json.loads(named["request-4"].attributes["gen_ai.output.messages"]) for p in m["parts"]]
    assert calls[-1]["type"] == "tool_call"
    assert calls[-1]["arguments"] == {"base": "EUR", "quote": "RUB"}
    assert named["request-7"].attributes["error.type"] == "batch_expired"


def test_mistral_errors_and_text_through_the_cli(receiver: OtlpReceiver) -> None:
    expected = Expected.of(MISTRAL)
    replay(*MISTRAL.files(), *MISTRAL.options())
    spans = by_id(delivered(receiver, len(expected.requests) + 1))
    assert spans["4"].attributes["error.type"] == "invalid_request_message_order"
    assert spans["5"].attributes["error.type"] == "invalid_request_error"
    assert "presence_penalty" in spans["5"].status_message
    assert "{" not in spans["5"].status_message  # an object message became text
    assert texts_of(spans["1"], "gen_ai.output.messages")[0].startswith("寿司には")


@pytest.mark.parametrize("host", [MISTRAL, HOSTS[4]], ids=["mistral", "fireworks"])
def test_hosts_without_url_need_the_provider_named(receiver: OtlpReceiver, host: Host) -> None:
    result = run_batchtrace("replay", *host.files())
    assert_exit(result, 2)
    assert "--provider" in result.stderr
    assert receiver.span_count == 0


# ------------------------------------------------------------------------------- malformed lines

FOREIGN = {"custom_id": "zz-anthropic", "result": {"type": "succeeded", "message": {"content": []}}}


@pytest.mark.parametrize("host", HOSTS, ids=[h.name for h in HOSTS])
def test_malformed_and_foreign_lines_are_counted_not_fatal(receiver: OtlpReceiver, host: Host, tmp_path: Path) -> None:
    results = (host.folder / "results.jsonl").read_text(encoding="utf-8").splitlines()
    bad = [results[0], '{"custom_id": "broken", "response": ', json.dumps(FOREIGN), *results[1:]]
    (tmp_path / "results.jsonl").write_text("\n".join(bad) + "\n", encoding="utf-8")
    args: list[str | Path] = [
        "--requests", host.folder / "requests.jsonl",
        "--results", tmp_path / "results.jsonl",
        "--errors", host.folder / "errors.jsonl",
    ]  # fmt: skip
    options = [] if host is AZURE else host.options()
    _, summary = replay(*args, *options)
    expected = Expected.of(host)
    assert summary["malformed_lines"] == 2
    assert summary["requests"] == summary["results"] == len(expected.requests)
    assert summary["orphan_results"] == 0
    spans = by_id(delivered(receiver, len(expected.requests) + 1))
    assert {s.attributes["gen_ai.provider.name"] for s in spans.values()} == {host.provider}
