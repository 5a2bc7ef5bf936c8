"""Azure OpenAI batch deployments: OpenAI's lines, plus Azure's content filtering.

Follows "Getting started with Azure OpenAI batch deployments"
(https://learn.microsoft.com/azure/ai-foundry/openai/how-to/batch). The lines are OpenAI's
(:mod:`batchtrace.extract.openai`) with these differences:

- input ``url`` is ``/chat/completions`` (no ``/v1``, except on the v1 API), and ``body.model``
  is the Global-Batch *deployment* name (so it is the request model; the response's ``model``
  is the model behind it);
- output lines may have no top-level ``id``; ``response.request_id`` is a UUID;
- a success body has ``prompt_filter_results[{prompt_index, content_filter_results}]`` and each
  choice has ``content_filter_results`` (``{category: {filtered, severity | detected}}``); a
  filtered completion has ``finish_reason: content_filter`` and ``content: null``;
- a filtered prompt is an HTTP 400 whose ``body.error`` has ``code: content_filter`` and
  ``innererror: {code: ResponsibleAIPolicyViolation, content_filter_result}``.

What was filtered goes on the span as ``azure.content_filter.{prompt,completion}.filtered``
(categories with ``filtered: true``), ``.detected`` (``detected: true``, e.g. jailbreak) and
``.severities`` (``category:severity`` for every graded category).

Detection: Azure input lines cannot be told from OpenAI's, so only a result line decides
(:meth:`batchtrace.plan.FormatChoice.refine` moves a batch detected as OpenAI to Azure).
"""

from __future__ import annotations

from typing import ClassVar

from batchtrace.extract.base import ExtractContext, JsonObject, as_dict, as_list, as_str, loads_maybe
from batchtrace.extract.openai import OpenAIAdapter
from batchtrace.record import Failure, Record

CONTENT_FILTER = "content_filter"
#: ``innererror.code`` of a request Azure refused under its Responsible AI policy.
POLICY_VIOLATION = "ResponsibleAIPolicyViolation"


def _body_of(line: JsonObject) -> JsonObject:
    return as_dict(loads_maybe(as_dict(line.get("response")).get("body")))


def _choice_filters(body: JsonObject) -> list[JsonObject]:
    return [as_dict(as_dict(choice).get("content_filter_results")) for choice in as_list(body.get("choices"))]


def _prompt_filters(body: JsonObject) -> list[JsonObject]:
    """The prompt's filter results: from a success body, or from a content-filter error's innererror."""
    inner = as_dict(as_dict(as_dict(body.get("error")).get("innererror")).get("content_filter_result"))
    found = [
        as_dict(as_dict(item).get("content_filter_results")) for item in as_list(body.get("prompt_filter_results"))
    ]
    return [result for result in [*found, inner] if result]


def _policy_violation(body: JsonObject | None) -> bool:
    error = as_dict(as_dict(body).get("error"))
    return error.get("code") == CONTENT_FILTER or as_dict(error.get("innererror")).get("code") == POLICY_VIOLATION


def filter_summary(results: list[JsonObject]) -> dict[str, list[str]]:
    """``{filtered, detected, severities}`` over several ``content_filter_results`` (empty lists left out)."""
    filtered: list[str] = []
    detected: list[str] = []
    severities: list[str] = []
    for result in results:
        for category, verdict in result.items():
            verdict = as_dict(verdict)
            if verdict.get("filtered") is True and category not in filtered:
                filtered.append(category)
            if verdict.get("detected") is True and category not in detected:
                detected.append(category)
            severity = as_str(verdict.get("severity"))
            if severity:
                severities.append(f"{category}:{severity}")
    summary = {"filtered": filtered, "detected": detected, "severities": severities}
    return {key: value for key, value in summary.items() if value}


class AzureOpenAIAdapter(OpenAIAdapter):
    """OpenAI's adapter with Azure's provider name, detection and content-filter results."""

    name: ClassVar[str] = "azure"
    provider: ClassVar[str] = "azure.ai.openai"
    detect_order: ClassVar[int] = 80
    aliases: ClassVar[tuple[str, ...]] = ("azure_openai",)

    def is_request(self, line: JsonObject) -> bool:
        """Never: Azure's input lines are OpenAI's; the first result line refines the choice."""
        return False

    def is_result(self, line: JsonObject) -> bool:
        """A result line whose body carries Azure's filter results (or its policy-violation error)."""
        if self.result_id(line, 0) is None:
            return False
        body = _body_of(line)
        choices = [choice for choice in as_list(body.get("choices")) if isinstance(choice, dict)]
        if "prompt_filter_results" in body or any("content_filter_results" in choice for choice in choices):
            return True
        inner = as_dict(as_dict(body.get("error")).get("innererror"))
        return inner.get("code") == POLICY_VIOLATION

    def failure_of(self, result: JsonObject, body: JsonObject | None, status: int | None) -> Failure | None:
        """OpenAI's failures, with a refused prompt typed ``content_filter`` whatever its ``code`` says."""
        failure = super().failure_of(result, body, status)
        if failure is not None and _policy_violation(body):
            failure.type = CONTENT_FILTER
        return failure

    def extract(
        self, custom_id: str, request: JsonObject | None, result: JsonObject | None, ctx: ExtractContext
    ) -> Record:
        record = super().extract(custom_id, request, result, ctx)
        if result is None:
            return record
        body = _body_of(result)
        for side, results in (("prompt", _prompt_filters(body)), ("completion", _choice_filters(body))):
            for key, values in filter_summary(results).items():
                record.extra[f"azure.content_filter.{side}.{key}"] = values
        return record


ADAPTER = AzureOpenAIAdapter()
