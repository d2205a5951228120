"""OpenAI Responses API bodies (`POST /v1/responses`): a whole `response` object and its event stream.

Shaped as the `openai` SDK's `Response` and `ResponseStreamEvent` types define them
(tests/unit/test_mock_provider_responses.py validates them with those types), with the same event sequence
OpenAI sends for a text answer: response.created, response.in_progress, response.output_item.added,
response.content_part.added, response.output_text.delta (one per chunk), response.output_text.done,
response.content_part.done, response.output_item.done, response.completed (which carries the usage).
"""

from __future__ import annotations

import json
from typing import Any

from switchyard.mock_provider.caching import NO_CACHE, CacheCounts
from switchyard.mock_provider.responses import reply_text, split_text


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _usage(input_tokens: int, output_tokens: int, cached: CacheCounts = NO_CACHE) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached.read, "cache_write_tokens": cached.write},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def _message(message_id: str, text: str | None) -> dict[str, Any]:
    """The assistant message item: in progress and empty while streaming (`text` None), else completed."""
    content = [] if text is None else [_text_part(text)]
    status = "in_progress" if text is None else "completed"
    return {"id": message_id, "type": "message", "status": status, "role": "assistant", "content": content}


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": []}


def _response(
    resp_id: str, created: int, model: str, request: dict[str, Any], output: list[dict[str, Any]], usage: Any
) -> dict[str, Any]:
    """The response object, echoing the request's settings as OpenAI does."""
    done = usage is not None
    return {
        "id": resp_id,
        "object": "response",
        "created_at": created,
        "status": "completed" if done else "in_progress",
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "temperature": request.get("temperature", 1.0),
        "text": request.get("text") or {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "top_p": request.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": usage,
        "metadata": request.get("metadata") or {},
    }


def response(
    resp_id: str,
    created: int,
    name: str,
    model: str,
    request: dict[str, Any],
    input_tokens: int,
    output_tokens: int | None = None,
    cached: CacheCounts = NO_CACHE,
) -> bytes:
    text = reply_text(name, model)
    output = [_message(f"msg_{resp_id}", text)]
    usage = _usage(input_tokens, len(text.split()) if output_tokens is None else output_tokens, cached)
    return _dumps(_response(f"resp_{resp_id}", created, model, request, output, usage))


def _event(payload: dict[str, Any]) -> bytes:
    return b"event: " + str(payload["type"]).encode() + b"\ndata: " + _dumps(payload) + b"\n\n"


class _Sequence:
    """Every event of a stream carries the next `sequence_number`."""

    def __init__(self) -> None:
        self.number = -1

    def event(self, kind: str, **fields: Any) -> bytes:
        self.number += 1
        return _event({"type": kind, "sequence_number": self.number, **fields})


def stream_events(
    *,
    resp_id: str,
    created: int,
    name: str,
    model: str,
    request: dict[str, Any],
    chunks: int,
    input_tokens: int,
    output_tokens: int | None = None,
    cached: CacheCounts = NO_CACHE,
) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """(head, paced, tail): the opening events at once, the text deltas paced, the closing events at once."""
    text = reply_text(name, model)
    response_id, item_id = f"resp_{resp_id}", f"msg_{resp_id}"
    seq = _Sequence()
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    head = [
        seq.event("response.created", response=_response(response_id, created, model, request, [], None)),
        seq.event("response.in_progress", response=_response(response_id, created, model, request, [], None)),
        seq.event("response.output_item.added", output_index=0, item=_message(item_id, None)),
        seq.event("response.content_part.added", **where, part=_text_part("")),
    ]
    paced = [
        seq.event("response.output_text.delta", **where, delta=piece, logprobs=[])
        for piece in (split_text(text, chunks) if chunks > 0 else [])
    ]
    usage = _usage(input_tokens, len(text.split()) if output_tokens is None else output_tokens, cached)
    done = _message(item_id, text)
    tail = [
        seq.event("response.output_text.done", **where, text=text, logprobs=[]),
        seq.event("response.content_part.done", **where, part=_text_part(text)),
        seq.event("response.output_item.done", output_index=0, item=done),
        seq.event("response.completed", response=_response(response_id, created, model, request, [done], usage)),
    ]
    return head, paced, tail


def stream_error_event(message: str) -> bytes:
    """What the Responses API sends when a stream fails after it started: an `error` event, then nothing."""
    return _event({"type": "error", "code": "server_error", "message": message, "param": None, "sequence_number": 0})
