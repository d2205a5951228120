"""Request: Anthropic -> OpenAI, the top-level parameters and which of them are refused.

The system prompt and messages are translated by `messages`, tool definitions and tool_choice by `tools`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extproc.translators.anthropic_to_openai.messages import translate_messages, translate_system
from extproc.translators.anthropic_to_openai.tools import translate_tools
from extproc.translators.params import Rules, always, screen

JSON = dict[str, Any]

_COPIED = ("max_tokens", "temperature", "top_p")  # same name, same meaning in both APIs
UNSUPPORTED: Rules = {
    "top_k": (always, "top-k sampling is not supported for this model"),
    "thinking": (
        lambda thinking: not (isinstance(thinking, dict) and thinking.get("type") == "disabled"),
        "extended thinking is not supported for this model",
    ),
}
# What is translated, plus what does not change the answer (billing tier), so needs no translation.
_TRANSLATED = frozenset({*_COPIED, "model", "messages", "system", "stop_sequences", "metadata", "tools", "tool_choice"})
_TRANSLATED |= {"stream", "service_tier"}


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
    if params.get("stream"):
        # Usage only arrives in a final chunk when asked for; message_delta needs it for output_tokens.
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out
