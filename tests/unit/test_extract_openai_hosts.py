"""The OpenAI-compatible hosts (Azure OpenAI, Mistral, Groq, Together, Fireworks), fixture by fixture.

Each host's fixture pair (``tests/fixtures/formats/<host>/``) goes through its adapter the way the
pipeline does it (``request_id`` indexes the input, ``result_id`` pairs each result, ``extract``
builds the record), and the records are checked as a user of the spans would: the models, the
messages in every language the fixtures use, tool calls with parsed arguments, usage with the
semantic conventions' meaning, finish reasons, and failures with their type.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from batchtrace.extract import adapter_named, detect
from batchtrace.extract.base import NO_RESULT, ExtractContext, FormatAdapter, keep
from batchtrace.plan import FormatChoice
from batchtrace.record import Record

from tests.support.fixtures import FORMATS, lines

HOSTS = ("azure", "mistral", "groq", "together", "fireworks")
MISTRAL_MODEL = "mistral-small-latest"
FIREWORKS_MODEL = "accounts/fireworks/models/llama-v3p1-8b-instruct"


def replay(host: str, model: str | None = None) -> dict[str, Record]:
    """Every record of a host's fixture batch, by custom_id, as the pipeline pairs them."""
    adapter = adapter_named(host)
    ctx = ExtractContext(cut=keep, model=model)
    requests: dict[str, dict[str, Any]] = {}
    for line in lines(FORMATS / host / "requests.jsonl"):
        custom_id = adapter.request_id(line)
        assert custom_id is not None, line
        requests[custom_id] = line
    records: dict[str, Record] = {}
    for line_no, line in enumerate(
        lines(FORMATS / host / "results.jsonl") + lines(FORMATS / host / "errors.jsonl"), start=1
    ):
        custom_id = adapter.result_id(line, line_no)
        assert custom_id is not None, line
        records[custom_id] = adapter.extract(custom_id, requests.pop(custom_id, None), line, ctx)
    assert not requests, f"requests without a result: {sorted(requests)}"
    return records


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [part["content"] for m in messages for part in m["parts"] if part["type"] == "text"]


def instructions(record: Record) -> list[str]:
    return [part["content"] for part in record.system_instructions if part["type"] == "text"]


def tool_calls(record: Record) -> list[dict[str, Any]]:
    return [part for m in record.output_messages for part in m["parts"] if part["type"] == "tool_call"]


def ctx(model: str | None = None) -> ExtractContext:
    return ExtractContext(cut=keep, model=model)


# ------------------------------------------------------------------------------- registry


@pytest.mark.parametrize(
    ("option", "provider"),
    [
        ("azure", "azure.ai.openai"),
        ("azure_openai", "azure.ai.openai"),
        ("azure.ai.openai", "azure.ai.openai"),
        ("mistral", "mistral_ai"),
        ("groq", "groq"),
        ("together", "together_ai"),
        ("fireworks", "fireworks_ai"),
    ],
)
def test_each_host_is_found_by_its_name_alias_and_provider_value(option: str, provider: str) -> None:
    adapter = adapter_named(option)
    assert adapter.provider == provider
    assert adapter.family == "openai"


@pytest.mark.parametrize("host", ["mistral", "groq", "together", "fireworks"])
def test_hosts_without_a_telling_shape_are_only_chosen_by_name(host: str) -> None:
    """Their lines are OpenAI's or less, so detection must never pick them over OpenAI."""
    assert adapter_named(host).detectable is False
    for line in lines(FORMATS / host / "requests.jsonl"):
        found = detect(line, request=True)
        assert found is None or found.name == "openai"
    for line in lines(FORMATS / host / "results.jsonl"):
        found = detect(line, request=False)
        assert found is None or found.name == "openai"


# ------------------------------------------------------------------------------- Azure


