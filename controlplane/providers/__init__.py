"""One module per provider kind, each answering the same three questions about a target.

The control plane asks them once per config version; the ext_proc then applies the answers on every
attempt without knowing which provider it talks to.
"""

from __future__ import annotations

from controlplane.providers import azure_openai, openai, openai_compatible
from controlplane.providers.base import AUTH_HEADERS, ProviderAdapter
from switchyard.config import ProviderKind

ADAPTERS: dict[ProviderKind, ProviderAdapter] = {
    ProviderKind.OPENAI: openai.ADAPTER,
    ProviderKind.AZURE_OPENAI: azure_openai.ADAPTER,
    ProviderKind.OPENAI_COMPATIBLE: openai_compatible.ADAPTER,
}

__all__ = ["ADAPTERS", "AUTH_HEADERS", "ProviderAdapter"]
