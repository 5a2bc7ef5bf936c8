"""The Vertex AI batch prediction adapter over ``predictions.jsonl``, where each line carries its request.

``predictions.jsonl`` is the documented shape (tests/fixtures/formats/README.md);
``edge.predictions.jsonl`` adds a thinking model's function call (echoed snake_case tools,
cached tokens, ``createTime``), a ``text/x.enum`` request and a 429 failure.
"""

from __future__ import annotations

from typing import Any

import pytest
from batchtrace.extract import adapter_named, detect
from batchtrace.extract.base import ExtractContext, keep
from batchtrace.extract.gemini import ADAPTER as GEMINI
from batchtrace.extract.vertex import ADAPTER
from batchtrace.record import Record

from tests.support.fixtures import FORMATS, lines

FIXTURES = FORMATS / "vertex"
CTX = ExtractContext(cut=keep)
ISO_EPOCH = 1787004845.311  # 2026-08-17T22:14:05.311+00:00


def records(name: str = "predictions.jsonl", ctx: ExtractContext = CTX) -> list[Record]:
    """Each line through the adapter as the pipeline runs a self-contained format: no request given."""
    out = []
    for line_no, line in enumerate(lines(FIXTURES / name), start=1):
        custom_id = ADAPTER.result_id(line, line_no)
        assert custom_id == str(line_no)
        out.append(ADAPTER.extract(custom_id, None, line, ctx))
    return out


@pytest.fixture(scope="module")
def main() -> list[Record]:
    return records()


@pytest.fixture(scope="module")
def edge() -> list[Record]:
    return records("edge.predictions.jsonl")


def texts(messages: list[dict[str, Any]], kind: str = "text") -> list[str]:
    return [p["content"] for m in messages for p in m["parts"] if p["type"] == kind]


# --------------------------------------------------------------------------- identity and detection


def test_the_line_number_is_the_id_and_the_request_comes_from_the_line(main: list[Record]) -> None:
    assert ADAPTER.self_contained
    assert [r.custom_id for r in main] == ["1", "2", "3", "4", "5"]
    for record in main:
        assert record.provider == "gcp.vertex_ai"
        assert record.operation == "generate_content"
        assert not record.orphan and not record.no_result
        assert record.input_messages


def test_processed_time_is_the_records_time(main: list[Record], edge: list[Record]) -> None:
    assert main[0].created_s == pytest.approx(ISO_EPOCH)
    assert main[4].created_s == pytest.approx(ISO_EPOCH + 2.647)
    # Even where the response has its own createTime, the line's processed_time wins.
    assert edge[0].created_s == pytest.approx(ISO_EPOCH + 65.893)


def test_the_model_is_the_response_version_unless_given(main: list[Record]) -> None:
    assert main[0].request_model is None
    assert main[0].response_model == "gemini-2.0-flash-001@default"
    given = ADAPTER.extract(
        "1", None, lines(FIXTURES / "predictions.jsonl")[0], ExtractContext(cut=keep, model="gemini-2.0-flash")
    )
    assert given.request_model == "gemini-2.0-flash"


def test_detection_tells_vertex_from_gemini_lines() -> None:
    assert all(detect(line, request=False) is ADAPTER for line in lines(FIXTURES / "predictions.jsonl"))
    assert all(detect(line, request=True) is ADAPTER for line in lines(FIXTURES / "requests.jsonl"))
    assert ADAPTER.request_id(lines(FIXTURES / "requests.jsonl")[0]) is None  # the input has no ids at all
    gemini_result = {"key": "k", "response": {"candidates": []}}
    assert detect(gemini_result, request=False) is GEMINI
    assert ADAPTER.result_id(gemini_result, 1) is None
    assert adapter_named("vertex") is ADAPTER
    assert adapter_named("gcp.vertex_ai") is ADAPTER


@pytest.mark.parametrize(
    "line",
    [
        {"status": "", "processed_time": "2026-08-17T22:14:05.311+00:00"},
        {"status": "", "request": None, "response": {}},
        {"status": "", "request": "x", "response": {}},
        {"request": {}},
        {"request": {}, "status": None, "response": None},
        {"key": "k", "request": {}, "response": {}},
        {"custom_id": "a", "response": {"status_code": 200, "body": {}}},
    ],
)
def test_a_line_of_the_wrong_shape_has_no_id(line: dict[str, Any]) -> None:
    assert ADAPTER.result_id(line, 7) is None


# --------------------------------------------------------------------------- content


def test_snake_case_echo_with_null_oneof_members_is_read(main: list[Record]) -> None:
    image = main[1].input_messages[0]["parts"]
    assert image == [
        {"type": "text", "content": "List objects in this image."},
        {
            "type": "uri",
            "modality": "image",
            "mime_type": "image/jpeg",
            "uri": "gs://cloud-samples-data/generative-ai/image/gardening-tools.jpeg",
        },
    ]
    assert main[2].system_instructions == [{"type": "text", "content": "Отвечай по-русски."}]