def test_azure_input_detects_as_openai_and_the_first_result_refines_to_azure() -> None:
    requests = (FORMATS / "azure" / "requests.jsonl").read_bytes()
    choice = FormatChoice()
    choice.detect_in(io.BytesIO(requests), "input", request=True)
    assert choice.current.name == "openai"
    choice.refine(lines(FORMATS / "azure" / "results.jsonl")[0])
    assert choice.current.name == "azure"
    assert choice.current.provider == "azure.ai.openai"


def test_an_openai_result_does_not_refine_to_azure_and_an_explicit_choice_stays() -> None:
    openai_result = lines(FORMATS / "openai" / "chat.results.jsonl")[0]
    assert detect(openai_result, request=False) is not None
    assert detect(openai_result, request=False).name == "openai"  # type: ignore[union-attr]
    choice = FormatChoice.named("openai")
    choice.refine(lines(FORMATS / "azure" / "results.jsonl")[0])
    assert choice.current.name == "openai"


def test_azure_records_carry_the_deployment_the_model_and_the_messages() -> None:
    records = replay("azure")
    assert len(records) == 8
    first = records["task-0"]
    assert first.provider == "azure.ai.openai"
    assert first.operation == "chat"  # the url is /chat/completions, without /v1
    assert first.endpoint == "/chat/completions"
    assert first.request_model == "gpt-4o-mini-gb"  # the deployment name
    assert first.response_model == "gpt-4o-mini-2024-07-18"
    assert first.line_id is None  # Azure lines have no top-level id
    assert first.request_id == "4c75a0ce-fdc0-4572-8989-cbb6572fc66e"
    assert first.created_s == 1787004971.0
    assert instructions(first) == ["Du bist ein hilfreicher Assistent der Stadtwerke Köln."]
    assert "Müllabfuhr" in texts(first.input_messages)[0]
    assert texts(first.output_messages)[0].startswith("In Köln-Ehrenfeld")
    assert first.usage.input_tokens == 41 and first.usage.output_tokens == 45
    assert first.finish_reasons == ["stop"]
    assert first.extra["openai.response.system_fingerprint"] == "fp_efa545aad3"
    assert first.raw_output["content"].startswith("In Köln")


def test_azure_escaped_and_multilingual_text_and_images() -> None:
    records = replay("azure")
    assert texts(records["task-1"].output_messages) == [
        "東海道新幹線「のぞみ」で、東京から新大阪まで約2時間30分（150分）です。"  # noqa: RUF001
    ]
    assert texts(records["task-2"].input_messages) == ["Ана и Борис идут на научную ярмарку в пятницу."]
    assert json.loads(texts(records["task-2"].output_messages)[0])["participants"] == ["Ана", "Борис"]
    assert records["task-2"].output_type == "json"
    image = records["task-3"].input_messages[0]["parts"][1]
    assert image["type"] == "uri" and image["modality"] == "image"
    assert image["uri"].endswith("generated-seattle.png")
    assert texts(records["task-7"].output_messages) == ["La capitale de l'Australie est Canberra. 🦘"]


def test_azure_filtered_completion_is_a_content_filter_finish_with_its_categories() -> None:
    record = replay("azure")["task-4"]
    assert record.failure is None
    assert record.finish_reasons == ["content_filter"]
    assert record.output_messages == [{"role": "assistant", "parts": [], "finish_reason": "content_filter"}]
    assert record.extra["azure.content_filter.completion.filtered"] == ["violence"]
    assert record.extra["azure.content_filter.completion.severities"] == [
        "hate:safe",
        "self_harm:safe",
        "sexual:safe",
        "violence:high",
    ]
    assert "azure.content_filter.prompt.filtered" not in record.extra
    assert record.extra["azure.content_filter.prompt.severities"] == [
        "hate:safe",
        "self_harm:safe",
        "sexual:safe",
        "violence:safe",
    ]
    assert record.usage.output_tokens == 119


