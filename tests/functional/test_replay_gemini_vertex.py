"""``batchtrace replay`` on Gemini API and Vertex AI batch files, as a subprocess, into a real OTLP receiver.

What a user checks after replaying a Google batch: one span per request (plus ``batch_results``),
named ``generate_content <model>``, with the provider, tokens, messages and errors of each line,
and a summary whose totals are the sums over the lines. The fixture files are the ones the
adapters' unit tests read (tests/fixtures/formats/gemini and vertex).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.functional.assertions import delivered
from tests.support.cli import replay
from tests.support.fixtures import FORMATS, by_id, lines
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.timeout(60)

GEMINI_REQUESTS = FORMATS / "gemini" / "requests.jsonl"
GEMINI_RESULTS = FORMATS / "gemini" / "results.jsonl"
VERTEX_PREDICTIONS = FORMATS / "vertex" / "predictions.jsonl"
NS = 1_000_000_000


def token_sums(responses: list[dict[str, Any]]) -> tuple[int, int]:
    """Input and output tokens as the user would add them up from usageMetadata."""
    usage = [r.get("usageMetadata") or {} for r in responses]
    prompt = sum(u.get("promptTokenCount", 0) for u in usage)
    output = sum(u.get("candidatesTokenCount", 0) + u.get("thoughtsTokenCount", 0) for u in usage)
    return prompt, output


def texts(messages_json: Any) -> list[str]:
    assert isinstance(messages_json, str)
    return [p["content"] for m in json.loads(messages_json) for p in m["parts"] if p.get("type") == "text"]


def batch_span(spans: list[ReceivedSpan]) -> ReceivedSpan:
    [span] = [s for s in spans if s.name == "batch_results"]
    return span


# --------------------------------------------------------------------------- Gemini API


def test_gemini_batch_is_detected_and_every_request_gets_its_span(receiver: OtlpReceiver) -> None:
    _, summary = replay("--requests", GEMINI_REQUESTS, "--results", GEMINI_RESULTS)
    results = lines(GEMINI_RESULTS)
    prompt, output = token_sums([r["response"] for r in results if "response" in r])
    assert summary["provider"] == "gcp.gemini"
    assert (summary["requests"], summary["results"], summary["errors"]) == (8, 8, 2)
    assert (summary["no_result"], summary["orphan_results"], summary["malformed_lines"]) == (0, 0, 0)
    assert (summary["input_tokens"], summary["output_tokens"]) == (prompt, output) == (1322, 592)
    spans = delivered(receiver, 9)
    assert batch_span(spans).attributes.get("traceloop.entity.name") == "batch_results"
    completions = by_id(spans)
    assert set(completions) == {r["key"] for r in results}
    for span in completions.values():
        assert span.attributes["gen_ai.provider.name"] == "gcp.gemini"
        assert span.attributes["gen_ai.operation.name"] == "generate_content"
        assert span.kind == "CLIENT"


def test_gemini_spans_carry_model_tokens_and_messages(receiver: OtlpReceiver) -> None:
    replay("--requests", GEMINI_REQUESTS, "--results", GEMINI_RESULTS)
    spans = by_id(delivered(receiver, 9))
    recipe = spans["recipe-fr-1"]
    assert recipe.name == "generate_content gemini-2.5-flash"
    assert recipe.attributes["gen_ai.response.model"] == "gemini-2.5-flash"
    assert recipe.attributes["gen_ai.response.id"] == "UD1CE61i4Klbg7Ny0DlXg1"
    assert recipe.attributes.get("gen_ai.request.model") in (None, "gemini-2.5-flash")  # the writer's fallback
    assert texts(recipe.attributes["gen_ai.input.messages"]) == ["Donne la recette de la tarte Tatin en 5 étapes."]
    assert recipe.attributes["gen_ai.request.temperature"] == 0.7
    math = spans["math-ru-3"]
    assert (math.attributes["gen_ai.usage.input_tokens"], math.attributes["gen_ai.usage.output_tokens"]) == (19, 287)
    assert math.attributes["gen_ai.usage.reasoning.output_tokens"] == 254
    output = json.loads(str(math.attributes["gen_ai.output.messages"]))
    assert [p["type"] for p in output[0]["parts"]] == ["reasoning", "text"]
    assert "плюс" in output[0]["parts"][1]["content"]
    thread = spans["thread-de-4"]
    assert thread.attributes["gen_ai.usage.cache_read.input_tokens"] == 1024
    assert list(thread.attributes["gen_ai.response.finish_reasons"]) == ["length"]
    booking = spans["book-ja-2"]
    call = json.loads(str(booking.attributes["gen_ai.output.messages"]))[0]["parts"][0]
    assert (call["type"], call["name"], call["arguments"]["restaurant"]) == ("tool_call", "book_table", "すし匠")
    system = json.loads(str(booking.attributes["gen_ai.system_instructions"]))
    assert system == [{"type": "text", "content": "あなたはレストラン予約アシスタントです。"}]
    assert texts(spans["emoji-5"].attributes["gen_ai.output.messages"]) == ["🏕️🔥🌲🌌😴"]
    assert list(spans["unsafe-6"].attributes["gen_ai.response.finish_reasons"]) == ["content_filter"]
    assert spans["unsafe-6"].status_code != "ERROR"


def test_gemini_error_lines_are_error_spans(receiver: OtlpReceiver) -> None:
    replay("--requests", GEMINI_REQUESTS, "--results", GEMINI_RESULTS)
    spans = by_id(delivered(receiver, 9))
    for key, code in (("bad-role-7", 400), ("server-8", 500)):
        span = spans[key]
        assert span.status_code == "ERROR"
        assert span.attributes["error.type"] == str(code)
        assert span.attributes["http.response.status_code"] == code
        assert span.name == "generate_content"  # no model anywhere: none is invented
    assert spans["bad-role-7"].status_message == "Please use a valid role: user, model."
    ok = [s for k, s in spans.items() if k not in ("bad-role-7", "server-8")]
    assert all(s.status_code != "ERROR" and "error.type" not in s.attributes for s in ok)


def test_gemini_model_flag_names_the_request_model(receiver: OtlpReceiver) -> None:
    replay("--requests", GEMINI_REQUESTS, "--results", GEMINI_RESULTS, "--model", "gemini-2.5-flash")
    spans = by_id(delivered(receiver, 9))
    assert {s.name for s in spans.values()} == {"generate_content gemini-2.5-flash"}
    assert {s.attributes["gen_ai.request.model"] for s in spans.values()} == {"gemini-2.5-flash"}


@pytest.mark.parametrize("name", ["gemini", "google"])
def test_gemini_named_explicitly(receiver: OtlpReceiver, name: str) -> None:
    _, summary = replay("--requests", GEMINI_REQUESTS, "--results", GEMINI_RESULTS, "--provider", name)
    assert summary["provider"] == "gcp.gemini"
    assert len(by_id(delivered(receiver, 9))) == 8


def test_provider_flag_overrides_detection(receiver: OtlpReceiver) -> None:
    """Named as Vertex AI, the Gemini lines are not Vertex lines: counted as malformed, never guessed."""
    _, summary = replay("--results", GEMINI_RESULTS, "--provider", "vertex")
    assert summary["provider"] == "gcp.vertex_ai"
    assert (summary["results"], summary["malformed_lines"]) == (0, 8)
    assert by_id(delivered(receiver, 1)) == {}


def test_gemini_malformed_and_foreign_lines_are_counted(receiver: OtlpReceiver, tmp_path: Path) -> None:
    results = tmp_path / "results.jsonl"
    foreign = [
        "{not json at all",
        json.dumps({"custom_id": "openai-1", "response": {"status_code": 200, "body": {}}, "error": None}),
        json.dumps(lines(VERTEX_PREDICTIONS)[0], ensure_ascii=False),
        json.dumps({"key": "no-body"}),
    ]
    original = GEMINI_RESULTS.read_text(encoding="utf-8").splitlines()
    results.write_text("\n".join([*original[:3], *foreign, *original[3:]]) + "\n", encoding="utf-8")
    _, summary = replay("--requests", GEMINI_REQUESTS, "--results", results)
    assert summary["malformed_lines"] == 4
    assert (summary["results"], summary["errors"]) == (8, 2)
    assert len(by_id(delivered(receiver, 9))) == 8


def test_gemini_results_alone_are_orphans_with_their_tokens(receiver: OtlpReceiver) -> None:
    _, summary = replay("--results", GEMINI_RESULTS)
    assert (summary["results"], summary["orphan_results"]) == (8, 8)
    spans = by_id(delivered(receiver, 9))
    assert all(s.attributes.get("batchtrace.orphan_result") is True for s in spans.values())
    assert summary["input_tokens"] == token_sums([r["response"] for r in lines(GEMINI_RESULTS) if "response" in r])[0]


def test_gemini_orphans_missing_results_and_inline_bytes(receiver: OtlpReceiver) -> None:
    """The edge set: a result without request, a request without result, and an image sent inline."""
    edge = FORMATS / "gemini"
    _, summary = replay("--requests", edge / "edge.requests.jsonl", "--results", edge / "edge.results.jsonl")
    assert (summary["requests"], summary["results"], summary["errors"]) == (5, 5, 1)
    assert (summary["orphan_results"], summary["no_result"]) == (1, 1)
    spans = by_id(delivered(receiver, 7))
    assert spans["ghost-14"].attributes["batchtrace.orphan_result"] is True
    assert spans["lost-13"].attributes["batchtrace.no_result"] is True
    assert spans["lost-13"].status_code == "ERROR"
    assert spans["quota-11"].attributes["error.type"] == "RESOURCE_EXHAUSTED"
    assert spans["blocked-10"].status_code != "ERROR"
    assert list(spans["blocked-10"].attributes["gen_ai.response.finish_reasons"]) == ["content_filter"]
    image = spans["sdk-snake-9"]
    assert not any("iVBORw0KGgo" in str(value) for value in image.attributes.values())
    assert "[inline data omitted]" in str(image.attributes["gen_ai.input.messages"])


# --------------------------------------------------------------------------- Vertex AI


def test_vertex_predictions_alone_are_detected_and_replayed(receiver: OtlpReceiver) -> None:
    _, summary = replay("--results", VERTEX_PREDICTIONS)
    rows = lines(VERTEX_PREDICTIONS)
    prompt, output = token_sums([r["response"] for r in rows if r.get("response")])
    assert summary["provider"] == "gcp.vertex_ai"
    assert (summary["requests"], summary["results"], summary["errors"], summary["malformed_lines"]) == (5, 5, 1, 0)
    assert (summary["orphan_results"], summary["no_result"]) == (0, 0)
    assert (summary["input_tokens"], summary["output_tokens"]) == (prompt, output) == (319, 105)
    spans = by_id(delivered(receiver, 6))
    assert set(spans) == {"1", "2", "3", "4", "5"}  # the line number is the only id Vertex gives
    for span in spans.values():
        assert span.attributes["gen_ai.provider.name"] == "gcp.vertex_ai"
        assert span.attributes["gen_ai.operation.name"] == "generate_content"


def test_vertex_spans_carry_time_tokens_messages_and_errors(receiver: OtlpReceiver) -> None:
    replay("--results", VERTEX_PREDICTIONS)
    spans = by_id(delivered(receiver, 6))
    first = spans["1"]
    assert first.name == "generate_content gemini-2.0-flash-001@default"
    # processed_time 2026-08-17T22:14:05.311+00:00 (to the microsecond: the record holds float seconds)
    assert abs(first.start_ns - 1787004845311 * 1_000_000) < 1_000
    assert (first.attributes["gen_ai.usage.input_tokens"], first.attributes["gen_ai.usage.output_tokens"]) == (22, 13)
    assert texts(first.attributes["gen_ai.output.messages"]) == ["Der Zug nach Straßburg fährt von Gleis 7 ab."]
    image = json.loads(str(spans["2"].attributes["gen_ai.input.messages"]))[0]["parts"][1]
    assert image["uri"] == "gs://cloud-samples-data/generative-ai/image/gardening-tools.jpeg"
    assert texts(spans["3"].attributes["gen_ai.output.messages"]) == ["Обь, Енисей и Лена."]
    failed = spans["4"]
    assert failed.status_code == "ERROR"
    assert failed.attributes["error.type"] == "INVALID_ARGUMENT"
    assert failed.attributes["http.response.status_code"] == 400
    assert texts(failed.attributes["gen_ai.input.messages"]) == ["Hello"]
    assert list(spans["5"].attributes["gen_ai.response.finish_reasons"]) == ["length"]
    assert all(spans[k].status_code != "ERROR" for k in ("1", "2", "3", "5"))


def test_vertex_input_file_is_recognised_and_not_needed(receiver: OtlpReceiver) -> None:
    """Given the input too, its id-less ``{request}`` lines say Vertex AI; the requests come from the output."""
    _, summary = replay("--requests", FORMATS / "vertex" / "requests.jsonl", "--results", VERTEX_PREDICTIONS)
    assert summary["provider"] == "gcp.vertex_ai"
    assert (summary["requests"], summary["results"], summary["orphan_results"], summary["malformed_lines"]) == (
        5,
        5,
        0,
        0,
    )
    assert len(by_id(delivered(receiver, 6))) == 5


def test_vertex_named_explicitly_with_a_model(receiver: OtlpReceiver) -> None:
    _, summary = replay("--results", VERTEX_PREDICTIONS, "--provider", "vertex", "--model", "gemini-2.0-flash-001")
    assert summary["provider"] == "gcp.vertex_ai"
    spans = by_id(delivered(receiver, 6))
    assert {s.name for s in spans.values()} == {"generate_content gemini-2.0-flash-001"}
    assert spans["4"].attributes["gen_ai.request.model"] == "gemini-2.0-flash-001"


def test_vertex_malformed_and_foreign_lines_are_counted(receiver: OtlpReceiver, tmp_path: Path) -> None:
    predictions = tmp_path / "predictions.jsonl"
    original = VERTEX_PREDICTIONS.read_text(encoding="utf-8").splitlines()
    foreign = [
        "[1, 2, 3]",
        GEMINI_RESULTS.read_text(encoding="utf-8").splitlines()[0],
        json.dumps({"custom_id": "openai-1", "response": {"status_code": 200, "body": {}}, "error": None}),
    ]
    predictions.write_text("\n".join([original[0], *foreign, *original[1:]]) + "\n", encoding="utf-8")
    _, summary = replay("--results", predictions)
    assert (summary["results"], summary["errors"], summary["malformed_lines"]) == (5, 1, 3)
    spans = by_id(delivered(receiver, 6))
    assert set(spans) == {"1", "5", "6", "7", "8"}  # ids stay the file's line numbers
    assert spans["7"].attributes["error.type"] == "INVALID_ARGUMENT"
