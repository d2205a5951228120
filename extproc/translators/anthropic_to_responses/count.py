"""The Anthropic client -> OpenAI Responses target count translator: `count_tokens` as `input_tokens`."""

from __future__ import annotations

from typing import Any

from extproc.translators.anthropic_to_openai import AnthropicToOpenAI
from extproc.translators.anthropic_to_openai.request import translate_request
from extproc.translators.anthropic_to_responses.request import responses_request
from extproc.translators.counting import CountPair, without
from switchyard.contract import WireApi


class AnthropicToResponsesCount(CountPair):
    """Errors and statuses as for messages to OpenAI (the chat pair's): OpenAI answers both APIs' errors alike."""

    def __init__(self) -> None:
        super().__init__(AnthropicToOpenAI(), provider_api=WireApi.RESPONSES)

    def count_request(self, body: dict[str, Any], target_model: str) -> dict[str, Any]:
        # `thinking` sets how the model may reason, which adds no input: the chat pair would refuse it.
        return responses_request(translate_request(without(body, "speed", "thinking"), target_model))