def test_azure_filtered_prompt_is_a_content_filter_failure_showing_what_was_filtered() -> None:
    record = replay("azure")["task-5"]
    assert record.failure is not None
    assert record.failure.type == "content_filter"
    assert "content management policy" in record.failure.message
    assert record.http_status == 400
    assert record.extra["azure.content_filter.prompt.filtered"] == ["jailbreak"]
    assert record.extra["azure.content_filter.prompt.detected"] == ["jailbreak"]
    assert record.output_messages == []


def test_azure_policy_violation_without_the_content_filter_code_is_still_that_failure() -> None:
    line = {
        "custom_id": "x",
        "response": {
            "status_code": 400,
            "body": {
                "error": {
                    "message": "filtered",
                    "code": "400",
                    "innererror": {
                        "code": "ResponsibleAIPolicyViolation",
                        "content_filter_result": {"sexual": {"filtered": True, "severity": "medium"}},
                    },
                }
            },
        },
        "error": None,
    }
    adapter = adapter_named("azure")
    assert adapter.is_result(line)
    record = adapter.extract("x", None, line, ctx())
    assert record.failure is not None and record.failure.type == "content_filter"
    assert record.orphan
    assert record.extra["azure.content_filter.prompt.filtered"] == ["sexual"]
    assert record.extra["azure.content_filter.prompt.severities"] == ["sexual:medium"]


def test_azure_other_errors_keep_their_code() -> None:
    record = replay("azure")["task-6"]
    assert record.failure is not None
    assert record.failure.type == "invalid_value"
    assert "max_tokens is too large" in record.failure.message
    assert record.params["max_tokens"] == 200000


def test_azure_never_claims_an_input_line() -> None:
    adapter = adapter_named("azure")
    for line in lines(FORMATS / "azure" / "requests.jsonl"):
        assert adapter.request_id(line) is not None
        assert not adapter.is_request(line)


# ------------------------------------------------------------------------------- Mistral


def test_mistral_takes_the_model_from_the_job_and_reads_chat_results() -> None:
    records = replay("mistral", model=MISTRAL_MODEL)
    assert len(records) == 6
    assert all(r.provider == "mistral_ai" and r.request_model == MISTRAL_MODEL for r in records.values())
    first = records["0"]
    assert first.operation == "chat"
    assert first.endpoint == "/v1/chat/completions"
    assert texts(first.input_messages) == ["Quel est le meilleur fromage français pour une raclette ?"]
    assert "Savoie" in texts(first.output_messages)[0]
    assert first.usage.input_tokens == 17 and first.usage.output_tokens == 38
    assert first.line_id == "batch-572e989c-bb65-42fc-b6e3-0fb58090f7ba-0"
    assert first.request_id is None  # Mistral's response has no request_id
    assert instructions(records["1"]) == ["Réponds en japonais."]
    assert texts(records["1"].output_messages)[0].startswith("寿司には")
    assert records["3"].finish_reasons == ["length"]
    assert "🗼" in texts(records["3"].input_messages)[0]


def test_mistral_without_a_job_model_uses_the_response_model_and_invents_none() -> None:
    records = replay("mistral")
    assert records["0"].request_model is None
    assert records["0"].model == "mistral-small-latest"  # from the response body
    assert records["4"].model is None  # a failed request names no model anywhere


def test_mistral_tool_call_has_parsed_arguments() -> None:
    record = replay("mistral", model=MISTRAL_MODEL)["2"]
    assert record.finish_reasons == ["tool_call"]
    assert record.params == {"max_tokens": 256, "temperature": 0.2}
    assert record.tool_definitions is not None and record.tool_definitions[0]["function"]["name"] == "get_forecast"
    assert tool_calls(record) == [
        {
            "type": "tool_call",
            "id": "CqFaCvkw5",
            "name": "get_forecast",
            "arguments": {"city": "Lyon", "date": "2026-08-18"},
        }
    ]
    assert texts(record.input_messages) == ["Какая погода в Лионе завтра?"]


