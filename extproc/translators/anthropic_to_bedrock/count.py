"""An Anthropic client's token count on a Bedrock target: CountTokens, whose `input.converse` is the Converse
request the pair would send, without what only generation reads (inferenceConfig, outputConfig)."""

from __future__ import annotations

from typing import Any

from extproc.translators.anthropic_to_bedrock.pair import AnthropicToBedrock
from extproc.translators.anthropic_to_bedrock.request import translate_request
from extproc.translators.counting import CountPair, without

JSON = dict[str, Any]

# ConverseTokensRequest's members (botocore's bedrock-runtime model)
CONVERSE_TOKENS_MEMBERS = ("messages", "system", "toolConfig", "additionalModelRequestFields")


def count_tokens_request(converse: JSON) -> JSON:
    """The CountTokens body for a Converse request (the model id travels in the path, as for Converse)."""
    return {"input": {"converse": {k: converse[k] for k in CONVERSE_TOKENS_MEMBERS if k in converse}}}


class AnthropicToBedrockCount(CountPair):
    def __init__(self) -> None:
        super().__init__(AnthropicToBedrock())

    def count_request(self, body: dict[str, Any], target_model: str) -> JSON:
        return count_tokens_request(translate_request(without(body, "speed"), target_model))
