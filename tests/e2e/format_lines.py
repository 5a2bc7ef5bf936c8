"""What each provider fixture line says, read straight from its JSON: the yardstick for the Phoenix tier.

tests/e2e/test_phoenix.py replays every provider fixture set (tests/fixtures/formats/) with
``batchtrace replay`` into a real Phoenix and compares what Phoenix shows with what the lines
themselves say. So that a bug in an adapter cannot hide behind itself, nothing here imports
batchtrace: each set is read by a *layout* (how its files pair requests with results and say a
request failed) and a *dialect* (where a request's user text, an answer's text and its token
counts sit in that API's JSON). One :class:`Expected` per request comes out.

Token counts follow the GenAI conventions batchtrace emits, which Phoenix copies to
``llm.token_count.*``: input tokens include cached and cache-write tokens (Anthropic's and
Nova's ``input_tokens`` exclude them), output tokens include reasoning (Gemini's
``thoughtsTokenCount``). A line that states no counts (Bedrock Mistral) expects none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.fixtures import FORMATS
from tests.support.fixtures import lines as jsonl

Json = dict[str, Any]


@dataclass(frozen=True)
class Expected:
    """What a user should find in their backend for one request."""

    custom_id: str
    model: str | None  # None: no model anywhere (a failed line of a format whose requests name none)
    failed: bool
    tokens: tuple[int, int | None] | None  # (input, output or None for embeddings); None: failed or none stated
    prompt: str | None  # the first user text of the request (any text when no user turn has one)
    answer: str | None  # the first text or refusal of the answer (None: tool calls only, filtered, failed)
    reasoning: str | None  # the first reasoning text (a thinking block, a thought, a reasoning summary)


@dataclass(frozen=True)
class Line:
    """One request as its layout pairs it: the request part, the response part, whether it failed."""

    custom_id: str
    request: Json
    response: Json | None
    failed: bool


@dataclass(frozen=True)
class Dialect:
    """Where one API keeps the texts, tokens and model of a request and its response."""

    prompt: Callable[[Json], str | None]
    answer: Callable[[Json], str | None]
    tokens: Callable[[Json], tuple[int, int | None] | None]
    request_model: Callable[[Json], str | None] = lambda _request: None
    response_model: Callable[[Json], str | None] = lambda _response: None
    reasoning: Callable[[Json], str | None] = lambda _response: None


def _first(values: Iterator[str | None]) -> str | None:
    return next((v for v in values if isinstance(v, str) and v), None)


def _text_of(content: Any) -> str | None:
    """A message's content: a string, or the first text (or refusal) in a list of parts, any API's shape."""
    if isinstance(content, str):
        return content or None
    if isinstance(content, list):
        parts = [p for p in content if isinstance(p, dict) and not p.get("thought")]
        return _first(p.get("text") or p.get("refusal") for p in parts)
    return None


def _first_user_text(messages: list[Json] | None) -> str | None:
    """The first user turn's text; a request with none (a lone assistant turn) shows its first text."""
    texts = [(m.get("role", "user"), _text_of(m.get("content", m.get("parts")))) for m in messages or []]
    return _first(text for role, text in texts if role == "user") or _first(text for _, text in texts)


# ----------------------------------------------------------------------------------- dialects


def _chat_answer(body: Json) -> str | None:
    message = body["choices"][0]["message"]
    return _text_of(message.get("content")) or message.get("refusal")


def _chat_tokens(body: Json) -> tuple[int, int]:
    return body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"]


def _responses_prompt(body: Json) -> str | None:
    given = body.get("input")
    return given if isinstance(given, str) else _first_user_text(given)


def _responses_answer(body: Json) -> str | None:
    messages = (item for item in body["output"] if item.get("type") == "message")
    return _first(_text_of(m.get("content")) for m in messages)


def _anthropic_tokens(message: Json) -> tuple[int, int]:
    usage = message["usage"]
    cached = usage.get("cache_read_input_tokens", 0) + usage.get("cache_creation_input_tokens", 0)
    return usage["input_tokens"] + cached, usage["output_tokens"]


def _nova_tokens(output: Json) -> tuple[int, int]:
    usage = output["usage"]
    cached = usage.get("cacheReadInputTokenCount", 0) + usage.get("cacheWriteInputTokenCount", 0)
    return usage["inputTokens"] + cached, usage["outputTokens"]


