"""Request: Anthropic -> OpenAI, the top-level parameters and which of them are refused.

The system prompt and messages are translated by `messages`, tool definitions and tool_choice by `tools`.
Prompt-cache markers (`cache_control`, on blocks and at the top level) are dropped: OpenAI caches prompt
prefixes by itself, and its explicit breakpoints exist only on its newest models, which compatible servers
would refuse. The cached tokens still come back in the answer's usage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extproc.translators.anthropic_to_openai.messages import translate_messages, translate_system
from extproc.translators.anthropic_to_openai.tools import translate_tools
from extproc.translators.params import Rules, always, output_schema, screen

JSON = dict[str, Any]

_COPIED = ("max_tokens", "temperature", "top_p")  # same name, same meaning in both APIs
UNSUPPORTED: Rules = {
    "top_k": (always, "top-k sampling is not supported for this model"),
    "thinking": (
        lambda thinking: not (isinstance(thinking, dict) and thinking.get("type") == "disabled"),
        "extended thinking is not supported for this model",
    ),
}
# What is translated, plus what does not change the answer (billing tier, caching), so needs no translation.
_TRANSLATED = frozenset({*_COPIED, "model", "messages", "system", "stop_sequences", "metadata", "tools", "tool_choice"})
_TRANSLATED |= {"stream", "service_tier", "cache_control", "output_config"}


def translate_request(body: Mapping[str, Any], target_model: str) -> JSON:
    params = screen(body, UNSUPPORTED, _TRANSLATED)
    messages = translate_system(params.get("system")) + translate_messages(params.get("messages"))
    out: JSON = {"model": target_model, "messages": messages}
    for name in _COPIED:
        if name in params:
            out[name] = params[name]
    if params.get("stop_sequences"):
        out["stop"] = params["stop_sequences"]
    metadata = params.get("metadata")
    if isinstance(metadata, dict) and metadata.get("user_id") is not None:
        out["user"] = metadata["user_id"]
    out.update(translate_tools(params))
    out.update(_output_config(params.get("output_config")))
    if params.get("stream"):
        # Usage only arrives in a final chunk when asked for; message_delta needs it for output_tokens.
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _output_config(config: Any) -> JSON:
    """Anthropic `output_config` -> OpenAI `reasoning_effort` (same five levels) and `response_format`.

    Anthropic constrains the output to the schema, so OpenAI is asked for the same (`strict`)."""
    if not isinstance(config, dict):
        return {}
    out: JSON = {}
    if config.get("effort") is not None:
        out["reasoning_effort"] = config["effort"]
    schema = output_schema(config)
    if schema is not None:
        json_schema = {"name": "output", "schema": schema, "strict": True}
        out["response_format"] = {"type": "json_schema", "json_schema": json_schema}
    return out
