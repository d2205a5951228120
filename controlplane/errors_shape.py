"""Every answer Envoy makes by itself (bad JSON, unknown model, body too large, no healthy target) in the
error shape of the API the client called (OpenAI's, also on /v1/responses; Anthropic's on /v1/messages), so a
client library raises its usual exception instead of choking on plain text.

Errors from providers pass through untouched (or translated, when the target speaks the other API): only
local replies are reshaped. Which API a reply is for is told by the route's name, which Envoy keeps, rather
than by the path, which an attempt may have rewritten for its target.
"""

from __future__ import annotations

import json
from typing import Any

from controlplane.envoy_api import METADATA_NAMESPACE, typed
from switchyard.anthropic_api import ERROR_TYPES_BY_STATUS, error_type
from switchyard.config import ClientEndpoint, Config
from switchyard.contract import GUARDRAIL_BLOCK_DETAILS, MODEL_KEY, WireApi

# Why json_to_metadata could not route a body: set on the request by `flag`, matched by the routes below.
INVALID_JSON = "invalid_json"
MISSING_MODEL = "missing_model"

ANTHROPIC_ERROR_ROUTE_PREFIX = "anthropic-error:"
OPENAI_ERROR_ROUTE_PREFIX = "error:"

# status → (OpenAI error type, code)
_SHAPES: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "invalid_request"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    500: ("server_error", "gateway_error"),
    502: ("server_error", "bad_gateway"),
    503: ("server_error", "no_healthy_target"),
    504: ("server_error", "upstream_timeout"),
}


# With `clients:` only: who may call (controlplane/clients.py). Anthropic's shapes for these exist anyway.
_CLIENT_SHAPES: dict[int, tuple[str, str]] = {
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "model_not_allowed"),
}
RATE_LIMITED_MESSAGE = (
    "Too many requests: this client's requests_per_minute limit is reached. Retry after the Retry-After seconds."
)


def _status_filter(op: str, status: int) -> dict[str, Any]:
    return {
        "status_code_filter": {
            "comparison": {
                "op": op,
                "value": {"default_value": status, "runtime_key": f"switchyard.status_{status}"},
            }
        }
    }


def _error_body(error_type: str, code: str, message: str = "%LOCAL_REPLY_BODY%") -> dict[str, Any]:
    return {"json_format": {"error": {"message": message, "type": error_type, "code": code}}}


# Envoy's own wording for some replies says less than we know; these replace it.
_MESSAGES = {
    413: "The request body is larger than this gateway accepts (max_request_body: {limit} bytes).",
}


def _anthropic_error_body(error_type: str, message: str = "%LOCAL_REPLY_BODY%") -> dict[str, Any]:
    return {"json_format": {"type": "error", "error": {"type": error_type, "message": message}}}


def _for_anthropic_clients() -> dict[str, Any]:
    prefixes = [f"{e.value}:" for e in ClientEndpoint if e.error_shape == WireApi.ANTHROPIC]
    prefixes.append(ANTHROPIC_ERROR_ROUTE_PREFIX)
    return _cel_filter(" || ".join(f"xds.route_name.startsWith('{prefix}')" for prefix in prefixes))


def _cel_filter(expression: str) -> dict[str, Any]:
    return {
        "extension_filter": {
            "name": "envoy.access_loggers.extension_filters.cel",
            "typed_config": typed(
                "envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter", expression=expression
            ),
        }
    }


def _anthropic_mappers(config: Config) -> list[dict[str, Any]]:
    statuses = sorted({*_SHAPES, *ERROR_TYPES_BY_STATUS})
    mappers = [
        {
            "filter": {"and_filter": {"filters": [_for_anthropic_clients(), _status_filter("EQ", status)]}},
            "body_format_override": _anthropic_error_body(
                error_type(status),
                _MESSAGES.get(status, "%LOCAL_REPLY_BODY%").format(limit=config.max_request_body),
            ),
        }
        for status in statuses
    ]
    mappers.append(
        {
            "filter": {"and_filter": {"filters": [_for_anthropic_clients(), _status_filter("GE", 400)]}},
            "body_format_override": _anthropic_error_body("api_error"),
        }
    )
    return mappers


def _rate_limited_mappers(config: Config) -> list[dict[str, Any]]:
    """A request refused by a client's request limit says so. Envoy's local rate limiter sets its response flag
    (RL) only after the local reply is formatted, its details before (measured on Envoy 1.40)."""
    if not any(c.limits.requests_per_minute for c in (config.clients or {}).values()):
        return []
    limited = _cel_filter("response.code_details == 'local_rate_limited'")
    kind, code = _SHAPES[429]
    return [
        {
            "filter": {"and_filter": {"filters": [_for_anthropic_clients(), limited]}},
            "body_format_override": _anthropic_error_body(error_type(429), RATE_LIMITED_MESSAGE),
        },
        {"filter": limited, "body_format_override": _error_body(kind, code, RATE_LIMITED_MESSAGE)},
    ]


def _guardrail_mappers(config: Config) -> list[dict[str, Any]]:
    """A guardrail's 400 to an OpenAI-shaped client carries `code: guardrail_blocked`, so a program can tell it
    from other 400s (Anthropic's shape has no code: the 400 mapper above serves it)."""
    if not config.has_guardrails:
        return []
    blocked = _cel_filter(f"response.code_details == '{GUARDRAIL_BLOCK_DETAILS}'")
    return [{"filter": blocked, "body_format_override": _error_body("invalid_request_error", "guardrail_blocked")}]


UNKNOWN_MODEL = "unknown_model"
# The name the client asked for, as json_to_metadata lifted it (cut short: it is the client's text).
_ASKED_MODEL = f"%DYNAMIC_METADATA({METADATA_NAMESPACE}:{MODEL_KEY}):200%"