def _google_answer(response: Json) -> str | None:
    return _text_of(((response.get("candidates") or [{}])[0].get("content") or {}).get("parts"))


def _google_reasoning(response: Json) -> str | None:
    parts = ((response.get("candidates") or [{}])[0].get("content") or {}).get("parts") or []
    return _first(p.get("text") for p in parts if p.get("thought"))


def _responses_reasoning(body: Json) -> str | None:
    summaries = (item.get("summary") or [] for item in body["output"] if item.get("type") == "reasoning")
    return _first(_text_of(summary) for summary in summaries)


def _google_tokens(response: Json) -> tuple[int, int]:
    usage = response["usageMetadata"]
    return usage.get("promptTokenCount", 0), usage.get("candidatesTokenCount", 0) + usage.get("thoughtsTokenCount", 0)


CHAT = Dialect(
    prompt=lambda body: _first_user_text(body["messages"]),
    answer=_chat_answer,
    tokens=_chat_tokens,
    request_model=lambda body: body.get("model"),
)
RESPONSES = Dialect(
    prompt=_responses_prompt,
    answer=_responses_answer,
    tokens=lambda body: (body["usage"]["input_tokens"], body["usage"]["output_tokens"]),
    request_model=lambda body: body.get("model"),
    reasoning=_responses_reasoning,
)
COMPLETIONS = Dialect(
    prompt=lambda body: body["prompt"],
    answer=lambda body: body["choices"][0]["text"],
    tokens=_chat_tokens,
    request_model=lambda body: body.get("model"),
)
ANTHROPIC = Dialect(
    prompt=lambda params: _first_user_text(params.get("messages")) or params.get("prompt"),  # a legacy prompt
    answer=lambda message: _text_of([b for b in message["content"] if b.get("type") == "text"]),
    tokens=_anthropic_tokens,
    request_model=lambda params: params.get("model"),
    reasoning=lambda message: _first(b.get("thinking") for b in message["content"] if b.get("type") == "thinking"),
)
NOVA = Dialect(
    prompt=lambda model_input: _first_user_text(model_input["messages"]),
    answer=lambda output: _text_of(output["output"]["message"]["content"]),
    tokens=_nova_tokens,
)
TITAN_TEXT = Dialect(
    prompt=lambda model_input: model_input["inputText"],
    answer=lambda output: output["results"][0]["outputText"] or None,
    tokens=lambda output: (output["inputTextTokenCount"], sum(r["tokenCount"] for r in output["results"])),
)
LLAMA = Dialect(
    prompt=lambda model_input: model_input["prompt"],
    answer=lambda output: output["generation"],
    tokens=lambda output: (output["prompt_token_count"], output["generation_token_count"]),
)
BEDROCK_MISTRAL = Dialect(
    prompt=lambda model_input: model_input["prompt"],
    answer=lambda output: output["outputs"][0]["text"],
    tokens=lambda _output: None,  # the documented output has no token counts at all
)
GOOGLE = Dialect(
    prompt=lambda request: _first_user_text(request["contents"]),
    answer=_google_answer,
    tokens=_google_tokens,
    response_model=lambda response: response.get("modelVersion"),
    reasoning=_google_reasoning,
)


# ------------------------------------------------------------------------------------ layouts


def _openai_batch(folder: Path, prefix: str) -> Iterator[Line]:
    """``{custom_id, body}`` requests; results wrapped in ``response`` (or flat, as Fireworks's are)."""
    requests = {line["custom_id"]: line["body"] for line in jsonl(folder / f"{prefix}requests.jsonl")}
    errors = folder / f"{prefix}errors.jsonl"
    failed = {line["custom_id"] for line in jsonl(errors)} if errors.exists() else set()
    results = jsonl(folder / f"{prefix}results.jsonl")
    answered = {line["custom_id"]: line["response"]["body"] if "response" in line else line for line in results}
    for custom_id, body in requests.items():
        bad = custom_id in failed
        yield Line(custom_id, body, None if bad else answered[custom_id], bad)


