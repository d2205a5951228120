"""The route table: one route per (client endpoint, model), matched on the `model` the listener lifted into
metadata, sending to the cluster of the targets that can serve it (controlplane/serving_groups.py) under the
failover policy of controlplane/failover.py. The virtual host looks the routes up by the request's routing key
(controlplane/resources/route_index.py) rather than trying them in order.

An endpoint that no target of the model serves is answered by Envoy with a 400. Client limits live on the
virtual host (controlplane/clients.py), error shapes in the routes of controlplane/errors_shape.py.
"""

from __future__ import annotations

from typing import Any

from controlplane import affinity, clients, errors_shape, failover
from controlplane.envoy_api import METADATA_NAMESPACE, seconds
from controlplane.live_state import LiveState
from controlplane.resources import guardrails, responses_only, route_index, tracing
from controlplane.resources.settings import TranslateSettings
from controlplane.serving_groups import ServingGroup, Use, serving_groups
from switchyard import contract
from switchyard.config import ClientEndpoint, Config, Route
from switchyard.contract import ATTEMPTS_HEADER, ROUTE_CONFIG_NAME, ROUTE_KEY_HEADER, TARGET_HEADER


def route_name(endpoint: ClientEndpoint, route: Route) -> str:
    """The Envoy route of a client endpoint for a route's model (see `contract.route_name`)."""
    return contract.route_name(endpoint.value, route.model)


def route_configuration(config: Config, settings: TranslateSettings, live: LiveState) -> dict[str, Any]:
    routes = route_list(config, settings, live)
    return {
        "name": ROUTE_CONFIG_NAME,
        **_direct_response_limit(routes),
        "virtual_hosts": [
            {
                "name": "switchyard",
                "domains": ["*"],
                # Without an explicit limit Envoy silently skips retries of bodies over 1 MiB.
                "request_body_buffer_limit": config.max_request_body,
                **route_index.virtual_host_routing(routes),
                **_virtual_host_fields(config, live),
            }
        ],
    }


def route_list(config: Config, settings: TranslateSettings, live: LiveState) -> list[dict[str, Any]]:
    """Every route, in the order Envoy would try them (route_index.py then indexes what it can)."""
    routes: list[dict[str, Any]] = [errors_shape.models_list_route(config)]
    for route in config.routes:
        groups = {use: group for group in serving_groups(config, route) for use in group.uses}
        for endpoint in ClientEndpoint:
            openai_only = groups.get(Use(endpoint, own_api_only=False, openai_only=True))
            served = _model_route(config, settings, endpoint, openai_only) if openai_only else None
            routes.extend(responses_only.routes(config, endpoint, route, served))  # before all: they match too
            flagged = groups.get(Use(endpoint, own_api_only=True))
            if flagged is not None:  # before the unflagged route, which would match as well
                routes.append(_model_route(config, settings, endpoint, flagged, own_api_only=True))
            group = groups.get(Use(endpoint, own_api_only=False))
            routes.append(
                _model_route(config, settings, endpoint, group) if group else _unserved_route(config, endpoint, route)
            )
    routes.extend(errors_shape.client_error_routes(config))
    return routes


def _virtual_host_fields(config: Config, live: LiveState) -> dict[str, Any]:
    """The clients' fields, and the routing key taken off before any attempt (envoy/lua/route_key.lua)."""
    fields = clients.virtual_host_fields(config, live)
    return {**fields, "request_headers_to_remove": [*fields.get("request_headers_to_remove", ()), ROUTE_KEY_HEADER]}


# Envoy's default limit on a direct response's body. Over it, Envoy rejects the whole route configuration.
ENVOY_DIRECT_RESPONSE_LIMIT = 4096


def _direct_response_limit(routes: list[dict[str, Any]]) -> dict[str, Any]:
    """Raises Envoy's limit on the bodies it answers with itself to the largest there is, where one is larger.

    Why: `GET /v1/models` lists every route's model, and at about 55 routes that list passed Envoy's default
    4 KiB: Envoy then rejected the route configuration, so a config of many routes never went into force."""
    largest = max(
        (
            len(r["direct_response"]["body"]["inline_string"].encode())
            for r in routes
            if "body" in r.get("direct_response", {})
        ),
        default=0,
    )
    return {"max_direct_response_body_size_bytes": largest} if largest > ENVOY_DIRECT_RESPONSE_LIMIT else {}


def _unserved_route(config: Config, endpoint: ClientEndpoint, route: Route) -> dict[str, Any]:
    """No target of the route has this endpoint (an embeddings call to a route of Anthropic models)."""
    kinds = ", ".join(f"{t.display_name} ({config.provider_of(t).kind.value})" for t in route.targets)
    message = f"No target of model {route.model} can serve {endpoint.path}: {kinds}."
    if endpoint.counts_tokens:
        message += f" {COUNTING_PROVIDERS}"
    return {
        "name": route_name(endpoint, route),
        "match": _model_match(endpoint, route),
        "direct_response": {"status": 400, "body": {"inline_string": message}},
    }


# Why a route's targets may not count tokens (controlplane/providers/: which adapters have a counting path).
COUNTING_PROVIDERS = (
    "Token counts come from the provider's own counting API, which OpenAI, Anthropic, Bedrock and Gemini have "
    "and Azure OpenAI and OpenAI-compatible servers do not."
)


def _model_match(endpoint: ClientEndpoint, route: Route, own_api_only: bool = False) -> dict[str, Any]:
    flags = [errors_shape.flagged(contract.OWN_API_ONLY_KEY)] if own_api_only else []
    return {
        "path": endpoint.path,
        "headers": [{"name": ":method", "string_match": {"exact": "POST"}}],
        "dynamic_metadata": [
            {
                "filter": METADATA_NAMESPACE,
                "path": [{"key": "model"}],
                "value": {"string_match": {"exact": route.model}},
            },
            *flags,
        ],
    }


def _model_route(
    config: Config,
    settings: TranslateSettings,
    endpoint: ClientEndpoint,
    group: ServingGroup,
    own_api_only: bool = False,
) -> dict[str, Any]:
    route = group.route
    attempts = len(route.targets)
    return {
        "name": route_name(endpoint, route),
        "match": _model_match(endpoint, route, own_api_only),
        "route": {
            "cluster": group.cluster,
            # Whole-request timeouts would cut long streams; each attempt is bounded by per_try_timeout until
            # response headers, and a stalled stream by idle_timeout. No bytes reach the client while attempts
            # time out one after another, so the idle timer must outlast all of them or it fires first.
            "timeout": "0s",
            "idle_timeout": seconds(route.timeout * attempts + 5.0),
            "auto_host_rewrite": True,
            "retry_policy": failover.route_retry_policy(route),
            **affinity.hash_policy(route, endpoint),
        },
        **tracing.route_fields(config, endpoint, route),
        **guardrails.route_fields(config, settings, endpoint, route),
        "response_headers_to_add": [
            {
                "header": {
                    "key": TARGET_HEADER,
                    "value": f"%UPSTREAM_METADATA({METADATA_NAMESPACE}:target)%",
                },
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            },
            {
                "header": {"key": ATTEMPTS_HEADER, "value": "%UPSTREAM_REQUEST_ATTEMPT_COUNT%"},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            },
        ],
    }
