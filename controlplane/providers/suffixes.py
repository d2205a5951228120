"""A target's URL suffix against the endpoints its route exposes: decided once per config, at load time.

A suffix names one upstream path for every call to its target. When that path serves another endpoint than
the one an attempt needs (a chat call to `/v1/engines/gpt-4/completions`), the answer would come back in
another shape than the client asked for (a `text_completion` to a chat client, which the OpenAI SDK reads as an
empty message). So such a target is not used for that endpoint: its route's other targets serve it, or, when
none can, the client gets a 400 saying no target of the model serves that endpoint. controlplane/suffix_check.py
tells the operator at `validate` and `up`, with the YAML line.
"""

from __future__ import annotations

from switchyard.config import ClientEndpoint, Target
from switchyard.config.endpoint_paths import endpoint_of_path
from switchyard.contract import WireApi

# What a client's call becomes at a provider of another API: chat completions, messages and Responses translate,
# and so do the token counts of the two APIs that count (Anthropic's and OpenAI's Responses API).
_TRANSLATED = {
    (ClientEndpoint.CHAT, WireApi.ANTHROPIC): ClientEndpoint.MESSAGES,
    (ClientEndpoint.MESSAGES, WireApi.OPENAI): ClientEndpoint.CHAT,
    (ClientEndpoint.RESPONSES, WireApi.ANTHROPIC): ClientEndpoint.MESSAGES,
    (ClientEndpoint.RESPONSES, WireApi.OPENAI): ClientEndpoint.CHAT,
    (ClientEndpoint.MESSAGES_COUNT_TOKENS, WireApi.RESPONSES): ClientEndpoint.RESPONSES_INPUT_TOKENS,
    (ClientEndpoint.RESPONSES_INPUT_TOKENS, WireApi.ANTHROPIC): ClientEndpoint.MESSAGES_COUNT_TOKENS,
}


def needed_endpoint(endpoint: ClientEndpoint, provider_api: WireApi) -> ClientEndpoint | None:
    """The provider endpoint an attempt from a client of `endpoint` goes to; None when the path cannot say."""
    if endpoint.api == provider_api:
        return endpoint
    return _TRANSLATED.get((endpoint, provider_api))


def suffix_fits(path: str, endpoint: ClientEndpoint, target: Target, provider_api: WireApi) -> bool:
    """Whether the upstream `path` of a target can serve a client's call to `endpoint`. Paths without a suffix
    are the adapter's own, right by construction; a suffixed path that names no endpoint is taken on trust."""
    if not target.suffix:
        return True
    serves = endpoint_of_path(path)
    return serves is None or serves is needed_endpoint(endpoint, provider_api)
