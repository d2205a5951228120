"""The narrow interface every provider kind implements: its wire API, and per target the upstream path, the
stream path, the credential headers, the body's model and the signing facts."""

from __future__ import annotations

from typing import Protocol

from switchyard.config import ClientEndpoint, Provider, Target
from switchyard.contract import WireApi

# Every header any provider adapter sets: credentials, and the API version Anthropic wants. Each attempt
# removes the ones its target does not set, so a backup never receives the primary's key (Envoy keeps header
# changes across retries) and no provider ever receives the client's own gateway credentials.
MANAGED_HEADERS = ("authorization", "api-key", "x-api-key", "anthropic-version", "x-goog-api-key")
# Headers the ext_proc's SigV4 signature adds (Bedrock); every attempt removes them, like the credentials, so
# a later attempt to another provider does not carry a signature for the earlier one.
SIGNATURE_HEADERS = ("x-amz-date", "x-amz-security-token")


class ProviderAdapter(Protocol):
    # The wire API the provider speaks. When it differs from the client's, the ext_proc translates the attempt
    # both ways (extproc/translators/).
    api: WireApi

    def wire_api(self, endpoint: ClientEndpoint, provider: Provider) -> WireApi:
        """The API the provider speaks for a client call to `endpoint`: `api`, except that OpenAI's kinds answer
        Responses calls in the Responses API where they have it."""
        ...

    def upstream_path(self, endpoint: ClientEndpoint, target: Target, provider: Provider) -> str | None:
        """The upstream :path (query included) for a client call to `endpoint`; None when the provider has no
        equivalent (an Anthropic target for an embeddings call)."""
        ...

    def stream_path(self, endpoint: ClientEndpoint, target: Target, provider: Provider) -> str | None:
        """The upstream :path for a streamed call, when the provider streams at another path than
        `upstream_path` (Gemini); None when the body alone asks for a stream. Only translated attempts may
        have one: the ext_proc, which reads the body, switches the path (extproc/exchange.py)."""
        ...

    def auth_headers(self, provider: Provider) -> dict[str, str]:
        """Headers carrying the provider credential; empty when the provider needs none."""
        ...

    def body_model(self, target: Target) -> str:
        """The `model` to write into the request body; empty to leave the body untouched."""
        ...

    def signing(self, provider: Provider) -> dict[str, str]:
        """For providers whose requests are signed over the final body (AWS SigV4): what the ext_proc signs
        with (`extproc/sigv4.py`); empty for providers that take a key in a header."""
        ...


def count_path(target: Target, provider: Provider, parent_tail: str, count_tail: str) -> str | None:
    """A suffixed target's token-counting path: its suffix with `count_tail` after `parent_tail` (the query
    kept), when the suffix names the endpoint counting belongs to (`.../messages` → `.../messages/count_tokens`);
    None otherwise, as such a suffix says nothing about where its provider counts."""
    path, _, query = (provider.path_prefix + (target.suffix or "")).partition("?")
    if not path.rstrip("/").endswith(parent_tail):
        return None
    return path.rstrip("/") + count_tail + (f"?{query}" if query else "")


def join_path(provider: Provider, path: str) -> str:
    """base_url path + endpoint path, tolerating a base_url that already ends in /v1 (as vLLM/Ollama docs show)."""
    prefix = provider.path_prefix
    if prefix.endswith("/v1") and path.startswith("/v1/"):
        prefix = prefix[: -len("/v1")]
    return prefix + path