def _anthropic_batch(folder: Path, _prefix: str) -> Iterator[Line]:
    results = {line["custom_id"]: line["result"] for line in jsonl(folder / "results.jsonl")}
    for line in jsonl(folder / "requests.jsonl"):
        result = results[line["custom_id"]]
        ok = result["type"] == "succeeded"
        yield Line(line["custom_id"], line["params"], result["message"] if ok else None, not ok)


def _gemini_batch(folder: Path, _prefix: str) -> Iterator[Line]:
    results = {line["key"]: line.get("response") for line in jsonl(folder / "results.jsonl")}
    for line in jsonl(folder / "requests.jsonl"):
        response = results[line["key"]]
        yield Line(line["key"], line["request"], response, response is None)


def _bedrock_output(path: Path) -> Iterator[Line]:
    for line in jsonl(path):
        yield Line(line["recordId"], line["modelInput"], line.get("modelOutput"), "error" in line)


def _vertex_output(path: Path) -> Iterator[Line]:
    """Vertex AI lines carry no id: batchtrace names them by their 1-based line number."""
    for number, line in enumerate(jsonl(path), start=1):
        yield Line(str(number), line["request"], line.get("response"), bool(line["status"]))


# ------------------------------------------------------------------------------ fixture sets


@dataclass(frozen=True)
class FixtureSet:
    """One provider's fixture batch: how ``batchtrace replay`` is run on it and what its lines say.

    ``provider`` is what Phoenix shows as ``llm.provider`` (None where Phoenix maps the GenAI
    provider name to no OpenInference provider); ``model`` is the job's model, given with
    ``--model`` for formats whose lines do not name it; ``span_kind`` is Phoenix's (OpenInference)
    span kind for the operation.
    """

    name: str
    dialect: Dialect
    files: tuple[str, ...]  # replay's file options, paths relative to FORMATS
    lines: Callable[[], Iterator[Line]]
    provider: str | None
    options: tuple[str, ...] = ()
    model: str | None = None
    span_kind: str = "LLM"

    def replay_args(self) -> list[str]:
        files = [arg if arg.startswith("--") else str(FORMATS / arg) for arg in self.files]
        return [*files, *self.options, *(["--model", self.model] if self.model else [])]

    def expected(self) -> dict[str, Expected]:
        return {line.custom_id: self._expect(line) for line in self.lines()}

    def _expect(self, line: Line) -> Expected:
        d = self.dialect
        response = line.response
        model = self.model or d.request_model(line.request) or (d.response_model(response) if response else None)
        if response is None:
            return Expected(line.custom_id, model, line.failed, None, d.prompt(line.request), None, None)
        tokens, answer, reasoning = d.tokens(response), d.answer(response), d.reasoning(response)
        return Expected(line.custom_id, model, line.failed, tokens, d.prompt(line.request), answer, reasoning)


def _openai_set(
    name: str, folder: str, dialect: Dialect, provider: str | None, prefix: str = "", **kw: Any
) -> FixtureSet:
    path = FORMATS / folder
    files = ["--requests", f"{folder}/{prefix}requests.jsonl", "--results", f"{folder}/{prefix}results.jsonl"]
    if (path / f"{prefix}errors.jsonl").exists():
        files += ["--errors", f"{folder}/{prefix}errors.jsonl"]
    return FixtureSet(name, dialect, tuple(files), lambda: _openai_batch(path, prefix), provider, **kw)


def _bedrock_set(family: str, dialect: Dialect, model: str) -> FixtureSet:
    path = FORMATS / "bedrock" / f"{family}.jsonl.out"
    files = ("--results", f"bedrock/{family}.jsonl.out")
    return FixtureSet(f"bedrock-{family}", dialect, files, lambda: _bedrock_output(path), "aws", model=model)


def _folder_set(
    name: str, dialect: Dialect, layout: Callable[[Path, str], Iterator[Line]], provider: str
) -> FixtureSet:
    folder = FORMATS / name
    files = ("--requests", f"{name}/requests.jsonl", "--results", f"{name}/results.jsonl")
    return FixtureSet(name, dialect, files, lambda: layout(folder, ""), provider)


