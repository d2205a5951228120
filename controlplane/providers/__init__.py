"""One module per provider kind, each answering the same three questions about a target.

The control plane asks them once per config version; the ext_proc then applies the answers on every
attempt without knowing which provider it talks to.
"""

from __future__ import annotations

from controlplane.providers import anthropic, azure_openai, openai, openai_compatible
from controlplane.providers.base import AUTH_HEADERS, ProviderAdapter
from switchyard.config import Config, ProviderKind, Route

ADAPTERS: dict[ProviderKind, ProviderAdapter] = {
    ProviderKind.OPENAI: openai.ADAPTER,
    ProviderKind.AZURE_OPENAI: azure_openai.ADAPTER,
    ProviderKind.OPENAI_COMPATIBLE: openai_compatible.ADAPTER,
    ProviderKind.ANTHROPIC: anthropic.ADAPTER,
}


def rewrites_body(config: Config, route: Route) -> bool:
    """Whether any target of the route changes the body of a same-API call; if none does, Envoy need not send
    the ext_proc bodies (the ext_proc asks for them when an attempt must be translated to another API)."""
    return any(ADAPTERS[config.provider_of(t).kind].body_model(t) not in ("", route.model) for t in route.targets)


__all__ = ["ADAPTERS", "AUTH_HEADERS", "ProviderAdapter", "rewrites_body"]