# The unknown-model route answers 404 itself, but a body over the limit ends there too (no model could be read)
# with Envoy's 413: only the 404 is the unknown model's.
_IS_404 = "response.code == 404"


def _unknown_model_mappers(config: Config) -> list[dict[str, Any]]:
    """A model nobody routes: the answer repeats the name asked for, so a typo shows in the client's own error.
    A direct response's body is fixed text, so the name is put in here, where Envoy formats the reply."""
    routed = ", ".join(r.model for r in config.routes)
    message = f"The model '{_ASKED_MODEL}' is not routed by this gateway. Routed models: {routed}."
    kind, code = _SHAPES[404]
    return [
        {
            "filter": _cel_filter(f"xds.route_name == '{ANTHROPIC_ERROR_ROUTE_PREFIX}{UNKNOWN_MODEL}' && {_IS_404}"),
            "body_format_override": _anthropic_error_body(error_type(404), message),
        },
        {
            "filter": _cel_filter(f"xds.route_name == '{OPENAI_ERROR_ROUTE_PREFIX}{UNKNOWN_MODEL}' && {_IS_404}"),
            "body_format_override": _error_body(kind, code, message),
        },
    ]


def local_reply_config(config: Config) -> dict[str, Any]:
    shapes = {**_SHAPES, **(_CLIENT_SHAPES if config.clients else {})}
    mappers = (
        _unknown_model_mappers(config)
        + _rate_limited_mappers(config)
        + _anthropic_mappers(config)
        + _guardrail_mappers(config)
        + [
            {
                "filter": _status_filter("EQ", status),
                "body_format_override": _error_body(
                    kind, code, _MESSAGES.get(status, "%LOCAL_REPLY_BODY%").format(limit=config.max_request_body)
                ),
            }
            for status, (kind, code) in sorted(shapes.items())
        ]
    )
    # Any other error status still gets the shape; successful local replies (GET /v1/models) stay as they are.
    mappers.append({"filter": _status_filter("GE", 400), "body_format_override": _error_body("server_error", "error")})
    return {"mappers": mappers}


def _direct(status: int, body: str) -> dict[str, Any]:
    return {"status": status, "body": {"inline_string": body}}


def models_list_route(config: Config) -> dict[str, Any]:
    """GET /v1/models lists the client-facing model names, as OpenAI's endpoint does."""
    body = json.dumps(
        {
            "object": "list",
            "data": [{"id": r.model, "object": "model", "created": 0, "owned_by": "switchyard"} for r in config.routes],
        }
    )
    return {
        "name": "models",
        "match": {"path": "/v1/models", "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
        "direct_response": _direct(200, body),
        "response_headers_to_add": [{"header": {"key": "content-type", "value": "application/json"}}],
    }


def client_error_routes(config: Config) -> list[dict[str, Any]]:
    """Catch-alls after the model routes: whatever reaches them is the client's mistake. Anthropic's endpoint
    gets its own copies, named so that their replies take Anthropic's shape."""
    anthropic = [e.path for e in ClientEndpoint if e.error_shape == WireApi.ANTHROPIC]
    openai = [e.path for e in ClientEndpoint if e.error_shape == WireApi.OPENAI]
    routes = _client_error_routes(config, anthropic, ANTHROPIC_ERROR_ROUTE_PREFIX)
    routes.extend(_client_error_routes(config, openai, OPENAI_ERROR_ROUTE_PREFIX))
    endpoints = ", ".join(e.path for e in ClientEndpoint)
    routes.append(
        {
            "name": "error:unknown_path",
            "match": {"prefix": "/"},
            "direct_response": _direct(
                404, f"Unknown endpoint. This gateway serves POST {endpoints} and GET /v1/models."
            ),
        }
    )
    return routes


def _client_error_routes(config: Config, paths: list[str], prefix: str) -> list[dict[str, Any]]:
    client_paths = {"safe_regex": {"regex": "^(" + "|".join(paths) + ")$"}}
    post = [{"name": ":method", "string_match": {"exact": "POST"}}]
    routed = ", ".join(r.model for r in config.routes)
    return [
        {
            "name": f"{prefix}invalid_json",
            "match": {**client_paths, "headers": post, "dynamic_metadata": [flagged(INVALID_JSON)]},
            "direct_response": _direct(
                400,
                "The request body is not valid JSON (send a JSON object with content-type: application/json).",
            ),
        },
        {
            "name": f"{prefix}missing_model",
            "match": {**client_paths, "headers": post, "dynamic_metadata": [flagged(MISSING_MODEL)]},
            "direct_response": _direct(400, "The request body has no `model` field: say which model to use."),
        },
        {
            "name": f"{prefix}{UNKNOWN_MODEL}",
            "match": {**client_paths, "headers": post},
            "direct_response": _direct(
                404, f"The requested model is not routed by this gateway. Routed models: {routed}."
            ),
        },
        {
            "name": f"{prefix}method",
            "match": client_paths,
            "direct_response": _direct(405, "Use POST for this endpoint."),
        },
    ]


def flag(reason: str) -> dict[str, Any]:
    """The json_to_metadata action marking a request with `reason`.

    One key per reason, matched by presence: Envoy's route matcher did not match these values as strings.
    """
    return {"metadata_namespace": METADATA_NAMESPACE, "key": reason, "value": {"bool_value": True}}


def flagged(reason: str) -> dict[str, Any]:
    """A route match on a flag set by `flag`."""
    return {"filter": METADATA_NAMESPACE, "path": [{"key": reason}], "value": {"present_match": True}}
