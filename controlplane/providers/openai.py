"""OpenAI itself: bearer key, same paths as the client called, model name in the body.

Responses calls go to `/v1/responses` as they are: OpenAI has the Responses API, so nothing is translated.
Token counts come from `/v1/responses/input_tokens`, for Responses clients as they are and for Anthropic
clients' `count_tokens` calls translated.
"""

from __future__ import annotations

from controlplane.providers.base import count_path, join_path
from switchyard.config import ClientEndpoint, Provider, Target
from switchyard.contract import WireApi


class OpenAIAdapter:
    api = WireApi.OPENAI

    def wire_api(self, endpoint: ClientEndpoint, provider: Provider) -> WireApi:
        if endpoint.counts_tokens or (endpoint is ClientEndpoint.RESPONSES and self.has_responses(provider)):
            return WireApi.RESPONSES
        return self.api

    def has_responses(self, provider: Provider) -> bool:
        """Whether the provider has OpenAI's Responses API: OpenAI always does."""
        return True

    def counts_tokens(self, provider: Provider) -> bool:
        """Whether the provider counts tokens (`/v1/responses/input_tokens`): OpenAI does."""
        return True

    def upstream_path(self, endpoint: ClientEndpoint, target: Target, provider: Provider) -> str | None:
        if endpoint.counts_tokens:
            if not self.counts_tokens(provider):
                return None
            if target.suffix:
                return count_path(target, provider, "/responses", "/input_tokens")
            return join_path(provider, ClientEndpoint.RESPONSES_INPUT_TOKENS.path)
        if target.suffix:
            return provider.path_prefix + target.suffix
        if endpoint is ClientEndpoint.MESSAGES:  # an Anthropic client's call, translated to a chat completion
            endpoint = ClientEndpoint.CHAT
        if endpoint is ClientEndpoint.RESPONSES and not self.has_responses(provider):
            endpoint = ClientEndpoint.CHAT  # a Responses call, translated to a chat completion
        return join_path(provider, endpoint.path)

    def stream_path(self, endpoint: ClientEndpoint, target: Target, provider: Provider) -> str | None:
        return None  # the body's `stream: true` asks for a stream

    def auth_headers(self, provider: Provider) -> dict[str, str]:
        if provider.api_key is None:
            return {}
        return {"authorization": f"Bearer {provider.api_key.get_secret_value()}"}

    def body_model(self, target: Target) -> str:
        return target.model

    def signing(self, provider: Provider) -> dict[str, str]:
        return {}


ADAPTER = OpenAIAdapter()
