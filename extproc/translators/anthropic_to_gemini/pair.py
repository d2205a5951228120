"""The Anthropic client -> Gemini target translator, as `base.translator_for` hands it out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extproc.translators.anthropic_to_gemini.request import translate_request
from extproc.translators.anthropic_to_gemini.response import gemini_error_to_anthropic, translate_response
from extproc.translators.anthropic_to_gemini.stream import AnthropicFromGeminiStream
from extproc.translators.base import PairTranslator
from extproc.translators.wire import dumps, loads_object
from switchyard.contract import WireApi


class AnthropicToGemini(PairTranslator):
    """Client speaks Anthropic messages, target speaks Gemini generateContent."""

    client_api = WireApi.ANTHROPIC
    provider_api = WireApi.GEMINI
    may_refuse: frozenset[str] = frozenset()  # every Anthropic parameter has a Gemini equivalent or no effect

    def request(self, body: dict[str, Any], target_model: str) -> dict[str, Any]:
        return translate_request(body, target_model)

    def client_status(self, provider_status: int) -> int:
        return provider_status

    def _error_response(self, status: int, body: bytes, content_type: str) -> tuple[int, bytes]:
        return gemini_error_to_anthropic(status, body, content_type)

    def _success_body(self, body: bytes, client_model: str) -> bytes:
        return dumps(translate_response(loads_object(body), client_model))

    def stream(
        self, target_model: str, client_model: str, client_request: Mapping[str, Any]
    ) -> AnthropicFromGeminiStream:
        return AnthropicFromGeminiStream(client_model)
