"""Response: a whole OpenAI chat.completion -> an Anthropic message.

The finish reason and usage mappings are shared with `stream`.
"""

from __future__ import annotations

import json
from typing import Any

from extproc.translators.errors import MalformedResponseError
from extproc.translators.wire import generated_id

JSON = dict[str, Any]

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def translate_completion(completion: JSON | None, client_model: str) -> JSON:
    """An OpenAI chat.completion as an Anthropic message."""
    choices = completion.get("choices") if completion is not None else None
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
    message = choice.get("message") if choice is not None else None
    if completion is None or choice is None or not isinstance(message, dict):
        raise MalformedResponseError("upstream answered with a body that is not a chat completion")
    text = message.get("content") or message.get("refusal")
    content: list[JSON] = [{"type": "text", "text": text}] if isinstance(text, str) and text else []
    content += [_tool_use(call) for call in message.get("tool_calls") or []]
    return {
        "id": "msg_" + str(completion.get("id") or generated_id("")),
        "type": "message",
        "role": "assistant",
        "model": client_model,
        "content": content,
        "stop_reason": anthropic_stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": anthropic_usage(completion.get("usage")),
    }


def _tool_use(call: Any) -> JSON:
    function = call.get("function") if isinstance(call, dict) else None
    arguments = function.get("arguments") if isinstance(function, dict) else None
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) and arguments.strip() else {}
    except ValueError:
        parsed = None
    if not isinstance(function, dict) or not isinstance(parsed, dict):
        # An Anthropic client cannot represent it; a 502 lets it retry instead of crashing on a bad input.
        raise MalformedResponseError("upstream answered with tool call arguments that are not a JSON object")
    return {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": parsed}


def anthropic_stop_reason(finish_reason: Any) -> str:
    return _STOP_REASONS.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn"


def token_counts(usage: Any) -> tuple[int | None, int | None]:
    if not isinstance(usage, dict):
        return None, None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return (prompt if isinstance(prompt, int) else None), (completion if isinstance(completion, int) else None)


def anthropic_usage(usage: Any) -> JSON:
    """OpenAI usage as Anthropic's, whose input tokens leave out the cached ones it counts apart."""
    prompt, completion = token_counts(usage)
    details = usage.get("prompt_tokens_details") if isinstance(usage, dict) else None
    read = details.get("cached_tokens") if isinstance(details, dict) else None
    write = details.get("cache_write_tokens") if isinstance(details, dict) else None
    read, write = (read if isinstance(read, int) else 0), (write if isinstance(write, int) else 0)
    return {
        "input_tokens": max((prompt or 0) - read - write, 0),
        "output_tokens": completion or 0,
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
    }
