"""Request: OpenAI -> Anthropic, the top-level parameters and which of them are refused.

Messages are translated by `messages`, tool definitions and tool_choice by `tools`. `translate_request` makes
the intermediate Anthropic form that the Bedrock and Gemini pairs start from too, so it keeps `temperature` and
`top_p` (Converse and Gemini define them); `for_messages_api` takes out what the current Messages API (as the
installed `anthropic` SDK's `MessageCreateParams` defines it) no longer has, on the way to Anthropic itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extproc.translators.base import UnsupportedParameterError
from extproc.translators.openai_to_anthropic.messages import translate_messages
from extproc.translators.openai_to_anthropic.tools import translate_tools
from extproc.translators.params import Rules, always, screen

JSON = dict[str, Any]

DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; OpenAI lets the model run to its own limit.

_COPIED = ("temperature", "top_p", "stream")  # same name, same meaning in both APIs
# Sampling knobs the current Messages API does not define: not sent. Dropping them changes how an answer is
# sampled, not what it means (the model's own sampling applies), so they are not refused either.
NOT_IN_MESSAGES_API = ("temperature", "top_p")
# OpenAI reasoning_effort -> Anthropic output_config.effort (low, medium, high, xhigh, max); "none" asks for no
# reasoning at all, which is thinking turned off.
_EFFORTS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "max"}
UNSUPPORTED: Rules = {
    "n": (lambda n: n != 1, "only one choice per request is supported for this model"),
    "logprobs": (bool, "log probabilities are not available for this model"),
    "top_logprobs": (always, "log probabilities are not available for this model"),
    "presence_penalty": (lambda p: p != 0, "repetition penalties are not supported for this model"),
    "frequency_penalty": (lambda p: p != 0, "repetition penalties are not supported for this model"),
    "logit_bias": (bool, "token biases are not supported for this model"),
    "seed": (always, "seeded sampling is not supported for this model"),
    "response_format": (
        lambda f: not (isinstance(f, dict) and f.get("type") in ("text", "json_schema")),
        "JSON mode without a schema is not supported for this model (use a json_schema)",
    ),
}
_TRANSLATED = frozenset({*_COPIED, "model", "messages", "max_tokens", "max_completion_tokens", "stop", "user"})
_TRANSLATED |= {
    "stream_options",
    "safety_identifier",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning_effort",
}
# Translated as nothing: they do not change the answer (storage, billing tier, cache routing).
_TRANSLATED |= {
    "store",
    "metadata",
    "service_tier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "prompt_cache_options",
}


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
    output_config = _output_config(params)
    if output_config:
        out["output_config"] = output_config
    if params.get("reasoning_effort") == "none":
        out["thinking"] = {"type": "disabled"}
    return out


def for_messages_api(request: JSON) -> JSON:
    """The intermediate request as the Anthropic Messages API itself takes it."""
    return {name: value for name, value in request.items() if name not in NOT_IN_MESSAGES_API}


def _output_config(params: JSON) -> JSON:
    """`response_format` (a JSON schema) and `reasoning_effort` -> Anthropic's `output_config`."""
    config: JSON = {}
    effort = params.get("reasoning_effort")
    if effort is not None and effort != "none":
        if effort not in _EFFORTS:
            raise UnsupportedParameterError(
                "reasoning_effort", "must be none, minimal, low, medium, high, xhigh or max"
            )
        config["effort"] = _EFFORTS[effort]
    response_format = params.get("response_format") or {}
    if response_format.get("type") == "json_schema":
        definition = response_format.get("json_schema")
        schema = definition.get("schema") if isinstance(definition, dict) else None
        if not isinstance(schema, dict):
            raise UnsupportedParameterError("response_format.json_schema.schema", "is required for this model")
        config["format"] = {"type": "json_schema", "schema": schema}
    return config
