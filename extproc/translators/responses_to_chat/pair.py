"""The Responses client -> chat completions target translator, as `base.translator_for` hands it out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extproc.translators.anthropic_to_openai import AnthropicToOpenAI
from extproc.translators.responses_to_anthropic import json_schema, reasoning_effort
from extproc.translators.responses_via_anthropic import ResponsesViaAnthropic

JSON = dict[str, Any]


class ResponsesToChat(ResponsesViaAnthropic):
    """Client speaks OpenAI's Responses API, target speaks OpenAI chat completions."""

    def __init__(self) -> None:
        super().__init__(AnthropicToOpenAI())

    def _add_past_anthropic(self, request: JSON, body: Mapping[str, Any]) -> JSON:
        text = body.get("text")
        schema = json_schema(text)
        if schema is not None:
            fmt = text["format"] if isinstance(text, dict) else {}
            spec: JSON = {"name": fmt.get("name") or "response", "schema": schema}
            if fmt.get("strict") is not None:
                spec["strict"] = fmt["strict"]
            request["response_format"] = {"type": "json_schema", "json_schema": spec}
        effort = reasoning_effort(body.get("reasoning"))
        if effort is not None:
            request["reasoning_effort"] = effort
        return request
