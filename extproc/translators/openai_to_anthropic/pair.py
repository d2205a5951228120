"""The OpenAI client -> Anthropic target translator, as `base.translator_for` hands it out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extproc.translators.base import PairTranslator
from extproc.translators.errors import anthropic_response_to_openai, openai_status
from extproc.translators.openai_to_anthropic.request import UNSUPPORTED, for_messages_api, translate_request
from extproc.translators.openai_to_anthropic.response import translate_message
from extproc.translators.openai_to_anthropic.stream import OpenAIChunkStream
from extproc.translators.wire import dumps, loads_object
from switchyard.contract import WireApi


class OpenAIToAnthropic(PairTranslator):
    """Client speaks OpenAI chat, target speaks Anthropic messages."""

    client_api = WireApi.OPENAI
    provider_api = WireApi.ANTHROPIC
    may_refuse = frozenset(UNSUPPORTED)

    def request(self, body: dict[str, Any], target_model: str) -> dict[str, Any]:
        return for_messages_api(translate_request(body, target_model))

    def client_status(self, provider_status: int) -> int:
        return openai_status(provider_status)

    def _error_response(self, status: int, body: bytes, content_type: str) -> tuple[int, bytes]:
        return anthropic_response_to_openai(status, body, content_type)

    def _success_body(self, body: bytes, client_model: str) -> bytes:
        return dumps(translate_message(loads_object(body), client_model))

    def stream(self, target_model: str, client_model: str, client_request: Mapping[str, Any]) -> OpenAIChunkStream:
        options = client_request.get("stream_options")
        return OpenAIChunkStream(client_model, isinstance(options, dict) and options.get("include_usage") is True)
