"""Facts of Anthropic's Messages API that the gateway, its translators and the mock provider all rely on."""

from __future__ import annotations

# The error `type` Anthropic answers each status with (its documented error types).
ERROR_TYPES_BY_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    """The error type for a status; other 5xx are API errors, other 4xx invalid requests."""
    kind = ERROR_TYPES_BY_STATUS.get(status)
    if kind is not None:
        return kind
    return "api_error" if status >= 500 else "invalid_request_error"