#: Every completion format, one set per provider (and per Bedrock model family).
COMPLETION_SETS: tuple[FixtureSet, ...] = (
    _openai_set("openai-chat", "openai", CHAT, "openai", prefix="chat."),
    _openai_set("openai-responses", "openai", RESPONSES, "openai", prefix="responses."),
    _openai_set("openai-completions", "openai", COMPLETIONS, "openai", prefix="completions."),
    _openai_set("azure", "azure", CHAT, "azure", options=("--provider", "azure")),
    _folder_set("anthropic", ANTHROPIC, _anthropic_batch, "anthropic"),
    _bedrock_set("claude", ANTHROPIC, "anthropic.claude-3-haiku-20240307-v1:0"),
    _bedrock_set("nova", NOVA, "amazon.nova-lite-v1:0"),
    _bedrock_set("titan-text", TITAN_TEXT, "amazon.titan-text-express-v1"),
    _bedrock_set("llama", LLAMA, "meta.llama3-1-70b-instruct-v1:0"),
    _bedrock_set("mistral", BEDROCK_MISTRAL, "mistral.mistral-7b-instruct-v0:2"),
    _folder_set("gemini", GOOGLE, _gemini_batch, "google"),
    FixtureSet(
        "vertex",
        GOOGLE,
        ("--results", "vertex/predictions.jsonl"),
        lambda: _vertex_output(FORMATS / "vertex" / "predictions.jsonl"),
        "google",
    ),
    _openai_set(
        "mistral", "mistral", CHAT, "mistralai", options=("--provider", "mistral"), model="mistral-small-latest"
    ),
    _openai_set("groq", "groq", CHAT, "groq", options=("--provider", "groq")),
    _openai_set("together", "together", CHAT, None, options=("--provider", "together")),
    _openai_set(
        "fireworks",
        "fireworks",
        CHAT,
        None,
        options=("--provider", "fireworks"),
        model="accounts/fireworks/models/llama-v3p1-8b-instruct",
    ),
)


#: Not shown by Phoenix, so nothing to expect: an embedding's input (batchtrace sends no GenAI
#: messages for it and OpenInference's ``embedding.embeddings.*.text`` comes with the vector) and a
#: moderation's input (kept in batchtrace's raw input only; moderation is no GenAI operation).
OPENAI_EMBEDDINGS = Dialect(
    prompt=lambda _body: None,
    answer=lambda _body: None,
    tokens=lambda body: (body["usage"]["prompt_tokens"], None),
    request_model=lambda body: body.get("model"),
)
TITAN_EMBED = Dialect(
    prompt=lambda _model_input: None,
    answer=lambda _output: None,
    tokens=lambda output: (output["inputTextTokenCount"], None),
)
MODERATIONS = Dialect(
    prompt=lambda _body: None,
    answer=lambda _body: None,  # the verdict text is batchtrace's own summary of the scores
    tokens=lambda _body: None,  # moderations report no usage
    request_model=lambda body: body.get("model"),
)
IMAGES = Dialect(
    prompt=lambda body: body["prompt"],
    answer=lambda _body: None,  # images, not text
    tokens=lambda body: (body["usage"]["input_tokens"], body["usage"]["output_tokens"]),
    request_model=lambda body: body.get("model"),
)
VIDEOS = Dialect(
    prompt=lambda body: body["prompt"],
    answer=lambda _body: None,
    tokens=lambda _body: None,  # a video job reports no usage
    request_model=lambda body: body.get("model"),
)

#: The other OpenAI endpoints and Bedrock's embeddings: not chat, each shown in its own way.
OTHER_SETS: tuple[FixtureSet, ...] = (
    _openai_set(
        "openai-embeddings", "openai", OPENAI_EMBEDDINGS, "openai", prefix="embeddings.", span_kind="EMBEDDING"
    ),
    FixtureSet(
        "bedrock-titan-embed",
        TITAN_EMBED,
        ("--results", "bedrock/titan-embed.jsonl.out"),
        lambda: _bedrock_output(FORMATS / "bedrock" / "titan-embed.jsonl.out"),
        "aws",
        model="amazon.titan-embed-text-v2:0",
        span_kind="EMBEDDING",
    ),
    _openai_set("openai-images-generations", "openai", IMAGES, "openai", prefix="images_generations."),
    _openai_set("openai-images-edits", "openai", IMAGES, "openai", prefix="images_edits."),
    _openai_set("openai-videos", "openai", VIDEOS, "openai", prefix="videos."),
    _openai_set("openai-moderations", "openai", MODERATIONS, "openai", prefix="moderations.", span_kind="UNKNOWN"),
)
