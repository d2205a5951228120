"""One module per provider kind, each implementing the same narrow interface (`base.ProviderAdapter`).

The control plane asks them once per config version (controlplane/attempt_rewrite.py); Envoy then applies the
answers on every attempt without knowing which provider it talks to.
"""

from __future__ import annotations

from controlplane.providers import anthropic, azure_openai, bedrock, gemini, openai, openai_compatible
from controlplane.providers.base import MANAGED_HEADERS, SIGNATURE_HEADERS, ProviderAdapter
from switchyard.config import ProviderKind

ADAPTERS: dict[ProviderKind, ProviderAdapter] = {
    ProviderKind.OPENAI: openai.ADAPTER,
    ProviderKind.AZURE_OPENAI: azure_openai.ADAPTER,
    ProviderKind.OPENAI_COMPATIBLE: openai_compatible.ADAPTER,
    ProviderKind.ANTHROPIC: anthropic.ADAPTER,
    ProviderKind.GEMINI: gemini.ADAPTER,
    ProviderKind.BEDROCK: bedrock.ADAPTER,
}

__all__ = ["ADAPTERS", "MANAGED_HEADERS", "SIGNATURE_HEADERS", "ProviderAdapter"]
