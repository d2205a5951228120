"""The Anthropic client -> Bedrock target translator, as `base.translator_for` hands it out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extproc.translators.anthropic_to_bedrock.request import translate_request
from extproc.translators.anthropic_to_bedrock.response import (
    bedrock_error_to_anthropic,
    client_status,
    provider_status,
    translate_response,
)
from extproc.translators.anthropic_to_bedrock.stream import AnthropicFromBedrockStream
from extproc.translators.base import PairTranslator
from extproc.translators.wire import dumps, loads_object
from switchyard.contract import WireApi


class AnthropicToBedrock(PairTranslator):
    """Client speaks Anthropic messages, target speaks Bedrock Converse."""

    client_api = WireApi.ANTHROPIC
    provider_api = WireApi.BEDROCK
    may_refuse: frozenset[str] = frozenset()  # every Anthropic parameter has a Converse equivalent or no effect

    def request(self, body: dict[str, Any], target_model: str) -> dict[str, Any]:
        return translate_request(body, target_model)

    def provider_status(self, status: int, headers: Mapping[str, str]) -> int:
        return provider_status(status, headers.get("x-amzn-errortype", ""))

    def client_status(self, provider_status: int) -> int:
        return client_status(provider_status)

    def _error_response(self, status: int, body: bytes, content_type: str) -> tuple[int, bytes]:
        return bedrock_error_to_anthropic(status, body, content_type)

    def _success_body(self, body: bytes, client_model: str) -> bytes:
        return dumps(translate_response(loads_object(body), client_model))

    def stream(
        self, target_model: str, client_model: str, client_request: Mapping[str, Any]
    ) -> AnthropicFromBedrockStream:
        return AnthropicFromBedrockStream(client_model)
