"""AWS Bedrock Runtime's Converse API: the model in the path, each attempt signed with SigV4.

Both client APIs reach it translated (extproc/translators/*_to_bedrock). A whole answer comes from
`/model/{modelId}/converse`, a stream (AWS's binary event stream) from `/model/{modelId}/converse-stream`:
the ext_proc, which reads the body, switches to `stream_path`. The signature covers the body, which is only
final after the translation, so the ext_proc signs (extproc/sigv4.py) with the credentials `signing` gives
it on each attempt; Envoy sets no credential header for this provider. Chat calls, and token counts from
`/model/{modelId}/count-tokens` (CountTokens, whose input wraps a Converse request), both translated.
"""

from __future__ import annotations

from urllib.parse import quote

from controlplane.providers.base import join_path
from switchyard.config import ClientEndpoint, Provider, Target
from switchyard.contract import WireApi

_SERVES = (ClientEndpoint.CHAT, ClientEndpoint.MESSAGES, ClientEndpoint.RESPONSES)
_COUNTS = (ClientEndpoint.MESSAGES_COUNT_TOKENS, ClientEndpoint.RESPONSES_INPUT_TOKENS)
SERVICE = "bedrock"  # the SigV4 signing name of bedrock-runtime


class BedrockAdapter:
    api = WireApi.BEDROCK

    def wire_api(self, endpoint: ClientEndpoint, provider: Provider) -> WireApi:
        return self.api

    def upstream_path(self, endpoint: ClientEndpoint, target: Target, provider: Provider) -> str | None:
        if endpoint in _COUNTS:
            return self._path(target, provider, "/count-tokens")
        return self._path(target, provider, "/converse") if endpoint in _SERVES else None

    def stream_path(self, endpoint: ClientEndpoint, target: Target, provider: Provider) -> str | None:
        return self._path(target, provider, "/converse-stream") if endpoint in _SERVES else None

    def _path(self, target: Target, provider: Provider, operation: str) -> str:
        if target.suffix:  # the path up to the operation
            return provider.path_prefix + target.suffix + operation
        # Model ids hold `:` (`anthropic.claude-3-haiku-20240307-v1:0`) and ARNs `/`: one encoded path segment,
        # as AWS's SDKs send it.
        return join_path(provider, f"/model/{quote(target.model, safe='')}{operation}")

    def auth_headers(self, provider: Provider) -> dict[str, str]:
        return {}  # the signature is the ext_proc's, per attempt

    def body_model(self, target: Target) -> str:
        return target.model  # for the translator's records only: a Converse body names no model

    def signing(self, provider: Provider) -> dict[str, str]:
        if provider.access_key_id is None or provider.secret_access_key is None or provider.region is None:
            return {}
        credentials = {
            # The Host every attempt carries (Envoy rewrites it to the endpoint's hostname only after the
            # upstream filters, so the ext_proc cannot read it from the request).
            "host": provider.authority,
            "region": provider.region,
            "service": SERVICE,
            "access_key_id": provider.access_key_id.get_secret_value(),
            "secret_access_key": provider.secret_access_key.get_secret_value(),
        }
        if provider.session_token is not None:
            credentials["session_token"] = provider.session_token.get_secret_value()
        return credentials


ADAPTER = BedrockAdapter()
