"""Which endpoint a provider URL path serves, told by how it ends (`.../chat/completions`, `.../messages`).

A target's `suffix` replaces the provider path for every call sent to it, so a suffix that names one endpoint
(`/v1/engines/gpt-4/completions`) would answer a chat call with a text completion: a shape the client cannot
read. The control plane uses this to keep such a target away from the other endpoints, and `validate` to say so.
"""

from __future__ import annotations

from switchyard.config.model import ClientEndpoint

# Longest first: `/chat/completions` also ends in `/completions`.
_TAILS = (
    ("/messages/count_tokens", ClientEndpoint.MESSAGES_COUNT_TOKENS),
    ("/responses/input_tokens", ClientEndpoint.RESPONSES_INPUT_TOKENS),
    ("/chat/completions", ClientEndpoint.CHAT),
    ("/completions", ClientEndpoint.COMPLETIONS),
    ("/embeddings", ClientEndpoint.EMBEDDINGS),
    ("/messages", ClientEndpoint.MESSAGES),
    ("/responses", ClientEndpoint.RESPONSES),
)


def endpoint_of_path(path: str) -> ClientEndpoint | None:
    """The endpoint an upstream path serves, by its last segments; None when the path does not tell (a Gemini
    model path, a Bedrock operation, a proxy's own route)."""
    bare = path.split("?", 1)[0].rstrip("/")
    for tail, endpoint in _TAILS:
        if bare.endswith(tail):
            return endpoint
    return None
