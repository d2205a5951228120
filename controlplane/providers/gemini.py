"""Google's Gemini API: the model and the method are in the path, the key in `x-goog-api-key`.

Both client APIs reach it translated (extproc/translators/*_to_gemini). A whole answer comes from
`models/{model}:generateContent`, a stream from `:streamGenerateContent?alt=sse` (server-sent events): the
path depends on the body's `stream`, so the ext_proc, which reads the body, switches to `stream_path`.
Gemini has no text-completion endpoint, and its embeddings API is another shape: chat calls only, and token
counts from `models/{model}:countTokens` (whose `generateContentRequest` is a whole generateContent request).
"""

from __future__ import annotations

from urllib.parse import quote

from controlplane.providers.base import join_path
from switchyard.config import ClientEndpoint, Provider, Target
from switchyard.contract import WireApi

_SERVES = (ClientEndpoint.CHAT, ClientEndpoint.MESSAGES, ClientEndpoint.RESPONSES)
_COUNTS = (ClientEndpoint.MESSAGES_COUNT_TOKENS, ClientEndpoint.RESPONSES_INPUT_TOKENS)
API_VERSION_PATH = "/v1beta"


class GeminiAdapter:
    api = WireApi.GEMINI

    def wire_api(self, endpoint: ClientEndpoint, provider: Provider) -> WireApi:
        return self.api

    def upstream_path(self, endpoint: ClientEndpoint, target: Target, provider: Provider) -> str | None:
        if endpoint in _COUNTS:
            return self._path(target, provider, ":countTokens")
        return self._path(target, provider, ":generateContent") if endpoint in _SERVES else None

    def stream_path(self, endpoint: ClientEndpoint, target: Target, provider: Provider) -> str | None:
        return self._path(target, provider, ":streamGenerateContent?alt=sse") if endpoint in _SERVES else None

    def _path(self, target: Target, provider: Provider, method: str) -> str:
        if target.suffix:  # the path up to the method, e.g. /v1/models/gemini-2.5-pro
            return provider.path_prefix + target.suffix + method
        return join_path(provider, f"{API_VERSION_PATH}/models/{quote(target.model, safe='')}{method}")

    def auth_headers(self, provider: Provider) -> dict[str, str]:
        if provider.api_key is None:
            return {}
        return {"x-goog-api-key": provider.api_key.get_secret_value()}

    def body_model(self, target: Target) -> str:
        return target.model  # for the translator's records only: a Gemini body names no model

    def signing(self, provider: Provider) -> dict[str, str]:
        return {}


ADAPTER = GeminiAdapter()
