"""vLLM, Ollama, LM Studio and the like: OpenAI's wire format, with the key optional.

Chat completions are what every such server has; the Responses API only some. Responses calls therefore go
to `/v1/chat/completions`, translated by the ext_proc, unless the provider says `responses_api: true`.
"""

from __future__ import annotations

from controlplane.providers.openai import OpenAIAdapter
from switchyard.config import Provider


class OpenAICompatibleAdapter(OpenAIAdapter):
    """OpenAI's behaviour; the key being optional lives in the config's validation."""

    def has_responses(self, provider: Provider) -> bool:
        return provider.responses_api


ADAPTER = OpenAICompatibleAdapter()
