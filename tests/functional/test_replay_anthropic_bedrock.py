"""``batchtrace replay`` on Anthropic Message Batches and Amazon Bedrock batch output, as a subprocess.

What a user checks after replaying: one span per request plus ``batch_results``, named
``{operation} {model}``, with ``gen_ai.provider.name``, tokens (input including cache),
messages, ERROR status with ``error.type`` on failures and the provider's id in
``batchtrace.custom_id``; and a summary whose totals are the sums over the lines. Spans go to
the test suite's real OTLP receiver. Fixtures: tests/fixtures/formats/anthropic and bedrock.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.functional.assertions import completion_spans, delivered
from tests.support.cli import replay
from tests.support.fixtures import FORMATS, by_id, lines
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.timeout(60)

ANTHROPIC_REQUESTS = FORMATS / "anthropic" / "requests.jsonl"
ANTHROPIC_RESULTS = FORMATS / "anthropic" / "results.jsonl"
BEDROCK = FORMATS / "bedrock"
CLAUDE_JOB_MODEL = json.loads((BEDROCK / "job.json").read_text(encoding="utf-8"))["modelId"]


def parts(messages_json: Any, kind: str = "text") -> list[Any]:
    """The parts of one kind in a messages attribute (or in system instructions, a list of parts)."""
    assert isinstance(messages_json, str)
    items = json.loads(messages_json)
    every = [p for item in items for p in item.get("parts", [item])]
    found = [p for p in every if p.get("type") == kind]
    return [p["content"] for p in found] if kind in ("text", "reasoning") else found


def assert_batch_span(spans: list[ReceivedSpan], summary: dict[str, Any]) -> None:
    [batch] = [s for s in spans if s.name == "batch_results"]
    assert batch.attributes.get("batchtrace.input_tokens") == summary["input_tokens"]
    assert batch.attributes.get("batchtrace.output_tokens") == summary["output_tokens"]


def assert_failed(span: ReceivedSpan, error_type: str) -> None:
    assert span.status_code == "ERROR", span
    assert span.attributes["error.type"] == error_type


# --------------------------------------------------------------------------- Anthropic


def anthropic_token_sums() -> tuple[int, int]:
    """Input (uncached + cache read + cache write) and output tokens, added up from the result lines."""
    prompt = output = 0
    for line in lines(ANTHROPIC_RESULTS):
        usage = (line["result"].get("message") or {}).get("usage") or {}
        prompt += usage.get("input_tokens", 0) + usage.get("cache_read_input_tokens", 0)
        prompt += usage.get("cache_creation_input_tokens", 0)
        output += usage.get("output_tokens", 0)
    return prompt, output


@pytest.mark.parametrize("provider", [[], ["--provider", "anthropic"]], ids=["detected", "named"])
def test_replay_anthropic_batch(receiver: OtlpReceiver, provider: list[str]) -> None:
    _, summary = replay("--requests", ANTHROPIC_REQUESTS, "--results", ANTHROPIC_RESULTS, *provider)
    results = lines(ANTHROPIC_RESULTS)
    prompt, output = anthropic_token_sums()
    assert summary["provider"] == "anthropic"
    assert (summary["requests"], summary["results"]) == (len(results), len(results))
    assert summary["errors"] == sum(line["result"]["type"] != "succeeded" for line in results) == 4
    assert summary["expired"] == 1
    assert (summary["input_tokens"], summary["output_tokens"]) == (prompt, output) == (4796, 837)
    assert summary["cache_read_tokens"] == 1536
    assert summary["malformed_lines"] == summary["orphan_results"] == summary["no_result"] == 0

    spans = delivered(receiver, len(results) + 1)
    assert_batch_span(spans, summary)
    found = by_id(spans)
    assert set(found) == {line["custom_id"] for line in results}
    requests = {line["custom_id"]: line["params"] for line in lines(ANTHROPIC_REQUESTS)}
    for custom_id, span in found.items():
        assert span.attributes["gen_ai.provider.name"] == "anthropic"
        assert span.name == f"chat {requests[custom_id]['model']}"
        assert span.kind == "CLIENT"

    french = found["fr-resume-01"].attributes
    assert parts(french["gen_ai.input.messages"]) == [requests["fr-resume-01"]["messages"][0]["content"]]
    assert parts(french["gen_ai.system_instructions"]) == ["Tu résumes des avis clients en une phrase."]
    assert parts(french["gen_ai.output.messages"])[0].startswith("Séjour apprécié")
    assert (french["gen_ai.usage.input_tokens"], french["gen_ai.usage.output_tokens"]) == (48, 36)
    assert french["gen_ai.response.finish_reasons"] == ["stop"]
    assert french["gen_ai.response.id"] == "msg_01gh1jEGhDE94eJGsE6bRJxV"
    assert french["anthropic.response.service_tier"] == "batch"

    japanese = found["ja-tool-02"].attributes
    [call] = parts(japanese["gen_ai.output.messages"], "tool_call")
    assert (call["name"], call["arguments"]) == ("get_weather", {"city": "札幌", "unit": "celsius"})
    assert japanese["gen_ai.response.finish_reasons"] == ["tool_call"]

    thinking = found["ru-think-03"].attributes
    assert parts(thinking["gen_ai.output.messages"], "reasoning") == [
        "23:40 + 8 ч = 07:40 следующего дня, + 35 мин = 08:15."
    ]
    assert thinking["gen_ai.usage.reasoning.output_tokens"] == 97

    cached = found["long-thread-04"].attributes
    assert cached["gen_ai.usage.input_tokens"] == 212 + 1536
    assert cached["gen_ai.usage.cache_read.input_tokens"] == 1536
    assert cached["gen_ai.response.finish_reasons"] == ["length"]

    assert_failed(found["bad-09"], "invalid_request_error")
    assert_failed(found["api-err-10"], "api_error")
    assert found["api-err-10"].attributes["batchtrace.request_id"] == "req_011CcBBNugOXPl7uQcWaZCM3"
    assert_failed(found["cancel-11"], "canceled")
    assert_failed(found["expire-12"], "expired")
    assert found["fr-resume-01"].status_code != "ERROR"


def test_anthropic_results_with_a_broken_line_and_other_providers_lines(receiver: OtlpReceiver, tmp_path: Path) -> None:
    results = ANTHROPIC_RESULTS.read_text(encoding="utf-8").splitlines()
    foreign = [
        '{"custom_id": "fr-resume-01", "response": {"status_code": 200, "body": {}}, "error": null}',
        '{"recordId": "CALL0000001", "modelInput": {}, "modelOutput": {}}',
        '{"custom_id": "ja-tool-02", "result": ',
    ]
    mixed = tmp_path / "results.jsonl"
    mixed.write_text("\n".join(results[:3] + foreign + results[3:]) + "\n", encoding="utf-8")
    _, summary = replay("--requests", ANTHROPIC_REQUESTS, "--results", mixed)
    assert summary["provider"] == "anthropic"
    assert summary["malformed_lines"] == 3
    assert summary["results"] == len(results)
    assert len(completion_spans(delivered(receiver, len(results) + 1))) == len(results)


# --------------------------------------------------------------------------- Bedrock


def bedrock_token_sums(path: Path) -> tuple[int, int]:
    """Input and output tokens a user adds up from a .jsonl.out, whatever the model family."""
    prompt = output = 0
    for line in lines(path):
        out = line.get("modelOutput") or {}
        usage = out.get("usage") or {}
        prompt += usage.get("input_tokens", 0) + usage.get("cache_read_input_tokens", 0)  # Claude
        prompt += usage.get("cache_creation_input_tokens", 0)
        prompt += usage.get("inputTokens", 0) + usage.get("cacheReadInputTokenCount", 0)  # Nova
        prompt += usage.get("cacheWriteInputTokenCount", 0)
        prompt += out.get("inputTextTokenCount", 0) + out.get("prompt_token_count", 0)  # Titan, Llama
        output += usage.get("output_tokens", 0) + usage.get("outputTokens", 0) + out.get("generation_token_count", 0)
        output += sum(r.get("tokenCount", 0) for r in out.get("results") or [])
    return prompt, output


#: ``(file, the job's model id, operation of its succeeded lines, a record and a text it shows)``.
BEDROCK_JOBS = [
    ("claude.jsonl.out", CLAUDE_JOB_MODEL, "chat", "CALL0000003", "Перечисли три причины высокого счёта"),
    ("nova.jsonl.out", "amazon.nova-lite-v1:0", "chat", "NOVA0000003", "配達遅延のお詫びメール"),
    ("titan-text.jsonl.out", "amazon.titan-text-express-v1", "text_completion", "TTXT0000002", "Écris une courte"),
    ("titan-embed.jsonl.out", "amazon.titan-embed-text-v2:0", "embeddings", "TEMB0000001", None),
    ("llama.jsonl.out", "meta.llama3-1-70b-instruct-v1:0", "text_completion", "LLMA0000002", "Байкал — зеркало небес"),
    ("mistral.jsonl.out", "mistral.mistral-7b-instruct-v0:2", "text_completion", "MSTR0000002", "Kraków, jedno z"),
]


@pytest.mark.parametrize(
    ("name", "model", "operation", "record_id", "text"), BEDROCK_JOBS, ids=[j[0] for j in BEDROCK_JOBS]
)
def test_replay_bedrock_output_of_each_family(
    receiver: OtlpReceiver, name: str, model: str, operation: str, record_id: str, text: str | None
) -> None:
    path = BEDROCK / name
    records = lines(path)
    _, summary = replay("--results", path, "--model", model)
    prompt, output = bedrock_token_sums(path)
    assert summary["provider"] == "aws.bedrock"
    assert summary["requests"] == summary["results"] == len(records)
    assert summary["errors"] == sum("error" in line for line in records)
    assert (summary["input_tokens"], summary["output_tokens"]) == (prompt, output)
    assert summary["malformed_lines"] == summary["orphan_results"] == 0

    spans = delivered(receiver, len(records) + 1)
    assert_batch_span(spans, summary)
    found = by_id(spans)
    assert set(found) == {line["recordId"] for line in records}
    short_model = model.rsplit("/", 1)[-1]
    for line in records:
        span = found[line["recordId"]]
        assert span.attributes["gen_ai.provider.name"] == "aws.bedrock"
        assert span.attributes["gen_ai.request.model"] == short_model
        if "error" in line:
            assert_failed(span, str(line["error"]["errorCode"]))
            assert span.attributes["http.response.status_code"] == line["error"]["errorCode"]
        else:
            assert span.name == f"{operation} {short_model}"
            assert span.status_code != "ERROR"
    shown = found[record_id].attributes
    if text is None:  # embeddings: no messages are made up
        assert "gen_ai.input.messages" not in shown and "gen_ai.output.messages" not in shown
        assert shown["gen_ai.usage.input_tokens"] == 11
    else:
        both = parts(shown["gen_ai.input.messages"]) + parts(shown["gen_ai.output.messages"])
        assert any(text in t for t in both), both


def test_replay_bedrock_claude_matches_the_jobs_manifest_without_a_model(receiver: OtlpReceiver) -> None:
    path = BEDROCK / "claude.jsonl.out"
    _, summary = replay("--results", path)
    manifest = json.loads((BEDROCK / "manifest.json.out").read_text(encoding="utf-8"))
    assert summary["provider"] == "aws.bedrock"
    assert summary["results"] == manifest["totalRecordCount"]
    assert summary["errors"] == manifest["errorRecordCount"]
    assert (summary["input_tokens"], summary["output_tokens"]) == (
        manifest["inputTokenCount"],
        manifest["outputTokenCount"],
    )
    found = by_id(delivered(receiver, manifest["totalRecordCount"] + 1))
    tool = found["CALL0000002"]
    assert tool.name == "chat claude-3-haiku-20240307"  # the response's model, as no job model was given
    [call] = parts(tool.attributes["gen_ai.output.messages"], "tool_call")
    assert call["arguments"] == {"priority": "normal", "summary": "請求額の誤り：再請求の発行を確認"}  # noqa: RUF001
    assert tool.attributes["gen_ai.response.finish_reasons"] == ["tool_call"]
    assert found["CALL0000006"].name == "chat"  # a failed line names no model at all
    assert_failed(found["CALL0000006"], "500")


def test_replay_bedrock_nova_counts_cache_reads_as_input(receiver: OtlpReceiver) -> None:
    _, summary = replay("--results", BEDROCK / "nova.jsonl.out", "--provider", "aws.bedrock")
    found = by_id(delivered(receiver, summary["results"] + 1))
    cached = found["NOVA0000004"].attributes
    assert cached["gen_ai.usage.input_tokens"] == 183 + 1024
    assert cached["gen_ai.usage.cache_read.input_tokens"] == 1024
    assert parts(cached["gen_ai.system_instructions"]) == ["You answer for Nordwind Outdoor customer care."]
    [call] = parts(found["NOVA0000002"].attributes["gen_ai.output.messages"], "tool_call")
    assert call["arguments"] == {"tracking_no": "00340434161094042557"}
    assert summary["cache_read_tokens"] == 1024


def test_bedrock_output_with_a_broken_line_and_other_providers_lines(receiver: OtlpReceiver, tmp_path: Path) -> None:
    records = (BEDROCK / "llama.jsonl.out").read_text(encoding="utf-8").splitlines()
    foreign = [
        '{"custom_id": "a-1", "result": {"type": "succeeded", "message": {}}}',
        '{"custom_id": "o-1", "response": {"status_code": 200, "body": {}}, "error": null}',
        '{"recordId": "LLMA0000009", "modelInput": {"prompt": "Hi"',
    ]
    mixed = tmp_path / "mixed.jsonl.out"
    mixed.write_text("\n".join(records[:2] + foreign + records[2:]) + "\n", encoding="utf-8")
    _, summary = replay("--results", mixed)
    assert summary["provider"] == "aws.bedrock"
    assert summary["malformed_lines"] == 3
    assert summary["results"] == len(records)
    assert len(completion_spans(delivered(receiver, len(records) + 1))) == len(records)


def test_provider_overrides_detection(receiver: OtlpReceiver) -> None:
    """Named as Anthropic, a Bedrock file's lines are all of the wrong shape: counted, never a crash."""
    path = BEDROCK / "mistral.jsonl.out"
    _, summary = replay("--results", path, "--provider", "anthropic")
    assert summary["provider"] == "anthropic"
    assert summary["malformed_lines"] == len(lines(path))
    assert summary["results"] == 0
