"""The Anthropic client -> OpenAI target translator, as `base.translator_for` hands it out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extproc.translators.anthropic_to_openai.request import UNSUPPORTED, translate_request
from extproc.translators.anthropic_to_openai.response import translate_completion
from extproc.translators.anthropic_to_openai.stream import AnthropicEventStream
from extproc.translators.base import PairTranslator
from extproc.translators.errors import openai_response_to_anthropic
from extproc.translators.wire import dumps, loads_object
from switchyard.contract import WireApi


class AnthropicToOpenAI(PairTranslator):
    """Client speaks Anthropic messages, target speaks OpenAI chat."""

    client_api = WireApi.ANTHROPIC
    provider_api = WireApi.OPENAI
    may_refuse = frozenset(UNSUPPORTED) - {"temperature"}

    def request(self, body: dict[str, Any], target_model: str) -> dict[str, Any]:
        return translate_request(body, target_model)

    def client_status(self, provider_status: int) -> int:
        return provider_status

    def _error_response(self, status: int, body: bytes, content_type: str) -> tuple[int, bytes]:
        return openai_response_to_anthropic(status, body, content_type)

    def _success_body(self, body: bytes, client_model: str) -> bytes:
        return dumps(translate_completion(loads_object(body), client_model))

    def stream(self, target_model: str, client_model: str, client_request: Mapping[str, Any]) -> AnthropicEventStream:
        return AnthropicEventStream(client_model)
