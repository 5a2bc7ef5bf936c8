"""Amazon Bedrock batch output through the adapter: one ``.jsonl.out`` per job, one model family each.

Each fixture file (tests/fixtures/formats/bedrock) is read line by line with ``json`` and handed
to ``extract`` with no request (every line carries its own ``modelInput``), as the product does.
The assertions are what a user checks per record: the family the line was recognised as (from
its shape, or from the job's model id when given), the operation, the messages in any language,
tool calls with parsed arguments, tokens in the one shared meaning (input INCLUDES cache reads
and writes), finish reasons, and the ``{errorCode, errorMessage}`` failures.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from batchtrace.extract import adapter_named, detect
from batchtrace.extract.base import NO_RESULT, ExtractContext, keep
from batchtrace.extract.bedrock import ADAPTER, family_of, model_id
from batchtrace.record import Record

from tests.support.fixtures import FORMATS, lines

FIXTURES = FORMATS / "bedrock"
CTX = ExtractContext(cut=keep)
CLAUDE_JOB_MODEL = "arn:aws:bedrock:eu-central-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"


def records(name: str, model: str | None = None) -> dict[str, Record]:
    ctx = ExtractContext(cut=keep, model=model)
    out: dict[str, Record] = {}
    for line_no, line in enumerate(lines(FIXTURES / name), start=1):
        record_id = line["recordId"]
        assert ADAPTER.result_id(line, line_no) == record_id
        out[record_id] = ADAPTER.extract(record_id, None, line, ctx)
    return out


def texts(messages: list[dict[str, Any]], kind: str = "text") -> list[str]:
    return [part["content"] for m in messages for part in m["parts"] if part["type"] == kind]


def parts_of(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [part for m in messages for part in m["parts"] if part["type"] == kind]


# --------------------------------------------------------------------------- every file


@pytest.mark.parametrize(
    ("name", "family", "operation"),
    [
        ("claude.jsonl.out", {"claude", "claude_text"}, {"chat", "text_completion"}),
        ("nova.jsonl.out", {"nova"}, {"chat"}),
        ("titan-text.jsonl.out", {"titan_text"}, {"text_completion"}),
        ("titan-embed.jsonl.out", {"titan_embed"}, {"embeddings"}),
        ("llama.jsonl.out", {"llama"}, {"text_completion"}),
        ("mistral.jsonl.out", {"mistral"}, {"text_completion"}),
    ],
)
def test_each_family_is_recognised_from_the_shapes_alone(name: str, family: set[str], operation: set[str]) -> None:
    found = records(name)
    assert {r.extra["batchtrace.bedrock.model_family"] for r in found.values()} == family
    assert {r.operation for r in found.values()} == operation
    for record in found.values():
        assert record.provider == "aws.bedrock"
        assert not record.orphan and not record.no_result
        assert record.request_model is None  # the lines name no model: none is made up
        if record.failure is not None:
            assert record.output_messages == []
            assert not record.usage.reported


def test_detection_picks_bedrock_for_every_file_and_the_names_find_it() -> None:
    for path in sorted(FIXTURES.glob("*.jsonl.out")):
        first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
        assert detect(first, request=False) is ADAPTER, path.name
    assert adapter_named("bedrock") is ADAPTER
    assert adapter_named("aws.bedrock") is ADAPTER
    assert ADAPTER.self_contained


# --------------------------------------------------------------------------- Anthropic Claude


def test_claude_lines_read_like_anthropic_messages_and_add_up_to_the_manifest() -> None:
    found = records("claude.jsonl.out", CLAUDE_JOB_MODEL)
    first = found["CALL0000001"]
    assert first.request_model == "anthropic.claude-3-haiku-20240307-v1:0"
    assert first.response_model == "claude-3-haiku-20240307"
    assert first.response_id == "msg_bdrk_01L6dSvEDcWgJgdoVsjnMdnE"
    assert texts(first.input_messages)[0].startswith("Summarize the following call transcript in English: Agent: Guten")
    assert "Frau Özdemir" in texts(first.input_messages)[0]
    assert first.finish_reasons == ["stop"]
    tool = found["CALL0000002"]
    assert texts(tool.input_messages)[0].startswith("この通話のフォローアップチケットを作成してください")
    [call] = parts_of(tool.output_messages, "tool_call")
    assert call["name"] == "create_ticket"
    assert call["arguments"] == {"priority": "normal", "summary": "請求額の誤り：再請求の発行を確認"}  # noqa: RUF001
    assert tool.finish_reasons == ["tool_call"]
    assert tool.tool_definitions is not None and tool.tool_definitions[0]["name"] == "create_ticket"
    assert found["CALL0000003"].finish_reasons == ["length"]
    assert texts(found["CALL0000003"].output_messages)[0].startswith("1. Оценочные показания")
    assert found["CALL0000004"].params == {"max_tokens": 512, "stop_sequences": ["END"]}
    assert texts(found["CALL0000004"].input_messages) == [
        "Give a one-word sentiment label for: 'Thanks, that was quick 👍'. Then write END."
    ]
    manifest = json.loads((FIXTURES / "manifest.json.out").read_text(encoding="utf-8"))
    assert len(found) == manifest["totalRecordCount"]
    assert sum(r.failed for r in found.values()) == manifest["errorRecordCount"]
    assert sum(r.usage.input_tokens or 0 for r in found.values()) == manifest["inputTokenCount"]
    assert sum(r.usage.output_tokens or 0 for r in found.values()) == manifest["outputTokenCount"]


def test_claude_errors_fail_with_the_error_code_as_type_and_http_status() -> None:
    found = records("claude.jsonl.out", CLAUDE_JOB_MODEL)
    malformed, server = found["CALL0000005"], found["CALL0000006"]
    assert malformed.failure is not None and malformed.failure.type == "400"
    assert malformed.failure.message.startswith("Malformed input request: #: required key [messages] not found")
    assert malformed.http_status == 400
    assert malformed.operation == "text_completion"  # it sent the legacy prompt, which is why it failed
    assert texts(malformed.input_messages) == ["Human: Hello\n\nAssistant:"]
    assert server.failure is not None and server.failure.type == "500" and server.http_status == 500
    assert not server.failure.expired
    assert texts(server.input_messages) == ["Übersetze ins Englische: „Der Zähler wurde am 3. März abgelesen.“"]
    assert server.request_model == "anthropic.claude-3-haiku-20240307-v1:0"


def test_claude_usage_excludes_cache_like_anthropic_and_the_record_adds_it_back() -> None:
    line = {
        "recordId": "C1",
        "modelInput": {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, "messages": []},
        "modelOutput": {
            "type": "message",
            "content": [{"type": "thinking", "thinking": "hmm", "signature": "sig"}, {"type": "text", "text": "ok"}],
            "usage": {"input_tokens": 10, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 7},
        },
    }
    record = ADAPTER.extract("C1", None, line, CTX)
    assert record.usage.input_tokens == 117
    assert (record.usage.cache_read_tokens, record.usage.cache_creation_tokens) == (100, 7)
    assert texts(record.output_messages, "reasoning") == ["hmm"]


# --------------------------------------------------------------------------- Amazon Nova


def test_nova_messages_system_tools_and_cache_reads() -> None:
    found = records("nova.jsonl.out", "amazon.nova-lite-v1:0")
    first = found["NOVA0000001"]
    assert first.request_model == "amazon.nova-lite-v1:0"
    assert first.system_instructions == [{"type": "text", "content": "Tu es concis."}]
    assert texts(first.input_messages) == [
        "Résume en une phrase : le colis a été livré chez le voisin au n° 12 car personne n'était présent."
    ]
    assert texts(first.output_messages) == ["Le colis a été remis au voisin du n° 12 en l'absence du destinataire."]
    assert first.params == {"max_tokens": 300, "temperature": 0.3, "top_p": 0.9}
    assert (first.usage.input_tokens, first.usage.output_tokens, first.usage.total_tokens) == (38, 19, 57)
    tool = found["NOVA0000002"]
    [call] = parts_of(tool.output_messages, "tool_call")
    assert call == {
        "type": "tool_call",
        "id": "tooluse_HEXO6JSHcZDjUVTVKA8zdB",
        "name": "track_parcel",
        "arguments": {"tracking_no": "00340434161094042557"},
    }
    assert tool.finish_reasons == ["tool_call"]
    assert tool.tool_definitions is not None and tool.tool_definitions[0]["toolSpec"]["name"] == "track_parcel"
    japanese = found["NOVA0000003"]
    assert texts(japanese.input_messages) == ["配達遅延のお詫びメールを書いてください。"]
    assert texts(japanese.output_messages)[0].startswith("件名：配達遅延のお詫び")  # noqa: RUF001
    assert japanese.finish_reasons == ["length"]
    cached = found["NOVA0000004"]
    assert cached.usage.input_tokens == 183 + 1024  # inputTokens leaves out what was read from the cache
    assert cached.usage.cache_read_tokens == 1024
    assert cached.usage.total_tokens == 1207 + 17
    failed = found["NOVA0000005"]
    assert failed.failure is not None and failed.failure.type == "400" and failed.http_status == 400
    assert failed.params["max_tokens"] == 5001


def test_nova_tool_results_media_and_reasoning_blocks() -> None:
    line = {
        "recordId": "N9",
        "modelInput": {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}},
                        {"video": {"format": "mp4", "source": {"s3Location": {"uri": "s3://b/clip.mp4"}}}},
                        {"text": "Что здесь?"},
                    ],
                },
                {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "look", "input": {}}}]},
                {
                    "role": "user",
                    "content": [{"toolResult": {"toolUseId": "t1", "content": [{"json": {"cat": True}}]}}],
                },
            ],
            "inferenceConfig": {"max_new_tokens": 50, "topK": 20, "stopSequences": ["</end>"]},
        },
        "modelOutput": {
            "output": {
                "message": {
                    "role": "assistant",
                    "content": [{"reasoningContent": {"reasoningText": {"text": "a cat, surely"}}}, {"text": "Кот."}],
                }
            },
            "stopReason": "content_filtered",
            "usage": {"inputTokens": 5, "outputTokens": 3, "cacheWriteInputTokenCount": 2},
        },
    }
    record = ADAPTER.extract("N9", None, line, CTX)
    image, video, text = record.input_messages[0]["parts"]
    assert image == {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "[inline data omitted]"}
    assert video == {"type": "uri", "modality": "video", "mime_type": "video/mp4", "uri": "s3://b/clip.mp4"}
    assert text == {"type": "text", "content": "Что здесь?"}
    assert record.input_messages[2] == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": "t1", "response": [{"cat": True}]}],
    }
    assert texts(record.output_messages, "reasoning") == ["a cat, surely"]
    assert record.finish_reasons == ["content_filter"]
    assert record.params == {"max_tokens": 50, "top_k": 20, "stop_sequences": ["</end>"]}
    assert (record.usage.input_tokens, record.usage.cache_creation_tokens) == (7, 2)
    assert "iVBORw0KGgo=" not in json.dumps(record.input_messages)


# --------------------------------------------------------------------------- Titan, Llama, Mistral


def test_titan_text_completions_and_their_finish_reasons() -> None:
    found = records("titan-text.jsonl.out")
    assert texts(found["TTXT0000001"].input_messages) == ["Roses are red, violets are"]
    assert texts(found["TTXT0000001"].output_messages) == ["blue\n"]
    assert found["TTXT0000001"].params == {"max_tokens": 512, "temperature": 0.2, "top_p": 0.9}
    assert [found[k].finish_reasons for k in ("TTXT0000001", "TTXT0000002", "TTXT0000003")] == [
        ["stop"],
        ["length"],
        ["content_filter"],
    ]
    assert texts(found["TTXT0000002"].input_messages) == [
        "Écris une courte description pour un fromage de Comté affiné 18 mois."
    ]
    assert (found["TTXT0000002"].usage.input_tokens, found["TTXT0000002"].usage.output_tokens) == (24, 30)
    assert found["TTXT0000003"].output_messages == [
        {"role": "assistant", "parts": [], "finish_reason": "content_filter"}
    ]
    failed = found["TTXT0000004"]
    assert failed.failure is not None and failed.failure.message == "bad request"


def test_titan_embeddings_are_embeddings_without_invented_messages() -> None:
    found = records("titan-embed.jsonl.out")
    german = found["TEMB0000001"]
    assert german.operation == "embeddings"
    assert german.input_messages == [] and german.output_messages == []
    assert german.raw_input == "Wie ändere ich meine Lieferadresse?"
    assert german.usage.input_tokens == 11
    assert german.usage.output_tokens is None
    assert german.extra["gen_ai.embeddings.dimension.count"] == 256
    assert found["TEMB0000002"].raw_input == "配送先住所の変更方法"
    assert found["TEMB0000003"].failure is not None and found["TEMB0000003"].http_status == 400


def test_the_job_model_settles_a_line_whose_shape_fits_two_families() -> None:
    [line] = [x for x in lines(FIXTURES / "titan-text.jsonl.out") if x["recordId"] == "TTXT0000004"]
    as_text = ADAPTER.extract("TTXT0000004", None, line, ExtractContext(cut=keep, model="amazon.titan-text-express-v1"))
    as_embed = ADAPTER.extract(
        "TTXT0000004", None, line, ExtractContext(cut=keep, model="amazon.titan-embed-text-v2:0")
    )
    assert (as_text.operation, as_embed.operation) == ("text_completion", "embeddings")
    assert as_embed.request_model == "amazon.titan-embed-text-v2:0"
    assert as_embed.input_messages == []


def test_llama_generations_tokens_and_finish() -> None:
    found = records("llama.jsonl.out", "meta.llama3-1-70b-instruct-v1:0")
    first = found["LLMA0000001"]
    assert first.request_model == "meta.llama3-1-70b-instruct-v1:0"
    assert "Schnelle Lieferung, aber die Jacke ist zu klein." in texts(first.input_messages)[0]
    assert texts(first.output_messages) == ["Mixed"]
    assert first.params == {"max_tokens": 16, "temperature": 0.1, "top_p": 0.9}
    assert (first.usage.input_tokens, first.usage.output_tokens, first.usage.total_tokens) == (52, 2, 54)
    assert texts(found["LLMA0000002"].output_messages)[0].startswith("Байкал — зеркало небес")
    assert found["LLMA0000002"].finish_reasons == ["length"]
    assert texts(found["LLMA0000003"].output_messages) == ["🧥🧤🧣🥽⛷️🎿🧦🩹🧴"]
    assert found["LLMA0000004"].failure is not None and found["LLMA0000004"].failure.type == "400"


def test_mistral_text_has_no_token_counts() -> None:
    found = records("mistral.jsonl.out")
    first = found["MSTR0000001"]
    assert texts(first.input_messages) == [
        "<s>[INST] Quelle est la différence entre un croissant et un pain au chocolat ? [/INST]"
    ]
    assert texts(first.output_messages)[0].startswith(" Le croissant est une viennoiserie")
    assert first.params == {"max_tokens": 200, "temperature": 0.5, "top_p": 0.9, "top_k": 50}
    assert not first.usage.reported
    assert found["MSTR0000002"].finish_reasons == ["length"]
    assert texts(found["MSTR0000002"].output_messages)[0].startswith(" Kraków, jedno z najstarszych")


def test_openai_style_chat_bodies_as_mistral_large_answers() -> None:
    line = {
        "recordId": "M1",
        "modelInput": {"messages": [{"role": "system", "content": "Sei breve."}, {"role": "user", "content": "Ciao"}]},
        "modelOutput": {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Ciao!"}, "stop_reason": "length"}]
        },
    }
    record = ADAPTER.extract("M1", None, line, ExtractContext(cut=keep, model="mistral.mistral-large-2407-v1:0"))
    assert record.operation == "chat"
    assert record.system_instructions == [{"type": "text", "content": "Sei breve."}]
    assert texts(record.output_messages) == ["Ciao!"]
    assert record.finish_reasons == ["length"]


# --------------------------------------------------------------------------- shapes and odd values


def test_model_ids_from_arns() -> None:
    assert model_id(CLAUDE_JOB_MODEL) == "anthropic.claude-3-haiku-20240307-v1:0"
    profile = "arn:aws:bedrock:us-east-1:111122223333:inference-profile/us.amazon.nova-pro-v1:0"
    assert model_id(profile) == "us.amazon.nova-pro-v1:0"
    custom = "arn:aws:bedrock:us-east-1:111122223333:custom-model/abc"
    assert model_id(custom) == custom
    assert model_id(None) is None
    assert family_of({}, {}, "us.anthropic.claude-sonnet-4-20250514-v1:0") == "claude"
    assert family_of({"prompt": "x"}, {}, "meta.llama3-8b-instruct-v1:0") == "llama"


@pytest.mark.parametrize(
    "line",
    [
        {"custom_id": "a", "result": {"type": "succeeded"}},  # Anthropic's
        {"custom_id": "a", "response": {"status_code": 200, "body": {}}, "error": None},  # OpenAI's
        {"status": "", "processed_time": "2026-08-18T00:00:00+00:00", "request": {}, "response": {}},  # Vertex's
        {"modelInput": {}, "modelOutput": {}},
        {"recordId": "", "modelInput": {}, "modelOutput": {}},
        {"recordId": 5, "modelInput": {}, "modelOutput": {}},
        {"recordId": "A", "modelInput": None, "modelOutput": {}},
        {"recordId": "A", "modelInput": "x", "modelOutput": {}},
        {"recordId": "A", "modelInput": {}},
        {"recordId": "A", "modelInput": {}, "modelOutput": None, "error": None},
    ],
)
def test_lines_of_another_shape_are_not_results(line: dict[str, Any]) -> None:
    assert ADAPTER.result_id(line, 4) is None


@pytest.mark.parametrize(
    "line",
    [
        {"recordId": "A", "modelInput": {"messages": None}, "modelOutput": {"output": None, "usage": None}},
        {
            "recordId": "A",
            "modelInput": {"messages": [None, {"content": [None, {"toolUse": None}]}]},
            "modelOutput": {},
        },
        {"recordId": "A", "modelInput": {"inputText": None}, "modelOutput": {"results": [None, {"tokenCount": "3"}]}},
        {"recordId": "A", "modelInput": {"prompt": 3}, "modelOutput": {"outputs": None}},
        {"recordId": "A", "modelInput": {"max_gen_len": None}, "modelOutput": {"generation": None}},
        {"recordId": "A", "modelInput": {"anthropic_version": 1}, "modelOutput": {"content": None, "usage": 7}},
        {"recordId": "A", "modelInput": {}, "modelOutput": {"choices": [None, {"message": None}]}},
        {"recordId": "A", "modelInput": {"dimensions": "x"}, "modelOutput": {"embedding": None}},
        {"recordId": "A", "modelInput": {}, "error": "throttled"},
        {"recordId": "A", "modelInput": {}, "error": {"errorCode": None, "errorMessage": None}},
        {"recordId": "A", "modelInput": {}, "error": {"errorCode": "ValidationException"}},
    ],
)
def test_odd_values_never_raise(line: dict[str, Any]) -> None:
    assert ADAPTER.result_id(line, 1) == "A"
    record = ADAPTER.extract("A", None, line, CTX)
    assert record.custom_id == "A"
    if "error" in line:
        assert record.failure is not None and record.failure.type
        assert record.http_status is None


def test_a_record_without_result_is_a_no_result_failure() -> None:
    line = {"recordId": "A", "modelInput": {"inputText": "hi", "textGenerationConfig": {"maxTokenCount": 5}}}
    record = ADAPTER.extract("A", line, None, CTX)
    assert record.no_result and record.failure is NO_RESULT
    assert texts(record.input_messages) == ["hi"]


def test_every_text_value_is_cut() -> None:
    def cut(text: str) -> str:
        return text[:4]

    line = lines(FIXTURES / "nova.jsonl.out")[1]
    record = ADAPTER.extract("NOVA0000002", None, line, ExtractContext(cut=cut))
    assert texts(record.input_messages) == ["Wher"]
    [call] = parts_of(record.output_messages, "tool_call")
    assert call["arguments"] == {"tracking_no": "0034"}
