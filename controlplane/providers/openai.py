"""OpenAI itself: bearer key, same paths as the client called, model name in the body."""

from __future__ import annotations

from controlplane.providers.base import join_path
from switchyard.config import ClientEndpoint, Provider, Target


class OpenAIAdapter:
    def upstream_path(self, endpoint: ClientEndpoint, target: Target, provider: Provider) -> str:
        if target.suffix:
            return provider.path_prefix + target.suffix
        return join_path(provider, endpoint.path)

    def auth_headers(self, provider: Provider) -> dict[str, str]:
        if provider.api_key is None:
            return {}
        return {"authorization": f"Bearer {provider.api_key.get_secret_value()}"}

    def body_model(self, target: Target) -> str:
        return target.model


ADAPTER = OpenAIAdapter()
