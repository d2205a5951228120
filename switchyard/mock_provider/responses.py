"""OpenAI-shaped response bodies, serialised to bytes in one ``json.dumps`` each.

Bodies are as close to OpenAI's as the gateway's parsers need (ids, usage, finish_reason,
SSE framing) while staying cheap: the mock doubles as the upstream for benchmarks.
"""

from __future__ import annotations

import json
from typing import Any

DEFAULT_MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4", "gpt-3.5-turbo", "text-embedding-3-small")
EMBEDDING_DIM = 8
DONE_EVENT = b"data: [DONE]\n\n"

# (type, code) per status, matching what OpenAI/Azure return so clients classify errors as they would in prod.
_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "not_found"),
    408: ("timeout_error", "timeout"),
    409: ("conflict_error", None),
    413: ("invalid_request_error", "request_too_large"),
    422: ("invalid_request_error", None),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    503: ("server_error", "service_unavailable"),
}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def error_kind(status: int) -> tuple[str, str | None]:
    """Error ``type`` and ``code`` for a status; unknown 5xx are server errors, other 4xx invalid requests."""
    kind = _ERROR_KINDS.get(status)
    if kind is not None:
        return kind
    return ("server_error", None) if status >= 500 else ("invalid_request_error", None)


def error_body(status: int, message: str, *, param: str | None = None, kind: str | None = None) -> bytes:
    """`kind`: a type OpenAI names in both `type` and `code` (a 429's `insufficient_quota`)."""
    err_type, code = error_kind(status) if kind is None else (kind, kind)
    return _dumps({"error": {"message": message, "type": err_type, "param": param, "code": code}})


def reply_text(name: str, model: str) -> str:
    """The assistant text; it names the provider and model so tests can tell which upstream answered."""
    return f"Hello from {name} ({model})"


def _usage(prompt_tokens: int, completion_tokens: int, cached: int = 0) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cached:  # OpenAI names the cached part of the prompt (caching.automatic); left out when none, to stay cheap
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return usage


def estimate_prompt_tokens(body_bytes: int) -> int:
    """Roughly 4 bytes per token: plausible numbers without tokenising anything."""
    return max(1, body_bytes // 4)


def chat_completion(
    resp_id: str,
    created: int,
    name: str,
    model: str,
    prompt_tokens: int,
    completion_tokens: int | None = None,
    cached_tokens: int = 0,
) -> bytes:
    text = reply_text(name, model)
    return _dumps(
        {
            "id": f"chatcmpl-{resp_id}",
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(
                prompt_tokens, len(text.split()) if completion_tokens is None else completion_tokens, cached_tokens
            ),
        }
    )


def text_completion(
    resp_id: str, created: int, name: str, model: str, prompt_tokens: int, completion_tokens: int | None = None
) -> bytes:
    text = reply_text(name, model)
    return _dumps(
        {
            "id": f"cmpl-{resp_id}",
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}],
            "usage": _usage(prompt_tokens, len(text.split()) if completion_tokens is None else completion_tokens),
        }
    )


def embeddings(model: str, inputs: int, prompt_tokens: int) -> bytes:
    vector = [round(0.1 * (i + 1), 1) for i in range(EMBEDDING_DIM)]
    return _dumps(
        {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": vector} for i in range(max(1, inputs))],
            "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
    )


def models_list(owner: str) -> bytes:
    return _dumps(
        {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": 0, "owned_by": owner} for m in DEFAULT_MODELS],
        }
    )


def split_text(text: str, parts: int) -> list[str]:
    """Split into ``parts`` contiguous pieces whose concatenation is ``text`` (some may be empty)."""
    size, extra = divmod(len(text), parts)
    pieces, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


def _event(obj: dict[str, Any]) -> bytes:
    return b"data: " + _dumps(obj) + b"\n\n"


def stream_error_event(message: str) -> bytes:
    """What OpenAI sends when a stream fails after it started: an error object in place of the
    next chunk; the stream then ends without ``[DONE]``, which is how clients tell it broke."""
    return b"data: " + error_body(500, message) + b"\n\n"


def stream_events(
    *,
    chat: bool,
    resp_id: str,
    created: int,
    name: str,
    model: str,
    chunks: int,
    include_usage: bool,
    prompt_tokens: int,
    cached_tokens: int = 0,
) -> tuple[list[bytes], list[bytes]]:
    """SSE events for a streamed answer, split into (paced, tail).

    ``paced`` holds the content chunks plus the finish_reason chunk, to be sent with a delay
    between them; ``tail`` (usage chunk, ``[DONE]``) follows immediately, as OpenAI does.
    """
    text = reply_text(name, model)
    base: dict[str, Any] = {
        "id": f"{'chatcmpl' if chat else 'cmpl'}-{resp_id}",
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": created,
        "model": model,
    }
    if include_usage:
        base["usage"] = None  # OpenAI sets usage: null on every chunk but the usage one.

    def choice(piece: str | None, first: bool, finish: str | None) -> dict[str, Any]:
        if not chat:
            return {"text": piece or "", "index": 0, "logprobs": None, "finish_reason": finish}
        delta: dict[str, str] = {}
        if first:
            delta["role"] = "assistant"
        if piece is not None:
            delta["content"] = piece
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    paced = [
        _event({**base, "choices": [choice(piece, i == 0, None)]})
        for i, piece in enumerate(split_text(text, chunks) if chunks > 0 else [])
    ]
    paced.append(_event({**base, "choices": [choice(None, chunks <= 0, "stop")]}))
    tail = []
    if include_usage:
        tail.append(_event({**base, "choices": [], "usage": _usage(prompt_tokens, len(text.split()), cached_tokens)}))
    tail.append(DONE_EVENT)
    return paced, tail
