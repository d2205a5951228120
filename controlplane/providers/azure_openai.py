"""Azure OpenAI: the deployment (our target model) is in the path, `api-version` in the query, `api-key` header.

The Responses API is the exception, as Microsoft documents it: only on the v1 API, `/openai/v1/responses`,
with the deployment as the body's `model` and no `api-version` (the v1 API has none). Azure has no token
counting (its v1 API answers `/responses/input_tokens` with 404), so its targets serve no counting endpoint.
"""

from __future__ import annotations

from controlplane.providers.base import join_path
from switchyard.config import ClientEndpoint, Provider, Target
from switchyard.contract import WireApi

DEFAULT_API_VERSION = "2024-10-21"
RESPONSES_PATH = "/openai/v1/responses"

_OPERATIONS = {
    ClientEndpoint.CHAT: "chat/completions",
    ClientEndpoint.COMPLETIONS: "completions",
    ClientEndpoint.EMBEDDINGS: "embeddings",
    ClientEndpoint.MESSAGES: "chat/completions",  # an Anthropic client's call, translated
}


class AzureOpenAIAdapter:
    api = WireApi.OPENAI

    def wire_api(self, endpoint: ClientEndpoint, provider: Provider) -> WireApi:
        return WireApi.RESPONSES if endpoint is ClientEndpoint.RESPONSES else self.api

    def upstream_path(self, endpoint: ClientEndpoint, target: Target, provider: Provider) -> str | None:
        if endpoint.counts_tokens:
            return None
        if endpoint is ClientEndpoint.RESPONSES:
            return provider.path_prefix + target.suffix if target.suffix else join_path(provider, RESPONSES_PATH)
        version = provider.api_version or DEFAULT_API_VERSION
        if target.suffix:
            path = provider.path_prefix + target.suffix
        else:
            path = join_path(provider, f"/openai/deployments/{target.model}/{_OPERATIONS[endpoint]}")
        if "api-version=" in path:
            return path
        return f"{path}{'&' if '?' in path else '?'}api-version={version}"

    def stream_path(self, endpoint: ClientEndpoint, target: Target, provider: Provider) -> str | None:
        return None  # the body's `stream: true` asks for a stream

    def auth_headers(self, provider: Provider) -> dict[str, str]:
        if provider.api_key is None:
            return {}
        return {"api-key": provider.api_key.get_secret_value()}

    def body_model(self, target: Target) -> str:
        # Azure picks the model from the deployment in the path; the body's model is ignored but harmless.
        return target.model

    def signing(self, provider: Provider) -> dict[str, str]:
        return {}


ADAPTER = AzureOpenAIAdapter()