def test_mistral_string_error_bodies_become_typed_failures_with_text_messages() -> None:
    records = replay("mistral", model=MISTRAL_MODEL)
    order = records["4"].failure
    assert order is not None
    assert order.type == "invalid_request_message_order"
    assert order.message.startswith("Expected last role User or Tool")
    assert "3230" in order.message
    assert records["4"].http_status == 400
    validation = records["5"].failure
    assert validation is not None
    assert validation.type == "invalid_request_error"
    assert validation.message == "body.presence_penalty: Input should be less than or equal to 2"
    assert records["5"].http_status == 422


@pytest.mark.parametrize(
    ("body", "kind", "message"),
    [
        ("upstream timed out", "504", "upstream timed out"),
        ('{"message": {"unexpected": [1, 2]}, "type": "x_error"}', "x_error", '{"unexpected":[1,2]}'),
        ({"error": {"message": "slow down", "code": "rate_limited"}}, "rate_limited", "slow down"),
        ('{"detail": [{"loc": ["body", "n"], "msg": "too big"}]}', "504", "body.n: too big"),
        ("", "504", "HTTP 504"),
        (None, "504", "HTTP 504"),
    ],
)
def test_mistral_odd_error_bodies_still_read_as_text(body: Any, kind: str, message: str) -> None:
    line = {"id": "b-9", "custom_id": "9", "response": {"status_code": 504, "body": body}, "error": None}
    record = adapter_named("mistral").extract("9", None, line, ctx(MISTRAL_MODEL))
    assert record.failure is not None
    assert (record.failure.type, record.failure.message) == (kind, message)


# ------------------------------------------------------------------------------- Groq


def test_groq_usage_timings_and_request_id_are_on_the_record() -> None:
    records = replay("groq")
    first = records["request-1"]
    assert first.provider == "groq"
    assert first.request_model == first.response_model == "llama-3.1-8b-instant"
    assert texts(first.output_messages) == ['"Hola, ¿cómo estás hoy?"']
    assert first.usage.input_tokens == 55 and first.usage.output_tokens == 9 and first.usage.total_tokens == 64
    assert first.extra["groq.usage.queue_time"] == pytest.approx(1.008715442)
    assert first.extra["groq.usage.prompt_time"] == pytest.approx(0.009901563)
    assert first.extra["groq.usage.completion_time"] == pytest.approx(0.012)
    assert first.extra["groq.usage.total_time"] == pytest.approx(0.021901563)
    assert all(isinstance(first.extra[f"groq.usage.{n}"], float) for n in ("queue_time", "total_time"))
    assert first.extra["groq.x_groq.id"] == first.request_id == "req_01txhqziskdyl7ikbyqy1yt8n4q4"
    assert first.line_id == "batch_req_out_017k62jhe0cfga486xcmlikxor1k"


def test_groq_messages_tools_and_finishes() -> None:
    records = replay("groq")
    assert texts(records["request-3"].output_messages)[0].startswith("日本には47の都道府県")
    assert texts(records["request-2"].input_messages)[0].startswith("Résume en une phrase")
    assert tool_calls(records["request-4"])[0]["arguments"] == {"base": "EUR", "quote": "RUB"}
    assert records["request-4"].finish_reasons == ["tool_call"]
    assert records["request-5"].finish_reasons == ["length"]
    assert records["request-3"].params == {"temperature": 0}


def test_groq_http_error_and_expiry() -> None:
    records = replay("groq")
    http = records["request-6"].failure
    assert http is not None and http.type == "invalid_request_error" and not http.expired
    assert records["request-6"].http_status == 400
    expired = records["request-7"].failure
    assert expired is not None and expired.type == "batch_expired" and expired.expired
    assert "groq.usage.queue_time" not in records["request-7"].extra


# ------------------------------------------------------------------------------- Together


