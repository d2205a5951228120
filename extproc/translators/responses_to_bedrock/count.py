"""A Responses client's `input_tokens` call on a Bedrock target: CountTokens around the Converse request the
pair would send."""

from __future__ import annotations

from typing import Any

from extproc.translators.anthropic_to_bedrock.count import count_tokens_request
from extproc.translators.counting import CountPair
from extproc.translators.responses_to_bedrock.pair import ResponsesToBedrock


class ResponsesToBedrockCount(CountPair):
    def __init__(self) -> None:
        self._converse = ResponsesToBedrock()
        super().__init__(self._converse)

    def count_request(self, body: dict[str, Any], target_model: str) -> dict[str, Any]:
        return count_tokens_request(self._converse.request(body, target_model))
