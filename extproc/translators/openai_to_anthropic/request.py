"""Request: OpenAI -> Anthropic, the top-level parameters and which of them are refused.

Messages are translated by `messages`, tool definitions and tool_choice by `tools`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extproc.translators.openai_to_anthropic.messages import translate_messages
from extproc.translators.openai_to_anthropic.tools import translate_tools
from extproc.translators.params import Rules, always, screen

JSON = dict[str, Any]

DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; OpenAI lets the model run to its own limit.

_COPIED = ("temperature", "top_p", "stream")  # same name, same meaning in both APIs
UNSUPPORTED: Rules = {
    "temperature": (lambda t: isinstance(t, int | float) and t > 1, "must be between 0 and 1 for this model"),
    "n": (lambda n: n != 1, "only one choice per request is supported for this model"),
    "logprobs": (bool, "log probabilities are not available for this model"),
    "top_logprobs": (always, "log probabilities are not available for this model"),
    "presence_penalty": (lambda p: p != 0, "repetition penalties are not supported for this model"),
    "frequency_penalty": (lambda p: p != 0, "repetition penalties are not supported for this model"),
    "logit_bias": (bool, "token biases are not supported for this model"),
    "seed": (always, "seeded sampling is not supported for this model"),
    "response_format": (
        lambda f: not (isinstance(f, dict) and f.get("type") == "text"),
        "JSON mode and JSON schemas are not supported for this model",
    ),
}
_TRANSLATED = frozenset({*_COPIED, "model", "messages", "max_tokens", "max_completion_tokens", "stop", "user"})
_TRANSLATED |= {"stream_options", "safety_identifier", "tools", "tool_choice", "parallel_tool_calls"}
# Translated as nothing: they do not change the answer (storage, billing tier, cache routing).
_TRANSLATED |= {"store", "metadata", "service_tier", "prompt_cache_key"}


def translate_request(body: Mapping[str, Any], target_model: str) -> JSON:
    params = screen(body, UNSUPPORTED, _TRANSLATED)
    system, messages = translate_messages(params.get("messages"))
    out: JSON = {
        "model": target_model,
        "messages": messages,
        "max_tokens": params.get("max_completion_tokens", params.get("max_tokens", DEFAULT_MAX_TOKENS)),
    }
    if system is not None:
        out["system"] = system
    for name in _COPIED:
        if name in params:
            out[name] = params[name]
    stop = params.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else stop
    user = params.get("safety_identifier", params.get("user"))
    if user is not None:
        out["metadata"] = {"user_id": user}
    out.update(translate_tools(params, messages))
    return out