def test_together_requests_without_url_are_chat_and_eos_is_stop() -> None:
    records = replay("together")
    first = records["request-1"]
    assert first.provider == "together_ai"
    assert first.operation == "chat" and first.endpoint == "/v1/chat/completions"
    assert first.finish_reasons == ["stop"]  # Together's "eos"
    assert texts(first.output_messages) == ["Olá, mundo! Como posso ajudar você hoje?"]
    assert first.usage.input_tokens == 44 and first.usage.output_tokens == 12
    assert first.usage.cache_read_tokens == 0  # Together's top-level usage.cached_tokens
    assert instructions(records["request-2"]) == ["Antworte auf Deutsch."]
    assert records["request-3"].finish_reasons == ["length"]
    assert texts(records["request-3"].input_messages) == ["「猫」を使った俳句を一つ。"]
    assert "🍲" in texts(records["request-4"].output_messages)[0]


def test_together_error_lines_give_the_http_status_as_type() -> None:
    records = replay("together")
    too_long = records["request-5"]
    assert too_long.failure is not None and too_long.failure.type == "400"
    assert too_long.failure.message.startswith("Input validation error")
    assert too_long.http_status == 400
    empty = records["request-6"]
    assert empty.failure is not None and empty.failure.type == "422" and empty.http_status == 422


def test_together_cached_tokens_count_as_cache_reads() -> None:
    line = lines(FORMATS / "together" / "results.jsonl")[0]
    line["response"]["body"]["usage"]["cached_tokens"] = 32
    record = adapter_named("together").extract("request-2", None, line, ctx())
    assert record.usage.cache_read_tokens == 32
    assert record.usage.input_tokens == 52  # prompt_tokens already include them


# ------------------------------------------------------------------------------- Fireworks


def test_fireworks_flat_rows_with_the_job_model() -> None:
    records = replay("fireworks", model=FIREWORKS_MODEL)
    first = records["request-1"]
    assert first.provider == "fireworks_ai"
    assert first.request_model == FIREWORKS_MODEL
    assert first.response_id == "415134f1-d1fc-41ec-9580-259aca618c80"
    assert first.line_id is None  # a flat row's id is the response's
    assert first.http_status is None
    assert first.created_s == 1787007821.0
    assert texts(first.output_messages) == ["The capital of France is Paris."]
    assert first.usage.input_tokens == 27 and first.usage.output_tokens == 8
    assert records["request-2"].finish_reasons == ["length"]
    assert records["request-2"].params == {"temperature": 0.7, "max_tokens": 24}
    assert texts(records["request-3"].output_messages)[0].endswith("байти! 😄")
    assert texts(records["request-4"].input_messages) == ["東京タワーの高さは？"]  # noqa: RUF001


def test_fireworks_error_row_is_a_failure_with_its_status() -> None:
    record = replay("fireworks", model=FIREWORKS_MODEL)["request-5"]
    assert record.failure is not None
    assert record.failure.type == "400"
    assert record.failure.message == "max_tokens must be a positive integer"
    assert record.http_status == 400


def test_fireworks_reads_a_row_wrapped_in_response_too() -> None:
    flat = lines(FORMATS / "fireworks" / "results.jsonl")[0]
    body = {k: v for k, v in flat.items() if k != "custom_id"}
    wrapped = {"custom_id": "request-1", "response": {"status_code": 200, "body": body}}
    adapter = adapter_named("fireworks")
    assert adapter.result_id(wrapped, 1) == "request-1"
    record = adapter.extract("request-1", None, wrapped, ctx())
    assert record.failure is None and record.http_status == 200
    assert texts(record.output_messages) == ["The capital of France is Paris."]


def test_fireworks_input_lines_are_not_results() -> None:
    adapter = adapter_named("fireworks")
    for line in lines(FORMATS / "fireworks" / "requests.jsonl"):
        assert adapter.request_id(line) is not None
        assert adapter.result_id(line, 1) is None


# ------------------------------------------------------------------------------- every host


