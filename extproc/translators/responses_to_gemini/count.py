"""A Responses client's `input_tokens` call on a Gemini target: countTokens around the generateContent request
the pair would send."""

from __future__ import annotations

from typing import Any

from extproc.translators.anthropic_to_gemini.count import count_tokens_request
from extproc.translators.counting import CountPair
from extproc.translators.responses_to_gemini.pair import ResponsesToGemini


class ResponsesToGeminiCount(CountPair):
    def __init__(self) -> None:
        self._generate = ResponsesToGemini()
        super().__init__(self._generate)

    def count_request(self, body: dict[str, Any], target_model: str) -> dict[str, Any]:
        return count_tokens_request(self._generate.request(body, target_model), target_model)
