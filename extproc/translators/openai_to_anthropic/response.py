"""Response: a whole Anthropic message -> an OpenAI chat.completion.

The stop reason and usage mappings are shared with `stream`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from extproc.translators.errors import MalformedResponseError
from extproc.translators.wire import generated_id

JSON = dict[str, Any]

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def translate_message(message: JSON | None, client_model: str) -> JSON:
    """An Anthropic message as an OpenAI chat.completion."""
    content = message.get("content") if message is not None else None
    if message is None or not isinstance(content, list):
        raise MalformedResponseError("upstream answered with a body that is not a message")
    blocks = [block for block in content if isinstance(block, dict)]
    texts = [str(block.get("text", "")) for block in blocks if block.get("type") == "text"]
    calls = [
        {
            "id": block.get("id"),
            "type": "function",
            "function": {
                "name": block.get("name"),
                "arguments": json.dumps(block.get("input", {}), ensure_ascii=False),
            },
        }
        for block in blocks
        if block.get("type") == "tool_use"
    ]
    reply: JSON = {"role": "assistant", "content": "".join(texts) if texts else None, "refusal": None}
    if calls:
        reply["tool_calls"] = calls
    return {
        "id": "chatcmpl-" + str(message.get("id") or generated_id("")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": client_model,
        "choices": [
            {
                "index": 0,
                "message": reply,
                "logprobs": None,
                "finish_reason": openai_finish_reason(message.get("stop_reason")),
            }
        ],
        "usage": openai_usage(message.get("usage")),
    }


def openai_finish_reason(stop_reason: Any) -> str:
    return _FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def token_counts(usage: Any) -> tuple[int | None, int | None]:
    """(input, output) tokens; OpenAI's prompt tokens include the cached ones Anthropic counts separately."""
    if not isinstance(usage, dict):
        return None, None
    inputs = [usage.get(k) for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")]
    prompt = sum(n for n in inputs if isinstance(n, int)) if isinstance(inputs[0], int) else None
    completion = usage.get("output_tokens")
    return prompt, completion if isinstance(completion, int) else None


def cache_counts(usage: Any) -> tuple[int, int]:
    """(tokens read from the cache, tokens written to it) of an Anthropic usage object."""
    if not isinstance(usage, dict):
        return 0, 0
    read, write = usage.get("cache_read_input_tokens"), usage.get("cache_creation_input_tokens")
    return (read if isinstance(read, int) else 0), (write if isinstance(write, int) else 0)


def openai_usage(usage: Any) -> JSON:
    """Anthropic usage as OpenAI's: prompt tokens include the cached ones, which `prompt_tokens_details` names
    (`cached_tokens` read from the cache, `cache_write_tokens` written to it)."""
    prompt, completion = token_counts(usage)
    read, write = cache_counts(usage)
    return openai_usage_of(prompt or 0, completion or 0, read, write)


def openai_usage_of(prompt: int, completion: int, cache_read: int, cache_write: int) -> JSON:
    details: JSON = {"cached_tokens": cache_read}
    if cache_write:
        details["cache_write_tokens"] = cache_write
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": details,
    }
