"""Error bodies in each API's own shape, so SDKs raise their usual exception types and retry as they would.

Anthropic: `{"type": "error", "error": {"type": T, "message": M}}`
OpenAI:    `{"error": {"message": M, "type": T, "param": null, "code": C}}`

Anthropic error types are precise and stable, so they decide the OpenAI type. OpenAI (and compatible
servers) are loose about `type`, so for Anthropic clients the HTTP status decides first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extproc.translators.wire import dumps, loads_object
from switchyard.anthropic_api import ERROR_TYPES_BY_STATUS

_SNIPPET_CHARS = 200


class MalformedResponseError(Exception):
    """A provider success body that cannot be translated: the client gets a 502, not a half-right answer."""


# What translating valid JSON of the wrong shape raises (a string where an object belongs, ...). The pair
# modules read provider JSON defensively but not exhaustively: such a body must still reach the client as
# an error in its API, never crash the ext_proc.
SHAPE_ERRORS = (MalformedResponseError, AttributeError, KeyError, TypeError)


def shape_problem(exc: Exception) -> str:
    """The client-facing message for one of SHAPE_ERRORS."""
    return str(exc) if isinstance(exc, MalformedResponseError) else "upstream answered with a malformed body"


# Anthropic error type -> (OpenAI type, OpenAI code)
_ANTHROPIC_TO_OPENAI: dict[str, tuple[str, str | None]] = {
    "invalid_request_error": ("invalid_request_error", None),
    "authentication_error": ("invalid_request_error", "invalid_api_key"),
    "permission_error": ("invalid_request_error", None),
    "not_found_error": ("invalid_request_error", None),
    "request_too_large": ("invalid_request_error", None),
    "rate_limit_error": ("rate_limit_exceeded", "rate_limit_exceeded"),
    "billing_error": ("insufficient_quota", "insufficient_quota"),
    "api_error": ("server_error", None),
    "overloaded_error": ("server_error", None),
    "timeout_error": ("server_error", None),
}

# HTTP status -> Anthropic error type: what the Anthropic API itself answers with that status, and an
# OpenAI-side 503 (overloaded) as Anthropic's overloaded. 500 is left to the source error's own type.
_STATUS_TO_ANTHROPIC = {
    **{status: kind for status, kind in ERROR_TYPES_BY_STATUS.items() if status != 500},
    503: "overloaded_error",
}

# OpenAI error code or type -> Anthropic error type, for errors without a telling status (mid-stream ones)
_OPENAI_TO_ANTHROPIC = {
    "invalid_api_key": "authentication_error",
    "rate_limit_exceeded": "rate_limit_error",
    "insufficient_quota": "rate_limit_error",
    "invalid_request_error": "invalid_request_error",
    "server_error": "api_error",
}


def openai_error(message: str, anthropic_type: str | None = None, status: int | None = None) -> dict[str, Any]:
    """An OpenAI error body; `status` (None mid-stream) picks the type when the Anthropic type is unknown."""
    kind, code = _ANTHROPIC_TO_OPENAI.get(anthropic_type or "") or (
        ("invalid_request_error", None) if status is not None and status < 500 else ("server_error", None)
    )
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def anthropic_error(message: str, source: Mapping[str, Any] | None = None, status: int | None = None) -> dict[str, Any]:
    """An Anthropic error body; `source` is the OpenAI error object (the value of its "error" key), if any."""
    kind = _STATUS_TO_ANTHROPIC.get(status or 0)
    if kind is None and source is not None:
        kind = _OPENAI_TO_ANTHROPIC.get(str(source.get("code"))) or _OPENAI_TO_ANTHROPIC.get(str(source.get("type")))
    if kind is None:
        kind = "invalid_request_error" if status is not None and status < 500 else "api_error"
    return {"type": "error", "error": {"type": kind, "message": message}}


def openai_status(anthropic_status: int) -> int:
    """529 (overloaded) is 503 for OpenAI clients; every other status means the same in both APIs."""
    return 503 if anthropic_status == 529 else anthropic_status


def anthropic_response_to_openai(status: int, body: bytes, content_type: str) -> tuple[int, bytes]:
    """A whole Anthropic error response for an OpenAI client.

    529 (overloaded) becomes 503: OpenAI has no 529, and SDKs retry a 503 but not an unknown status.
    """
    parsed = loads_object(body)
    error = parsed.get("error") if parsed else None
    retryable_status = openai_status(status)
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return retryable_status, dumps(openai_error(describe(status, body, content_type), status=status))
    kind = error.get("type")
    return retryable_status, dumps(openai_error(error["message"], kind if isinstance(kind, str) else None, status))


def openai_response_to_anthropic(status: int, body: bytes, content_type: str) -> tuple[int, bytes]:
    """A whole OpenAI (or OpenAI-compatible) error response for an Anthropic client; the status is kept."""
    parsed = loads_object(body)
    error = parsed.get("error") if parsed else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return status, dumps(anthropic_error(error["message"], error, status))
    if isinstance(error, str):  # some compatible servers answer {"error": "..."}
        return status, dumps(anthropic_error(error, status=status))
    return status, dumps(anthropic_error(describe(status, body, content_type), status=status))


def describe(status: int, body: bytes, content_type: str) -> str:
    """Say what came back when it was not an error body in the expected shape (say an HTML page from a proxy)."""
    text = " ".join(body.decode("utf-8", errors="replace").split())
    if not text:
        return f"upstream answered HTTP {status} with an empty body"
    if len(text) > _SNIPPET_CHARS:
        text = text[:_SNIPPET_CHARS] + "..."
    kind = content_type.split(";")[0].strip() or "untyped"
    return f"upstream answered HTTP {status} with an unexpected {kind} body: {text}"
