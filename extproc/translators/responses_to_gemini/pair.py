"""The Responses client -> Gemini target translator, as `base.translator_for` hands it out.

Structured output goes to `generationConfig.responseJsonSchema` (with `responseMimeType: application/json`),
reasoning effort to `generationConfig.thinkingConfig.thinkingLevel`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extproc.translators.anthropic_to_gemini import AnthropicToGemini
from extproc.translators.responses_to_anthropic import json_schema, reasoning_effort
from extproc.translators.responses_via_anthropic import ResponsesViaAnthropic

JSON = dict[str, Any]

# Responses effort -> Gemini thinkingLevel (which has no "xhigh": the nearest is "high")
_THINKING_LEVEL = {"minimal": "minimal", "low": "low", "medium": "medium", "high": "high", "xhigh": "high"}


class ResponsesToGemini(ResponsesViaAnthropic):
    """Client speaks OpenAI's Responses API, target speaks Gemini generateContent."""

    def __init__(self) -> None:
        super().__init__(AnthropicToGemini())

    def _add_past_anthropic(self, request: JSON, body: Mapping[str, Any]) -> JSON:
        generation: JSON = request.get("generationConfig", {})
        schema = json_schema(body.get("text"))
        if schema is not None:
            generation.update({"responseMimeType": "application/json", "responseJsonSchema": schema})
        effort = reasoning_effort(body.get("reasoning"))
        if effort is not None:
            generation["thinkingConfig"] = {"thinkingLevel": _THINKING_LEVEL[effort]}
        if generation:
            request["generationConfig"] = generation
        return request
