"""The Responses client -> Bedrock target translator, as `base.translator_for` hands it out.

Structured output and reasoning effort go to Converse's `outputConfig` (`textFormat` with the JSON schema as
text, `effort`), as botocore's service model defines them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from extproc.translators.anthropic_to_bedrock import AnthropicToBedrock
from extproc.translators.responses_to_anthropic import json_schema, reasoning_effort
from extproc.translators.responses_via_anthropic import ResponsesViaAnthropic

JSON = dict[str, Any]

# Responses effort -> Converse effort (low, medium, high, xhigh, max; no "minimal")
_EFFORT = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh"}


class ResponsesToBedrock(ResponsesViaAnthropic):
    """Client speaks OpenAI's Responses API, target speaks Bedrock Converse."""

    def __init__(self) -> None:
        super().__init__(AnthropicToBedrock())

    def _add_past_anthropic(self, request: JSON, body: Mapping[str, Any]) -> JSON:
        output: JSON = {}
        text = body.get("text")
        schema = json_schema(text)
        if schema is not None:
            fmt = text["format"] if isinstance(text, dict) else {}
            spec: JSON = {"schema": json.dumps(schema, ensure_ascii=False), "name": fmt.get("name") or "response"}
            if fmt.get("description"):
                spec["description"] = fmt["description"]
            output["textFormat"] = {"type": "json_schema", "structure": {"jsonSchema": spec}}
        effort = reasoning_effort(body.get("reasoning"))
        if effort is not None:
            output["effort"] = _EFFORT[effort]
        if output:
            request["outputConfig"] = output
        return request
