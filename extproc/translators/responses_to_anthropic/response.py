"""Response: a whole Anthropic message -> an OpenAI Responses `response` object.

Text becomes a message item of `output_text` parts, each tool_use a `function_call` item, each thinking block
a `reasoning` item whose `encrypted_content` is the block's signature: a client that sends the item back (as
the Responses API asks of stateless clients) gives the next request the signed thinking Anthropic requires in
a tool-use continuation. The settings the response object repeats come from the client's request. Shared
with `stream`, which builds the same objects event by event.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from extproc.translators.errors import MalformedResponseError
from extproc.translators.wire import generated_id

JSON = dict[str, Any]

# Anthropic stop reasons that leave the answer incomplete, as the Responses API names why
_INCOMPLETE = {
    "max_tokens": "max_output_tokens",
    "model_context_window_exceeded": "max_output_tokens",
    "refusal": "content_filter",
}


def translate_message(message: JSON | None, client_model: str, request: Mapping[str, Any]) -> JSON:
    content = message.get("content") if message is not None else None
    if message is None or not isinstance(content, list):
        raise MalformedResponseError("upstream answered with a body that is not a message")
    output: list[JSON] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            if output and output[-1]["type"] == "message":
                output[-1]["content"].append(text_part(str(block.get("text", ""))))
            else:
                output.append(message_item(generated_id("msg_"), [text_part(str(block.get("text", "")))]))
        elif kind == "tool_use":
            arguments = json.dumps(block.get("input", {}), ensure_ascii=False)
            output.append(function_call_item(str(block.get("id")), str(block.get("name")), arguments))
        elif kind == "thinking":
            output.append(reasoning_item(generated_id("rs_"), str(block.get("thinking", "")), block.get("signature")))
        elif kind == "redacted_thinking" and isinstance(block.get("data"), str):
            output.append(reasoning_item(generated_id("rs_"), "", REDACTED_THINKING + block["data"]))
    response_id = "resp_" + str(message.get("id") or generated_id(""))
    return response_object(
        response_id, client_model, request, output, message.get("stop_reason"), response_usage(message.get("usage"))
    )


def text_part(text: str) -> JSON:
    return {"type": "output_text", "text": text, "annotations": []}


def message_item(item_id: str, parts: list[JSON], status: str = "completed") -> JSON:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": parts}


def function_call_item(call_id: str, name: str, arguments: str, status: str = "completed") -> JSON:
    return {
        "id": "fc_" + call_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


# `encrypted_content` of a reasoning item made from a redacted_thinking block: the block's encrypted `data` after
# this prefix. Signatures of plain thinking are base64, which has no ":", so the two never mix; the request side
# (request._thinking) sends such an item back as the redacted_thinking block Anthropic requires in the next turn.
REDACTED_THINKING = "anthropic-redacted-thinking:"


def reasoning_item(item_id: str, text: str, signature: Any, status: str = "completed") -> JSON:
    item: JSON = {"id": item_id, "type": "reasoning", "summary": [], "status": status}
    if text:
        item["content"] = [{"type": "reasoning_text", "text": text}]
    if isinstance(signature, str) and signature:
        item["encrypted_content"] = signature
    return item


def response_object(
    response_id: str,
    client_model: str,
    request: Mapping[str, Any],
    output: list[JSON],
    stop_reason: Any,
    usage: JSON | None,
    created_at: int | None = None,
) -> JSON:
    """The response object; `usage` None while a stream is still in progress."""
    incomplete = _INCOMPLETE.get(stop_reason) if isinstance(stop_reason, str) else None
    status = "in_progress" if usage is None else "incomplete" if incomplete else "completed"
    text = request.get("text")
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at or int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": {"reason": incomplete} if incomplete and usage is not None else None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": client_model,
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls") is not False,
        "previous_response_id": None,
        "reasoning": {"effort": (request.get("reasoning") or {}).get("effort"), "summary": None},
        "temperature": request.get("temperature"),
        "text": text if isinstance(text, dict) and "format" in text else {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "top_p": request.get("top_p"),
        "truncation": request.get("truncation", "disabled"),
        "usage": usage,
        "metadata": request.get("metadata") or {},
    }


def token_counts(usage: Any) -> tuple[int | None, int | None, int, int]:
    """(input tokens, output tokens, cache reads, cache writes): the Responses API counts cached tokens as
    input and tells them apart in its details; Anthropic counts them apart only."""
    if not isinstance(usage, dict):
        return None, None, 0, 0
    read = usage.get("cache_read_input_tokens")
    write = usage.get("cache_creation_input_tokens")
    read, write = (read if isinstance(read, int) else 0), (write if isinstance(write, int) else 0)
    fresh = usage.get("input_tokens")
    output = usage.get("output_tokens")
    return (
        fresh + read + write if isinstance(fresh, int) else None,
        output if isinstance(output, int) else None,
        read,
        write,
    )


def response_usage(usage: Any) -> JSON:
    prompt, completion, read, write = token_counts(usage)
    return usage_object(prompt or 0, completion or 0, read, write)


def usage_object(input_tokens: int, output_tokens: int, cached: int = 0, written: int = 0) -> JSON:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }
