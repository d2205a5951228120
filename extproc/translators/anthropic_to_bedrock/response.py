"""Response: a whole Converse answer -> an Anthropic message, and Bedrock errors -> Anthropic's.

Bedrock names an error in the `x-amzn-ErrorType` header and its status; the body only holds a message.
The status (with the headers, before Envoy decides on a fallback) decides the client's status and the error
type: 429 (ThrottlingException) is a rate limit; 503 (ServiceUnavailableException, and
ModelNotReadyException, which Bedrock sends as 429 but is no rate limit: `provider_status`) an overload; a
model timeout (408) and a model error (424), which no client API has, become 504 and 502, so a route falls
back on them by default. A guardrail or content filter stopping the answer is a refusal, not an error.
"""

from __future__ import annotations

from typing import Any

from extproc.translators.errors import MalformedResponseError, describe
from extproc.translators.wire import dumps, generated_id, loads_object
from switchyard.anthropic_api import error_type

JSON = dict[str, Any]

_STOP_REASONS = {
    "end_turn": "end_turn",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "guardrail_intervened": "refusal",
    "content_filtered": "refusal",
    "model_context_window_exceeded": "model_context_window_exceeded",
}
_CLIENT_STATUSES = {408: 504, 424: 502}
_ERROR_TYPES = {429: "rate_limit_error", 503: "overloaded_error", 504: "timeout_error"}


def client_status(status: int) -> int:
    return _CLIENT_STATUSES.get(status, status)


# Error types whose status says less than they do. A model that is not ready yet (on-demand models load on
# first use) comes as 429, but it is no rate limit: Retry-After-style parking would be wrong, an outage (503)
# is right, and the route falls back either way.
_ERROR_TYPE_STATUSES = {"ModelNotReadyException": 503}


def provider_status(status: int, error_type: str) -> int:
    """`error_type` is the `x-amzn-ErrorType` header: `Name` or `Name:namespace-url`."""
    return _ERROR_TYPE_STATUSES.get(error_type.split(":", 1)[0].strip(), status)


def stop_reason(reason: Any) -> str:
    return _STOP_REASONS.get(reason, "end_turn") if isinstance(reason, str) else "end_turn"


def anthropic_usage(usage: Any) -> JSON:
    """Converse counts like Anthropic: input tokens leave out those read from or written to the cache."""
    usage = usage if isinstance(usage, dict) else {}
    return {
        "input_tokens": int(usage.get("inputTokens") or 0),
        "output_tokens": int(usage.get("outputTokens") or 0),
        "cache_creation_input_tokens": int(usage.get("cacheWriteInputTokens") or 0),
        "cache_read_input_tokens": int(usage.get("cacheReadInputTokens") or 0),
    }


def _block(block: Any) -> JSON | None:
    if not isinstance(block, dict):
        return None
    if isinstance(block.get("text"), str):
        return {"type": "text", "text": block["text"]}
    call = block.get("toolUse")
    if isinstance(call, dict):
        return {
            "type": "tool_use",
            "id": str(call.get("toolUseId") or generated_id("toolu_")),
            "name": call.get("name"),
            "input": call.get("input") or {},
        }
    reasoning = block.get("reasoningContent")
    if isinstance(reasoning, dict):
        return thinking_block(reasoning)
    return None  # citations, guard content and other blocks an Anthropic client did not ask for


def thinking_block(reasoning: JSON) -> JSON:
    """Converse `reasoningContent` as the Anthropic thinking block it came from (the signature kept, so the
    client can send it back), or a redacted one (the encrypted bytes as the base64 text they travel as)."""
    if "redactedContent" in reasoning:
        return {"type": "redacted_thinking", "data": str(reasoning["redactedContent"] or "")}
    text = reasoning.get("reasoningText") or {}
    return {"type": "thinking", "thinking": str(text.get("text") or ""), "signature": str(text.get("signature") or "")}


def translate_response(response: JSON | None, client_model: str) -> JSON:
    message = ((response or {}).get("output") or {}).get("message")
    if response is None or not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise MalformedResponseError("upstream answered with a body that is not a Converse response")
    return {
        "id": generated_id("msg_bdrk_"),
        "type": "message",
        "role": "assistant",
        "model": client_model,
        "content": [b for b in map(_block, message["content"]) if b is not None],
        "stop_reason": stop_reason(response.get("stopReason")),
        "stop_sequence": None,
        "usage": anthropic_usage(response.get("usage")),
    }


def anthropic_error_for(status: int, message: str) -> JSON:
    kind = _ERROR_TYPES.get(status) or error_type(status)
    return {"type": "error", "error": {"type": kind, "message": message}}


def bedrock_error_to_anthropic(status: int, body: bytes, content_type: str) -> tuple[int, bytes]:
    status = client_status(status)
    parsed = loads_object(body) or {}
    message = parsed.get("message") or parsed.get("Message")
    if not isinstance(message, str):
        message = describe(status, body, content_type)
    return status, dumps(anthropic_error_for(status, message))
