"""Guardrails on live traffic: one downstream ext_proc filter in the listener, enabled only on guarded routes.

Downstream, not per attempt: the listener's filters run once per client request (retries never re-run them), so a
fallback does not check the request again, and the answer they see is the one the client gets, after any
translation by the upstream ext_proc. The filter sits after the client check (client_auth.lua names the client in
CLIENT_HEADER) and json_to_metadata, before the router.

Unguarded traffic never reaches Python: the filter is off (`ExtProcPerRoute.disabled`, on the virtual host) and
turned on by a route's `typed_per_filter_config` only where the route has guardrails or some client that may call
it has its own. Not the HTTP filter's own `disabled` flag: Envoy decides that one when it builds the request's
filter chain, before json_to_metadata has lifted the `model` the routes match on, so no route is known yet and the
filter stayed off everywhere (measured on Envoy 1.40); the ext_proc filter reads its per-route config when the
request reaches it, with the route known. The per-route config carries the rules (`GuardSpec`) as the gRPC
initial metadata of the filter's stream: RDS, so an edit to a rule applies to the next request on every open
connection (a listener change would drain them), and the ext_proc holds no table that could lag behind. On a
route without rules of its own, a client without rules still costs one message (the request headers, answered
"nothing more"): the price of learning who the client is.

Which messages a guarded request costs is decided by the ext_proc as it goes (`allow_mode_override`): the request
headers (rules picked), the whole request body (BUFFERED: json_to_metadata before it already holds it), and, only
when the rules check answers, the response headers (the content type says whole or streamed) and the answer, whole
in one message or streamed chunk by chunk.
"""

from __future__ import annotations

from typing import Any

from controlplane import failover
from controlplane.envoy_api import seconds, typed
from controlplane.resources.settings import TranslateSettings
from switchyard.config import ClientEndpoint, Config, Route
from switchyard.config.guardrails import Guardrails, PluginGuardrail
from switchyard.contract import (
    EXTPROC_CLUSTER,
    GUARDRAILS_FILTER,
    GUARDRAILS_HEADER,
    GUARDRAILS_METADATA_NAMESPACE,
    GuardSpec,
)

# Until the ext_proc has seen the request headers; it then narrows this per request (mode_override).
_PROCESSING_MODE = {
    "request_header_mode": "SEND",
    "request_body_mode": "BUFFERED",
    "request_trailer_mode": "SKIP",
    "response_header_mode": "SKIP",
    "response_body_mode": "NONE",
    "response_trailer_mode": "SKIP",
}
# A check's own time beyond its plugins' budgets: the built-in checks are linear in the text.
_CHECK_ALLOWANCE_S = 2.0


def enabled(config: Config) -> bool:
    return config.has_guardrails


def _dumped(rules: Guardrails) -> tuple[dict[str, Any], ...]:
    return tuple(rule.model_dump(mode="json", by_alias=True, exclude_defaults=True) for rule in rules)


def guard_spec(config: Config, endpoint: ClientEndpoint, route: Route) -> GuardSpec | None:
    """The rules a request to `route` on `endpoint` may be checked with; None when no request there has any."""
    clients = tuple(
        (name, _dumped(client.guardrails))
        for name, client in sorted((config.clients or {}).items())
        if client.guardrails and (client.models is None or route.model in client.models)
    )
    if not route.guardrails and not clients:
        return None
    return GuardSpec(api=endpoint.api.value, route=_dumped(route.guardrails), clients=clients)


def route_fields(config: Config, endpoint: ClientEndpoint, route: Route) -> dict[str, Any]:
    """The per-route config that enables the filter on a guarded route, with the route's rules; {} elsewhere."""
    spec = guard_spec(config, endpoint, route)
    if spec is None:
        return {}
    per_route = typed(
        "envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute",
        overrides={"grpc_initial_metadata": [{"key": GUARDRAILS_HEADER, "value": spec.encode()}]},
    )
    return {"typed_per_filter_config": {GUARDRAILS_FILTER: per_route}}


def virtual_host_per_filter_config(config: Config) -> dict[str, Any]:
    """Off on every route that does not turn it on (a route's config is more specific than the virtual host's)."""
    if not enabled(config):
        return {}
    return {GUARDRAILS_FILTER: typed("envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute", disabled=True)}


def _message_timeout(config: Config, settings: TranslateSettings) -> float:
    """Long enough for the slowest plugin's budget: a plugin that overruns is judged by the ext_proc (on_error),
    which must answer before Envoy gives up on the message."""
    budgets = [
        rule.timeout
        for rules in [r.guardrails for r in config.routes] + [c.guardrails for c in (config.clients or {}).values()]
        for rule in rules
        if isinstance(rule, PluginGuardrail)
    ]
    return max([settings.extproc_message_timeout_s, _CHECK_ALLOWANCE_S, *(b + _CHECK_ALLOWANCE_S for b in budgets)])


def listener_filters(config: Config, settings: TranslateSettings) -> list[dict[str, Any]]:
    """The guardrails filter, disabled unless a route enables it; nothing when no route or client has rules."""
    if not enabled(config):
        return []
    return [
        {
            "name": GUARDRAILS_FILTER,
            "typed_config": typed(
                "envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
                grpc_service={
                    "envoy_grpc": {"cluster_name": EXTPROC_CLUSTER},
                    "timeout": "5s",
                    "retry_policy": failover.extproc_retry_policy(),
                },
                stat_prefix="guardrails",  # Envoy's counters of these streams: http.switchyard.ext_proc.guardrails.*
                # Closed: a request the checks could not see must not leave unchecked.
                failure_mode_allow=False,
                message_timeout=seconds(_message_timeout(config, settings)),
                processing_mode=_PROCESSING_MODE,
                allow_mode_override=True,
                # Out: what the checks did (rules and counts, never text), for the answer log.
                metadata_options={"receiving_namespaces": {"untyped": [GUARDRAILS_METADATA_NAMESPACE]}},
            ),
        }
    ]
