"""Token counts across APIs: a client's count request, answered by the target's own counting API.

A count request is the request the client would send to generate (messages or Responses input, system prompt,
tools), minus what only generation reads (max_tokens, sampling, stream). So each pair's count translator
translates the body with the pair's message translator, then wraps or trims it into the provider's count
request (Bedrock's CountTokens takes a Converse request, Gemini's countTokens a whole generateContent request).
The provider answers one number; the client gets it in its own count shape. Errors, and the status Envoy's
fallback goes by, are the message pair's: a count fails the way a message would.

A count generates nothing, so its answer carries no `usage`: usage accounting records the call with no tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extproc.translators.base import StreamTranslator, Translator, UnsupportedParameterError
from extproc.translators.errors import anthropic_error, openai_error
from extproc.translators.wire import dumps, loads_object
from switchyard.contract import WireApi

JSON = dict[str, Any]

# Where each provider's count answer has its number.
_PROVIDER_COUNT = {
    WireApi.ANTHROPIC: "input_tokens",  # MessageTokensCount
    WireApi.RESPONSES: "input_tokens",  # InputTokenCountResponse
    WireApi.BEDROCK: "inputTokens",  # CountTokensResponse
    WireApi.GEMINI: "totalTokens",  # CountTokensResponse
}


class TokenCountStreamError(RuntimeError):
    """A token count was asked to stream: the count translators refuse such requests before they leave."""


def client_count(client_api: WireApi, tokens: int) -> JSON:
    """The count in the client's shape: Anthropic's `MessageTokensCount`, OpenAI's `InputTokenCountResponse`."""
    if client_api == WireApi.RESPONSES:
        return {"object": "response.input_tokens", "input_tokens": tokens}
    return {"input_tokens": tokens}


class CountPair:
    """The count translator of one (client API, provider API) pair; subclasses build the provider's request."""

    client_api: WireApi
    provider_api: WireApi
    # Counting flags nothing of its own: a parameter the message pair may refuse is flagged for it already.
    may_refuse: frozenset[str] = frozenset()

    def __init__(self, messages: Translator, provider_api: WireApi | None = None) -> None:
        self._messages = messages  # the pair's message translator: its errors and statuses are the count's
        self.client_api = messages.client_api
        self.provider_api = provider_api or messages.provider_api

    def request(self, body: dict[str, Any], target_model: str) -> dict[str, Any]:
        if body.get("stream") is True:
            raise UnsupportedParameterError("stream", "a token count is answered whole")
        return self.count_request({k: v for k, v in body.items() if k != "stream"}, target_model)

    def count_request(self, body: dict[str, Any], target_model: str) -> JSON:
        raise NotImplementedError

    def provider_status(self, status: int, headers: Mapping[str, str]) -> int:
        return self._messages.provider_status(status, headers)

    def client_status(self, provider_status: int) -> int:
        return self._messages.client_status(provider_status)

    def response(self, status: int, body: bytes, content_type: str, client_model: str) -> tuple[int, bytes]:
        if not 200 <= status < 300:
            return self._messages.response(status, body, content_type, client_model)
        answer = loads_object(body)
        tokens = answer.get(_PROVIDER_COUNT[self.provider_api]) if answer else None
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
            message = "upstream answered a token count without a count"
            if self.client_api == WireApi.ANTHROPIC:
                return 502, dumps(anthropic_error(message, status=502))
            return 502, dumps(openai_error(message, status=502))
        return status, dumps(client_count(self.client_api, tokens))

    def stream(self, target_model: str, client_model: str, client_request: Mapping[str, Any]) -> StreamTranslator:
        raise TokenCountStreamError("a token count does not stream")


def without(body: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """`body` without members that change how a model generates, never what it reads (Anthropic's `speed`)."""
    return {k: v for k, v in body.items() if k not in names}
