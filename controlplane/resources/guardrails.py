"""Guardrails on live traffic: one downstream ext_proc filter, created only for requests to guarded routes.

Downstream, not per attempt: the listener's filters run once per client request (retries never re-run them), so a
fallback does not check the request again, and the answer they see is the one the client gets, after any
translation by the upstream ext_proc. The filter sits after the client check (client_auth.lua names the client in
CLIENT_HEADER) and json_to_metadata, before the router.

Unguarded traffic does not even create the ext_proc filter. The listener holds a composite filter wrapped in
ExtensionWithMatcher with no matcher of its own, so Envoy skips it; a guarded route (one with guardrails, or one
that some client with its own may call) carries an ExtensionWithMatcherPerRoute whose matcher, with nothing to
read, always answers ExecuteFilterAction: the composite then creates the ext_proc filter for that request. The
wrapper reads the route's matcher in its decodeHeaders, after json_to_metadata has lifted the `model` the routes
match on. The ext_proc filter turned off by `ExtProcPerRoute.disabled` (the earlier design) still cost an
unguarded request 20-50 us of Envoy CPU (of ~200 that Switchyard adds to a bare Envoy): Envoy created it,
its gRPC client included, for every request (bench/envoy_costs.py, `guard_plain`). Not the HTTP filter's own
`disabled` flag either: Envoy decides that one when it builds the request's filter chain, before the model is
lifted, so no route is known yet.

Each guarded route's ext_proc config carries its rules (`GuardSpec`) as its gRPC stream's initial metadata: RDS,
so an edit to a rule applies to the next request on every open connection (a listener change would drain them),
and the ext_proc holds no table that could lag behind. Envoy builds the filter from a route's config with only
the server's context, so its counters are `http..ext_proc.guardrails.*` (the empty segment is Envoy's), shared
by all routes; `http.switchyard.composite.filter_delegation_success` counts the requests that had the filter.
On a route without rules of its own, a client without rules still costs one message (the request headers,
answered "nothing more"): the price of learning who the client is.

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
    GUARD_READS_HEADERS,
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
_COMPOSITE = "envoy.extensions.filters.http.composite.v3.Composite"
_EXECUTE_FILTER = "envoy.extensions.filters.http.composite.v3.ExecuteFilterAction"
_MATCHER_WRAPPER = "envoy.extensions.common.matching.v3.ExtensionWithMatcher"
_PER_ROUTE_MATCHER = "envoy.extensions.common.matching.v3.ExtensionWithMatcherPerRoute"
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


def route_fields(config: Config, settings: TranslateSettings, endpoint: ClientEndpoint, route: Route) -> dict[str, Any]:
    """On a guarded route, the wrapper's matcher, which always has the composite create the ext_proc filter with
    this route's rules; {} elsewhere (no matcher: the wrapper skips the composite, no ext_proc filter exists)."""
    spec = guard_spec(config, endpoint, route)
    if spec is None:
        return {}
    ext_proc = {"name": "envoy.filters.http.ext_proc", "typed_config": _ext_proc(config, settings, spec)}
    create = {"action": {"name": "guard", "typed_config": typed(_EXECUTE_FILTER, typed_config=ext_proc)}}
    # A matcher of `on_no_match` alone matches every request: nothing to read, so no input to allow.
    per_route = typed(_PER_ROUTE_MATCHER, xds_matcher={"on_no_match": create})
    return {"typed_per_filter_config": {GUARDRAILS_FILTER: per_route}}


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


def _ext_proc(config: Config, settings: TranslateSettings, spec: GuardSpec) -> dict[str, Any]:
    return typed(
        "envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
        grpc_service={
            "envoy_grpc": {"cluster_name": EXTPROC_CLUSTER},
            "timeout": "5s",
            "retry_policy": failover.extproc_retry_policy(),
            "initial_metadata": [{"key": GUARDRAILS_HEADER, "value": spec.encode()}],
        },
        stat_prefix="guardrails",  # Envoy's counters of these streams: http..ext_proc.guardrails.*
        # Closed: a request the checks could not see must not leave unchecked.
        failure_mode_allow=False,
        message_timeout=seconds(_message_timeout(config, settings)),
        processing_mode=_PROCESSING_MODE,
        allow_mode_override=True,
        forward_rules={"allowed_headers": {"patterns": [{"exact": name} for name in GUARD_READS_HEADERS]}},
        # Out: what the checks did (rules and counts, never text), for the answer log.
        metadata_options={"receiving_namespaces": {"untyped": [GUARDRAILS_METADATA_NAMESPACE]}},
    )


def listener_filters(config: Config) -> list[dict[str, Any]]:
    """The composite filter in a matcher wrapper without a matcher of its own: skipped unless a route's
    matcher (route_fields) says otherwise; nothing when no route or client has rules."""
    if not enabled(config):
        return []
    composite = {"name": "envoy.filters.http.composite", "typed_config": typed(_COMPOSITE)}
    return [{"name": GUARDRAILS_FILTER, "typed_config": typed(_MATCHER_WRAPPER, extension_config=composite)}]
