"""vLLM, Ollama, LM Studio and the like: OpenAI's wire format, with the key optional."""

from __future__ import annotations

from controlplane.providers.openai import OpenAIAdapter

# Same behaviour as OpenAI; only validation differs (the key is optional), which lives in the config.
ADAPTER = OpenAIAdapter()
