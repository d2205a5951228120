"""Gemini API (`generateContent`) bodies, SSE chunks and errors, serialised to bytes in one `json.dumps` each.

Shapes follow Google's: `candidates[].content.parts[]`, `finishReason`, `usageMetadata`, `responseId`,
and errors as `{"error": {"code", "message", "status"}}` with the Google RPC status of the HTTP code
(429 RESOURCE_EXHAUSTED, 503 UNAVAILABLE, ...). A stream is `data:` chunks, each a whole response with the
next text; the last carries the finishReason, and then the connection ends (no terminator).
"""

from __future__ import annotations

import json
from typing import Any

from switchyard.mock_provider.responses import reply_text, split_text

_RPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _error(status: int, message: str, kind: str | None = None) -> dict[str, Any]:
    rpc = kind or _RPC_STATUS.get(status) or ("INTERNAL" if status >= 500 else "INVALID_ARGUMENT")
    return {"error": {"code": status, "message": message, "status": rpc}}


def error_body(status: int, message: str, kind: str | None = None) -> bytes:
    return _dumps(_error(status, message, kind))


def stream_error_event(message: str) -> bytes:
    """What Gemini sends when a started stream fails: an error object as the next chunk."""
    return b"data: " + _dumps(_error(503, message)) + b"\r\n\r\n"


def _usage(prompt: int, output: int, cached: int = 0) -> dict[str, int]:
    usage = {"promptTokenCount": prompt, "candidatesTokenCount": output, "totalTokenCount": prompt + output}
    if cached:  # the part of the prompt Gemini's implicit cache held (caching.automatic); it counts in the prompt
        usage["cachedContentTokenCount"] = cached
    return usage


def _response(
    response_id: str, model: str, parts: list[dict[str, Any]], finish: str | None, usage: dict[str, int]
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": response_id}


def _output_tokens(text: str, completion_tokens: int | None) -> int:
    return len(text.split()) if completion_tokens is None else completion_tokens


def response(
    response_id: str, name: str, model: str, prompt_tokens: int, completion_tokens: int | None, cached_tokens: int = 0
) -> bytes:
    text = reply_text(name, model)
    usage = _usage(prompt_tokens, _output_tokens(text, completion_tokens), cached_tokens)
    return _dumps(_response(response_id, model, [{"text": text}], "STOP", usage))


def stream_events(
    *,
    response_id: str,
    name: str,
    model: str,
    chunks: int,
    prompt_tokens: int,
    completion_tokens: int | None,
    cached_tokens: int = 0,
) -> tuple[list[bytes], list[bytes]]:
    """(paced content chunks, the final chunk with finishReason and usage)."""
    text = reply_text(name, model)
    pieces = split_text(text, chunks) if chunks > 0 else []
    paced = [
        b"data: "
        + _dumps(_response(response_id, model, [{"text": piece}], None, _usage(prompt_tokens, i + 1)))
        + b"\r\n\r\n"
        for i, piece in enumerate(pieces)
    ]
    usage = _usage(prompt_tokens, _output_tokens(text, completion_tokens), cached_tokens)
    tail = [b"data: " + _dumps(_response(response_id, model, [{"text": ""}], "STOP", usage)) + b"\r\n\r\n"]
    return paced, tail
