"""vLLM, Ollama, LM Studio and the like: OpenAI's wire format, with the key optional.

Chat completions are what every such server has; the Responses API only some. Responses calls therefore go
to `/v1/chat/completions`, translated by the ext_proc, unless the provider says `responses_api: true`.
Token counting (`/v1/responses/input_tokens`) is OpenAI's own: such servers do not have it (vLLM, Ollama and
LM Studio do not, even those with a Responses API), so their targets serve no counting endpoint.
"""

from __future__ import annotations

from controlplane.providers.openai import OpenAIAdapter
from switchyard.config import Provider


class OpenAICompatibleAdapter(OpenAIAdapter):
    """OpenAI's behaviour; the key being optional lives in the config's validation."""

    def has_responses(self, provider: Provider) -> bool:
        return provider.responses_api

    def counts_tokens(self, provider: Provider) -> bool:
        return False


ADAPTER = OpenAICompatibleAdapter()