@pytest.mark.parametrize("host", HOSTS)
def test_a_request_without_result_is_a_no_result_failure(host: str) -> None:
    adapter = adapter_named(host)
    request = lines(FORMATS / host / "requests.jsonl")[0]
    custom_id = adapter.request_id(request)
    assert custom_id is not None
    record = adapter.extract(custom_id, request, None, ctx("m"))
    assert record.no_result and record.failure is NO_RESULT
    assert not record.orphan
    assert record.input_messages


@pytest.mark.parametrize("host", HOSTS)
def test_a_result_without_request_is_an_orphan(host: str) -> None:
    adapter = adapter_named(host)
    result = lines(FORMATS / host / "results.jsonl")[0]
    custom_id = adapter.result_id(result, 1)
    assert custom_id is not None
    record = adapter.extract(custom_id, None, result, ctx())
    assert record.orphan and not record.failed
    assert record.output_messages and record.input_messages == []


FOREIGN_LINES: list[Any] = [
    {"custom_id": "a", "result": {"type": "succeeded", "message": {}}},  # Anthropic
    {"custom_id": "a", "params": {"model": "claude"}},  # Anthropic input
    {"recordId": "CALL0000001", "modelInput": {}, "modelOutput": {}},  # Bedrock
    {"key": "a", "response": {"candidates": []}},  # Gemini
    {"status": "", "processed_time": "2026-08-17T00:00:00+00:00", "request": {}, "response": {}},  # Vertex
    {"custom_id": 7, "response": {"status_code": 200, "body": {}}},
    {"custom_id": "", "response": {"status_code": 200, "body": {}}},
    {"custom_id": "a", "response": "not an object"},
    {"custom_id": "a"},
]


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("line", FOREIGN_LINES)
def test_lines_of_other_shapes_have_no_result_id(host: str, line: dict[str, Any]) -> None:
    assert adapter_named(host).result_id(line, 3) is None


ODD_RESULTS: list[dict[str, Any]] = [
    {"custom_id": "a", "response": None, "error": None},
    {"custom_id": "a", "response": {"status_code": "200", "body": None}, "error": None},
    {"custom_id": "a", "response": {"status_code": 200, "body": []}, "error": "boom"},
    {
        "custom_id": "a",
        "response": {
            "status_code": 200,
            "body": {
                "choices": [None, "x", {"message": None, "finish_reason": None, "content_filter_results": None}],
                "prompt_filter_results": "x",
                "usage": {"queue_time": "slow", "prompt_tokens": None, "cached_tokens": "0"},
                "x_groq": [],
                "model": 5,
            },
        },
        "error": None,
    },
    {
        "custom_id": "a",
        "response": {"status_code": 400, "body": {"error": {"innererror": None, "message": {"a": 1}}}},
        "error": None,
    },
    {"custom_id": "a", "choices": [None], "usage": "bad", "error": None},
    {"custom_id": "a", "error": {"code": None, "message": None}},
    {"custom_id": "a", "error": "plain text"},
]


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("line", ODD_RESULTS)
def test_odd_values_never_raise(host: str, line: dict[str, Any]) -> None:
    adapter: FormatAdapter = adapter_named(host)
    odd_request = {"custom_id": "a", "body": {"messages": None, "model": None, "tools": "x"}}
    record = adapter.extract("a", odd_request, line, ctx())
    assert record.custom_id == "a"
    adapter.is_result(line)
    adapter.result_id(line, 1)


def test_cut_applies_to_every_host_text() -> None:
    cut_ctx = ExtractContext(cut=lambda text: text[:4], model=MISTRAL_MODEL)
    request = lines(FORMATS / "mistral" / "requests.jsonl")[0]
    result = lines(FORMATS / "mistral" / "results.jsonl")[1]
    record = adapter_named("mistral").extract("0", request, result, cut_ctx)
    assert texts(record.input_messages) == ["Quel"]
    assert texts(record.output_messages) == ["Pour"]
    assert record.raw_input[0]["content"] == "Quel"
