"""An Anthropic client's token count on a Gemini target: countTokens with a `generateContentRequest`, the
request the pair would send, so system instruction and tools are counted as well (plain `contents` would
leave them out)."""

from __future__ import annotations

from typing import Any

from extproc.translators.anthropic_to_gemini.pair import AnthropicToGemini
from extproc.translators.anthropic_to_gemini.request import translate_request
from extproc.translators.counting import CountPair, without

JSON = dict[str, Any]


def count_tokens_request(generate: JSON, target_model: str) -> JSON:
    """The countTokens body for a generateContent request; that request names its model (`models/{model}`)."""
    return {"generateContentRequest": {"model": f"models/{target_model}", **generate}}


class AnthropicToGeminiCount(CountPair):
    def __init__(self) -> None:
        super().__init__(AnthropicToGemini())

    def count_request(self, body: dict[str, Any], target_model: str) -> JSON:
        return count_tokens_request(translate_request(without(body, "speed"), target_model), target_model)
