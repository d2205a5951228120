"""Anthropic Messages API bodies and SSE events, serialised to bytes in one ``json.dumps`` each.

Shapes follow Anthropic's (``type`` on every object, named SSE events, ``usage`` split into
input/output tokens) so a gateway's Anthropic parsers see what they would see in prod. The reply
text is the OpenAI side's, so a test can tell which upstream answered whatever the API.
"""

from __future__ import annotations

import json
from typing import Any

from switchyard.anthropic_api import error_type
from switchyard.mock_provider.caching import NO_CACHE, CacheCounts
from switchyard.mock_provider.responses import reply_text, split_text

DEFAULT_MODELS = (
    ("claude-opus-4-1", "Claude Opus 4.1", "2025-08-05T00:00:00Z"),
    ("claude-sonnet-4-5", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"),
    ("claude-haiku-4-5", "Claude Haiku 4.5", "2025-10-15T00:00:00Z"),
)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def error_body(status: int, message: str, kind: str | None = None) -> bytes:
    return _dumps({"type": "error", "error": {"type": kind or error_type(status), "message": message}})


def _output_tokens(text: str, completion_tokens: int | None) -> int:
    return len(text.split()) if completion_tokens is None else completion_tokens


def _input_usage(prompt_tokens: int, cached: CacheCounts) -> dict[str, int]:
    """Anthropic's input counts: input_tokens leave out the cache reads and writes, named apart when any."""
    usage = {"input_tokens": cached.plain(prompt_tokens)}
    if cached != NO_CACHE:
        usage["cache_creation_input_tokens"] = cached.write
        usage["cache_read_input_tokens"] = cached.read
    return usage


def message(
    msg_id: str,
    name: str,
    model: str,
    input_tokens: int,
    completion_tokens: int | None = None,
    cached: CacheCounts = NO_CACHE,
) -> bytes:
    text = reply_text(name, model)
    return _dumps(
        {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": _input_usage(input_tokens, cached) | {"output_tokens": _output_tokens(text, completion_tokens)},
        }
    )


def models_list() -> bytes:
    ids = [m[0] for m in DEFAULT_MODELS]
    return _dumps(
        {
            "data": [
                {"type": "model", "id": m, "display_name": display, "created_at": created}
                for m, display, created in DEFAULT_MODELS
            ],
            "has_more": False,
            "first_id": ids[0],
            "last_id": ids[-1],
        }
    )


def _event(kind: str, **fields: Any) -> bytes:
    """Anthropic names every event, and the data's ``type`` repeats the name."""
    return b"event: " + kind.encode() + b"\ndata: " + _dumps({"type": kind, **fields}) + b"\n\n"


def stream_error_event(message: str) -> bytes:
    """What Anthropic sends when a started stream fails (typically overload): then the stream ends."""
    return _event("error", error={"type": "overloaded_error", "message": message})


def stream_events(
    *,
    msg_id: str,
    name: str,
    model: str,
    chunks: int,
    input_tokens: int,
    completion_tokens: int | None = None,
    cached: CacheCounts = NO_CACHE,
) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """SSE events of a streamed message, split into (head, deltas, tail).

    Only the ``content_block_delta`` events are paced; the head (message_start, content_block_start,
    ping) and the tail (content_block_stop, message_delta, message_stop) go out at once, as Anthropic's do.
    """
    text = reply_text(name, model)
    head = [
        _event(
            "message_start",
            message={
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": _input_usage(input_tokens, cached) | {"output_tokens": 1},
            },
        ),
        _event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        _event("ping"),
    ]
    deltas = [
        _event("content_block_delta", index=0, delta={"type": "text_delta", "text": piece})
        for piece in (split_text(text, chunks) if chunks > 0 else [])
    ]
    tail = [
        _event("content_block_stop", index=0),
        _event(
            "message_delta",
            delta={"stop_reason": "end_turn", "stop_sequence": None},
            usage={"output_tokens": _output_tokens(text, completion_tokens)},
        ),
        _event("message_stop"),
    ]
    return head, deltas, tail