def test_multilingual_text_and_params(main: list[Record]) -> None:
    assert texts(main[0].input_messages) == ["Traduis en allemand : « Le train pour Strasbourg part du quai 7. »"]
    assert texts(main[0].output_messages) == ["Der Zug nach Straßburg fährt von Gleis 7 ab."]
    assert main[0].params == {"temperature": 0.2, "max_tokens": 64}
    assert texts(main[2].output_messages) == ["Обь, Енисей и Лена."]
    assert texts(main[4].input_messages) == ["Write a 2000-word essay on the history of Hokkaido 🏔️"]


def test_usage_and_finish_reasons(main: list[Record]) -> None:
    usage = main[1].usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (265, 52, 317)
    assert [r.finish_reasons for r in main] == [["stop"], ["stop"], ["stop"], [], ["length"]]
    assert sum(r.usage.input_tokens or 0 for r in main) == 22 + 265 + 15 + 17
    assert sum(r.usage.output_tokens or 0 for r in main) == 13 + 52 + 8 + 32


def test_a_thinking_function_call_with_cached_tokens(edge: list[Record]) -> None:
    record = edge[0]
    [reply] = record.output_messages
    assert [p["type"] for p in reply["parts"]] == ["reasoning", "tool_call"]
    assert reply["parts"][1]["arguments"] == {"city": "Zürich", "date": "2026-08-18"}
    assert record.finish_reasons == ["tool_call"]
    usage = record.usage
    assert (usage.input_tokens, usage.cache_read_tokens) == (1100, 1024)
    assert (usage.output_tokens, usage.reasoning_tokens, usage.total_tokens) == (19 + 61, 61, 1180)
    assert record.response_id == "vtx1resp1vtx1resp1vtx1r"
    assert record.tool_definitions is not None
    assert record.tool_definitions[0]["name"] == "get_forecast"
    assert record.params == {"temperature": 0}
    assert record.extra["batchtrace.gemini.request.thinking_budget"] == 512


def test_enum_output_is_text_with_its_stop_sequences(edge: list[Record]) -> None:
    record = edge[1]
    assert record.output_type == "text"
    assert record.params == {"top_k": 1, "stop_sequences": ["."]}
    assert texts(record.input_messages) == ["Ответь «да» или «нет»: Земля круглая?"]


# --------------------------------------------------------------------------- failures


def test_a_non_empty_status_is_a_failure_with_the_embedded_error(main: list[Record], edge: list[Record]) -> None:
    failed = main[3]
    assert failed.failure is not None
    assert failed.failure.type == "INVALID_ARGUMENT"
    assert failed.failure.message == "Please use a valid role: user, model."
    assert failed.http_status == 400
    assert failed.output_messages == [] and not failed.usage.reported
    assert texts(failed.input_messages) == ["Hello"]
    assert failed.created_s == pytest.approx(ISO_EPOCH + 1.108)
    quota = edge[2]
    assert quota.failure is not None
    assert (quota.failure.type, quota.http_status) == ("RESOURCE_EXHAUSTED", 429)
    assert all(r.failure is None for i, r in enumerate(main) if i != 3)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ("Internal: the model failed to respond", "Internal"),
        ("Bad Request: {not json", "Bad Request"),
        ('{"error": "plain"}', "error"),
        ("x" * 60, "error"),
    ],
)
def test_a_status_without_an_error_object_keeps_its_text(status: str, kind: str) -> None:
    line = {"status": status, "processed_time": "2026-08-17T22:14:06.419+00:00", "request": {"contents": []}}
    record = ADAPTER.extract("1", None, line, CTX)
    assert record.failure is not None
    assert (record.failure.type, record.failure.message) == (kind, status)


def test_a_line_with_neither_response_nor_status_fails_plainly() -> None:
    line: dict[str, Any] = {"status": "", "processed_time": None, "request": {"contents": []}}
    record = ADAPTER.extract("1", None, line, CTX)
    assert record.failure is not None and record.failure.type == "no_response"
    assert record.created_s is None


@pytest.mark.parametrize(
    "line",
    [
        {"status": 5, "request": {}, "response": {"candidates": [None]}, "processed_time": 12},
        {"status": None, "request": {"contents": [{"parts": [{"file_data": None, "text": None}]}]}, "response": {}},
        {
            "status": "",
            "request": {"system_instruction": []},
            "response": {"usageMetadata": []},
            "processed_time": "no",
        },
    ],
)
def test_odd_values_never_raise(line: dict[str, Any]) -> None:
    assert ADAPTER.extract("1", None, line, CTX).custom_id == "1"
