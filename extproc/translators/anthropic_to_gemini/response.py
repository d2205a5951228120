"""Response: a whole Gemini `GenerateContentResponse` -> an Anthropic message, and Gemini errors -> Anthropic's.

A safety block is an answer, not an error: a candidate stopped for safety (or a prompt blocked before any
candidate) becomes stop_reason `refusal`, as Anthropic's own models report a refusal. The part and finish
mappings are shared with `stream`.
"""

from __future__ import annotations

from typing import Any

from extproc.translators.anthropic_to_gemini.signatures import signed_id
from extproc.translators.errors import MalformedResponseError, describe
from extproc.translators.wire import dumps, generated_id, loads_object
from switchyard.anthropic_api import error_type

JSON = dict[str, Any]

_STOP_REASONS = {"STOP": "end_turn", "MAX_TOKENS": "max_tokens"}
# Every other finishReason Gemini documents stops the answer for a policy: safety, recitation, blocklists,
# prohibited content, personal data, image safety...
_NOT_REFUSALS = frozenset({"STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED", "OTHER", "MALFORMED_FUNCTION_CALL"})

# Gemini's (Google RPC) error status -> the Anthropic error type of the same meaning
_ERROR_TYPES = {
    "INVALID_ARGUMENT": "invalid_request_error",
    "FAILED_PRECONDITION": "invalid_request_error",
    "OUT_OF_RANGE": "invalid_request_error",
    "UNAUTHENTICATED": "authentication_error",
    "PERMISSION_DENIED": "permission_error",
    "NOT_FOUND": "not_found_error",
    "RESOURCE_EXHAUSTED": "rate_limit_error",
    "UNAVAILABLE": "overloaded_error",
    "DEADLINE_EXCEEDED": "timeout_error",
    "INTERNAL": "api_error",
    "UNKNOWN": "api_error",
}


def stop_reason(finish_reason: Any, has_tool_calls: bool) -> str | None:
    """The Anthropic stop_reason of a Gemini finishReason (None: not finished yet)."""
    if not isinstance(finish_reason, str) or not finish_reason:
        return None
    if finish_reason not in _NOT_REFUSALS:
        return "refusal"
    if has_tool_calls:
        return "tool_use"
    return _STOP_REASONS.get(finish_reason, "end_turn")


def candidate_parts(response: JSON) -> tuple[list[JSON], Any]:
    """The first candidate's parts (thoughts left out) and its finishReason; a prompt blocked before any
    candidate has no parts and the block reason as its finish."""
    candidates = response.get("candidates")
    if not candidates:
        feedback = response.get("promptFeedback") or {}
        return [], feedback.get("blockReason")
    candidate = candidates[0]
    parts = (candidate.get("content") or {}).get("parts") or []
    return [p for p in parts if isinstance(p, dict) and not p.get("thought")], candidate.get("finishReason")


def content_blocks(parts: list[JSON]) -> list[JSON]:
    """Gemini parts as Anthropic content blocks: consecutive texts merged, function calls as tool_use."""
    blocks: list[JSON] = []
    for part in parts:
        if isinstance(part.get("text"), str):
            if blocks and blocks[-1]["type"] == "text":
                blocks[-1]["text"] += part["text"]
            else:
                blocks.append({"type": "text", "text": part["text"]})
        elif isinstance(part.get("functionCall"), dict):
            blocks.append(tool_use(part))
    return blocks


def tool_use(part: JSON) -> JSON:
    """A part holding a functionCall as a tool_use block; its thoughtSignature travels in the id (`signatures`)."""
    call = part["functionCall"]
    return {
        "type": "tool_use",
        "id": signed_id(str(call.get("id") or generated_id("toolu_")), part.get("thoughtSignature")),
        "name": call.get("name"),
        "input": call.get("args") or {},
    }


def anthropic_usage(metadata: Any) -> JSON:
    """Gemini counts cached tokens inside the prompt and thinking apart from the candidates; Anthropic counts
    cache reads apart from input, and thinking as output."""
    if not isinstance(metadata, dict):
        return {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    prompt = int(metadata.get("promptTokenCount") or 0)
    cached = int(metadata.get("cachedContentTokenCount") or 0)
    output = int(metadata.get("candidatesTokenCount") or 0) + int(metadata.get("thoughtsTokenCount") or 0)
    return {
        "input_tokens": prompt - cached,
        "output_tokens": output,
        "cache_creation_input_tokens": 0,  # Gemini writes its implicit cache for free and does not count it
        "cache_read_input_tokens": cached,
    }


def translate_response(response: JSON | None, client_model: str) -> JSON:
    if response is None or not ("candidates" in response or "promptFeedback" in response):
        raise MalformedResponseError("upstream answered with a body that is not a generateContent response")
    parts, finish = candidate_parts(response)
    blocks = content_blocks(parts)
    has_calls = any(b["type"] == "tool_use" for b in blocks)
    return {
        "id": "msg_" + str(response.get("responseId") or generated_id("")),
        "type": "message",
        "role": "assistant",
        "model": client_model,
        "content": blocks,
        "stop_reason": stop_reason(finish, has_calls) or "end_turn",
        "stop_sequence": None,
        "usage": anthropic_usage(response.get("usageMetadata")),
    }


def anthropic_error_of(error: Any, status: int | None) -> JSON:
    """An Anthropic error body for a Gemini error object (`{"code", "message", "status"}`)."""
    source = error if isinstance(error, dict) else {}
    message = str(source.get("message") or "upstream error")
    kind = _ERROR_TYPES.get(str(source.get("status"))) or error_type(status or 500)
    return {"type": "error", "error": {"type": kind, "message": message}}


def gemini_error_to_anthropic(status: int, body: bytes, content_type: str) -> tuple[int, bytes]:
    """A whole Gemini error response for an Anthropic client; the status is kept (429 and 503 already are
    what RESOURCE_EXHAUSTED and UNAVAILABLE mean)."""
    parsed = loads_object(body)
    error = parsed.get("error") if parsed else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return status, dumps(anthropic_error_of(error, status))
    return status, dumps(
        {"type": "error", "error": {"type": error_type(status), "message": describe(status, body, content_type)}}
    )
