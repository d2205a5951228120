"""One module per provider kind, each implementing the same narrow interface (`base.ProviderAdapter`).

The control plane asks them once per config version (controlplane/attempt_rewrite.py); Envoy then applies the
answers on every attempt without knowing which provider it talks to.
"""

from __future__ import annotations

from controlplane.providers import anthropic, azure_openai, bedrock, gemini, openai, openai_compatible
from controlplane.providers.base import MANAGED_HEADERS, SIGNATURE_HEADERS, ProviderAdapter
from controlplane.providers.suffixes import suffix_fits
from switchyard.config import ClientEndpoint, Provider, ProviderKind, Target

ADAPTERS: dict[ProviderKind, ProviderAdapter] = {
    ProviderKind.OPENAI: openai.ADAPTER,
    ProviderKind.AZURE_OPENAI: azure_openai.ADAPTER,
    ProviderKind.OPENAI_COMPATIBLE: openai_compatible.ADAPTER,
    ProviderKind.ANTHROPIC: anthropic.ADAPTER,
    ProviderKind.GEMINI: gemini.ADAPTER,
    ProviderKind.BEDROCK: bedrock.ADAPTER,
}


def upstream_path(endpoint: ClientEndpoint, target: Target, provider: Provider) -> str | None:
    """The adapter's upstream path for a client's call to `endpoint`, or None when the target cannot serve it:
    the provider has no such endpoint, or the target's suffix names another one (providers/suffixes.py)."""
    adapter = ADAPTERS[provider.kind]
    path = adapter.upstream_path(endpoint, target, provider)
    if path is None or not suffix_fits(path, endpoint, target, adapter.wire_api(endpoint, provider)):
        return None
    return path


__all__ = ["ADAPTERS", "MANAGED_HEADERS", "SIGNATURE_HEADERS", "ProviderAdapter", "upstream_path"]
