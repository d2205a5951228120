"""The OpenAI client -> Bedrock target translator, as `base.translator_for` hands it out."""

from __future__ import annotations

from typing import Any

from extproc.translators.anthropic_to_bedrock import AnthropicToBedrock
from extproc.translators.via_anthropic import ViaAnthropic

JSON = dict[str, Any]


class OpenAIToBedrock(ViaAnthropic):
    """Client speaks OpenAI chat, target speaks Bedrock Converse (through the Anthropic shape)."""

    # Converse passes temperature to the model, whose own range applies (up to 1 for some, more for others).
    _past_anthropic = ("temperature",)

    def __init__(self) -> None:
        super().__init__(AnthropicToBedrock())

    def _add_past_anthropic(self, request: JSON, passed: JSON) -> JSON:
        if "temperature" in passed:
            request.setdefault("inferenceConfig", {})["temperature"] = passed["temperature"]
        return request
