"""Anthropic's Messages API: `x-api-key` and `anthropic-version` headers, one endpoint for every chat call.

OpenAI clients' chat calls land here translated (extproc/translators/); Anthropic has no text-completion or
embeddings endpoint, so those calls have no path on this provider. Token counts come from
`/v1/messages/count_tokens`, for Anthropic clients as they are and for Responses clients' `input_tokens` calls
translated.
"""

from __future__ import annotations

from controlplane.providers.base import count_path, join_path
from switchyard.config import ClientEndpoint, Provider, Target
from switchyard.contract import WireApi

DEFAULT_API_VERSION = "2023-06-01"

_SERVES = (ClientEndpoint.MESSAGES, ClientEndpoint.CHAT, ClientEndpoint.RESPONSES)
_COUNTS = (ClientEndpoint.MESSAGES_COUNT_TOKENS, ClientEndpoint.RESPONSES_INPUT_TOKENS)


class AnthropicAdapter:
    api = WireApi.ANTHROPIC

    def wire_api(self, endpoint: ClientEndpoint, provider: Provider) -> WireApi:
        return self.api

    def upstream_path(self, endpoint: ClientEndpoint, target: Target, provider: Provider) -> str | None:
        if endpoint in _COUNTS:
            if target.suffix:
                return count_path(target, provider, "/messages", "/count_tokens")
            return join_path(provider, ClientEndpoint.MESSAGES_COUNT_TOKENS.path)
        if endpoint not in _SERVES:
            return None
        if target.suffix:
            return provider.path_prefix + target.suffix
        return join_path(provider, "/v1/messages")

    def stream_path(self, endpoint: ClientEndpoint, target: Target, provider: Provider) -> str | None:
        return None  # the body's `stream: true` asks for a stream

    def auth_headers(self, provider: Provider) -> dict[str, str]:
        version = {"anthropic-version": provider.api_version or DEFAULT_API_VERSION}
        if provider.api_key is None:
            return version
        return {"x-api-key": provider.api_key.get_secret_value(), **version}

    def body_model(self, target: Target) -> str:
        return target.model

    def signing(self, provider: Provider) -> dict[str, str]:
        return {}


ADAPTER = AnthropicAdapter()
