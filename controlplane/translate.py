"""Config → Envoy resources: a pure function, unit-testable without Envoy and pinned by a golden file.

Design (see shared notes on Envoy as an LLM failover data plane):
- one cluster per route; each config priority becomes an Envoy priority level whose endpoints carry the
  targets' weights, so Envoy's own retry machinery does failover within one client request;
- the body's `model` is lifted into dynamic metadata by `json_to_metadata`, and routes match on it, so
  malformed JSON and unknown models are answered by Envoy without touching Python;
- each cluster's *upstream* filter chain runs again for every attempt: a `header_mutation` filter and a Lua
  filter rewrite the request for whichever target Envoy picked, from that endpoint's metadata
  (controlplane/attempt_rewrite.py, envoy/lua/attempt_rewrite.lua); the ext_proc joins them only in clusters
  with a target of another API, and runs only on the attempts to such a target.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from controlplane import clients, errors_shape, responses_only
from controlplane.attempt_rewrite import TargetRewrite, group_rewrites, needs_translation
from controlplane.envoy_api import (
    METADATA_NAMESPACE,
    STREAM_METADATA_NAMESPACE,
    USAGE_METADATA_NAMESPACE,
    Cluster,
    Listener,
    RouteConfiguration,
    to_message,
    typed,
)
from controlplane.envoy_code import attempt_rewrite_lua, stream_usage_lua
from controlplane.live_state import NO_LIVE_STATE, LiveState
from controlplane.serving_groups import ServingGroup, Use, serving_groups
from controlplane.target_keys import target_key
from extproc import translation_request
from extproc.translators import parameters_that_may_not_translate
from switchyard.bootstrap import CONTROLPLANE_CLUSTER as CONTROLPLANE_CLUSTER  # xDS, and the attempt log going back
from switchyard.config import ClientEndpoint, Config, Route
from switchyard.config.model import LatencyMeasure, OnUnsupported

LISTENER_NAME = "switchyard_http"
ROUTE_CONFIG_NAME = "switchyard_routes"
EXTPROC_CLUSTER = "switchyard_extproc"  # defined in the bootstrap, next to the ext_proc processes
ATTEMPT_LOG_NAME = "switchyard_attempts"
ANSWER_LOG_NAME = "switchyard_answers"
TARGET_KEY_TAG = "switchyard_target"
OUTPUT_TOKENS_TAG = "switchyard_output_tokens"
# What the ext_proc measured of a translated stream (extproc/exchange.py), by key in its metadata → log tag
STREAM_TAGS = {
    "ttft_ms": "switchyard_ttft_ms",
    "output_tokens": "switchyard_stream_tokens",
    "input_tokens": "switchyard_stream_input_tokens",
    "generation_ms": "switchyard_generation_ms",
}
# The usage an answer reported, in either API's names (JSON answers: json_to_metadata; streams:
# envoy/lua/stream_usage.lua), by key in the usage metadata → log tag
USAGE_KEYS = (
    "prompt_tokens",
    "completion_tokens",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
USAGE_TAGS = {key: f"switchyard_usage_{key}" for key in USAGE_KEYS}
# Request members lifted into metadata for the Lua filters: whether the client streams (the rewrite then asks
# OpenAI targets for usage) and whether it asked for usage itself (else the usage-only chunk is kept from it).
STREAM_KEY = "stream"
CLIENT_USAGE_KEY = "client_usage"
TARGET_HEADER = "x-switchyard-target"
# Endpoint metadata key holding the target's rewrite, and the request header it travels in to the Lua filter.
REWRITE_METADATA_KEY = "rewrite"
REWRITE_HEADER = "x-switchyard-rewrite"
ATTEMPTS_HEADER = "x-switchyard-attempts"

_RETRY_ON = "retriable-status-codes,reset,connect-failure,refused-stream"
# Failover must not wait (R2): Envoy's default back-off (25 ms base, jittered) dominated failover latency.
_BACKOFF = {"base_interval": "0.001s", "max_interval": "0.002s"}
# Envoy allows 3 concurrent retries per cluster by default; under load most failovers then overflow.
_LIMIT = 1_000_000
_CIRCUIT_BREAKERS = {
    "thresholds": [
        {
            "priority": p,
            "max_connections": _LIMIT,
            "max_pending_requests": _LIMIT,
            "max_requests": _LIMIT,
            "max_retries": _LIMIT,
        }
        for p in ("DEFAULT", "HIGH")
    ]
}
# Any healthy share of a priority takes all of its traffic: a half-ejected A/B pair keeps serving from the
# healthy half rather than spilling to the backup priority (Envoy's default factor is 1.4).
_OVERPROVISIONING = 100_000


@dataclass(frozen=True)
class TranslateSettings:
    """What the translation needs beyond the YAML: facts about where it runs."""

    tls_ca_file: str = "/etc/ssl/certs/ca-certificates.crt"
    extproc_message_timeout_s: float = 2.0
    # False only to measure the floor of this design (`make bench`): no upstream filters at all, so requests
    # reach providers with the client's path, model and credentials.
    rewrite_attempts: bool = True


DEFAULT_SETTINGS = TranslateSettings()


@dataclass(frozen=True)
class EnvoyResources:
    listeners: tuple[Listener, ...]
    route_configs: tuple[RouteConfiguration, ...]
    clusters: tuple[Cluster, ...]


def route_name(endpoint: ClientEndpoint, route: Route) -> str:
    """`<endpoint>:<model>`: the Lua rewrite reads the client endpoint from it (an attempt's path is no guide:
    an earlier attempt may have rewritten it), and so do the local-reply mappers that pick the error shape."""
    return f"{endpoint.value}:{route.model}"


def translate(
    config: Config, settings: TranslateSettings = DEFAULT_SETTINGS, live: LiveState = NO_LIVE_STATE
) -> EnvoyResources:
    """`live` health verdicts and latency change only the endpoints of the routes they concern: listeners,
    routes and every other cluster stay byte-identical, so Envoy leaves them alone. Refused clients and the
    node count (with `clients:` only) change the routes' client table and request limits (clients.py)."""
    return EnvoyResources(
        listeners=(to_message(_listener(config), Listener),),
        route_configs=(to_message(_route_configuration(config, live), RouteConfiguration),),
        clusters=tuple(
            to_message(_cluster(config, group, settings, live), Cluster)
            for route in config.routes
            for group in serving_groups(config, route)
        ),
    )


def _seconds(value: float) -> str:
    return f"{value:.3f}s"


def _listener(config: Config) -> dict[str, Any]:
    counts_tokens = any(r.latency.measure is LatencyMeasure.PER_OUTPUT_TOKEN for r in config.routes)
    skips = any(r.on_unsupported_parameter is OnUnsupported.SKIP_TARGET for r in config.routes)
    hcm = typed(
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        stat_prefix="switchyard",
        codec_type="AUTO",
        rds={
            "route_config_name": ROUTE_CONFIG_NAME,
            "config_source": {"ads": {}, "resource_api_version": "V3"},
        },
        http_filters=[
            _readiness_filter(),
            {
                "name": "envoy.filters.http.json_to_metadata",
                "typed_config": typed(
                    "envoy.extensions.filters.http.json_to_metadata.v3.JsonToMetadata",
                    request_rules={
                        "rules": [
                            {
                                "selectors": [{"key": "model"}],
                                "on_present": {"metadata_namespace": METADATA_NAMESPACE, "key": "model"},
                                "on_missing": errors_shape.flag(errors_shape.MISSING_MODEL),
                                "on_error": errors_shape.flag(errors_shape.INVALID_JSON),
                            },
                            *_stream_rules(),
                            *(_own_api_only_rules() if skips else []),
                            *responses_only.listener_rules(),
                        ],
                        "allow_empty_content_type": True,
                        "allow_content_types": ["application/json", "text/plain"],
                    },
                    response_rules=_usage_rules(counts_tokens),
                ),
            },
            *clients.listener_filters(config),
            _stream_usage_filter(),
            {
                "name": "envoy.filters.http.router",
                "typed_config": typed(
                    "envoy.extensions.filters.http.router.v3.Router",
                    suppress_envoy_headers=True,
                    upstream_log=[_attempt_log()],
                ),
            },
        ],
        local_reply_config=errors_shape.local_reply_config(config),
        access_log=[_answer_log(config)],
        # Streams can legitimately idle between tokens; routes set their own idle timeout from the YAML.
        stream_idle_timeout="300s",
        request_timeout="0s",
        server_name="switchyard",
    )
    return {
        "name": LISTENER_NAME,
        "address": {"socket_address": {"address": config.listen_host, "port_value": config.listen_port}},
        "per_connection_buffer_limit_bytes": config.max_request_body + 65536,
        "filter_chains": [
            {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
        ],
    }


READINESS_PATH = "/healthz"


def _readiness_filter() -> dict[str, Any]:
    """`GET /healthz` on the client port, for load balancers: 200 while serving, 503 from the moment a drain
    starts (the supervisor tells Envoy's admin `/healthcheck/fail`), while requests in flight still finish."""
    return {
        "name": "envoy.filters.http.health_check",
        "typed_config": typed(
            "envoy.extensions.filters.http.health_check.v3.HealthCheck",
            pass_through_mode=False,
            headers=[{"name": ":path", "string_match": {"exact": READINESS_PATH}}],
        ),
    }


OWN_API_ONLY = "own_api_only"


def _own_api_only_rules() -> list[dict[str, Any]]:
    """Flag requests carrying a parameter another API may not express, for routes that skip such targets.

    Each rule copies the parameter's value into one key that the routes match on by presence. Measured on
    Envoy 1.40: a constant `value` in `on_present` flagged requests without the parameter too, and presence
    only counts primitive values, so object parameters are looked at through a primitive member. A map
    without a fixed member (`logit_bias`) cannot be: such requests are refused by the target with a 400."""
    rules = []
    for name in sorted(parameters_that_may_not_translate()):
        if name in _NO_PRIMITIVE_MEMBER:
            continue
        path = [{"key": name}, *({"key": member} for member in _PRIMITIVE_MEMBER.get(name, ()))]
        rules.append({"selectors": path, "on_present": {"metadata_namespace": METADATA_NAMESPACE, "key": OWN_API_ONLY}})
    return rules


_PRIMITIVE_MEMBER = {"response_format": ("type",), "thinking": ("type",)}
_NO_PRIMITIVE_MEMBER = frozenset({"logit_bias"})


def _stream_rules() -> list[dict[str, Any]]:
    """`stream` and `stream_options.include_usage` of the request, for the Lua filters (see STREAM_KEY)."""
    return [
        {"selectors": [{"key": "stream"}], "on_present": {"metadata_namespace": METADATA_NAMESPACE, "key": STREAM_KEY}},
        {
            "selectors": [{"key": "stream_options"}, {"key": "include_usage"}],
            "on_present": {"metadata_namespace": METADATA_NAMESPACE, "key": CLIENT_USAGE_KEY},
        },
    ]


def _usage_rules(counts_tokens: bool) -> dict[str, Any]:
    """A whole answer's `usage`, lifted into metadata for the answer log: what usage accounting counts, and
    (routes measuring per output token) `completion_tokens` for the latency average, as before.

    Only JSON answers match: a matching body is held until complete (harmless, the client waits for all of it
    anyway) while an event stream passes through untouched (stream_usage.lua reads those). A charset parameter
    must still match."""

    def rule(key: str, namespace: str) -> dict[str, Any]:
        return {
            "selectors": [{"key": "usage"}, {"key": key}],
            "on_present": {"metadata_namespace": namespace, "key": key, "type": "NUMBER"},
        }

    rules = [rule(key, USAGE_METADATA_NAMESPACE) for key in USAGE_KEYS]
    if counts_tokens:
        rules.append(rule("completion_tokens", METADATA_NAMESPACE))
    return {"rules": rules, "allow_content_types_regex": {"regex": "application/json(;.*)?"}}


def _stream_usage_filter() -> dict[str, Any]:
    """envoy/lua/stream_usage.lua: the usage of streamed answers, on their way to the client."""
    return {
        "name": "switchyard.stream_usage",
        "typed_config": typed(
            "envoy.extensions.filters.http.lua.v3.Lua", default_source_code={"inline_string": stream_usage_lua()}
        ),
    }


def _grpc_log(name: str, tags: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """Envoy buffers the entries and streams them to the control plane asynchronously: no request waits."""
    target_tag = {
        "tag": TARGET_KEY_TAG,
        "metadata": {"kind": {"host": {}}, "metadata_key": {"key": METADATA_NAMESPACE, "path": [{"key": "key"}]}},
    }
    return {
        "name": "envoy.access_loggers.http_grpc",
        "typed_config": typed(
            "envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig",
            common_config={
                "log_name": name,
                "transport_api_version": "V3",
                "grpc_service": {"envoy_grpc": {"cluster_name": CONTROLPLANE_CLUSTER}},
                "buffer_flush_interval": "0.250s",
                "buffer_size_bytes": 16384,
                "custom_tags": [target_tag, *tags],
            },
            **extra,
        ),
    }


def _attempt_log() -> dict[str, Any]:
    """One log entry per upstream attempt: how the control plane learns each target's statuses and latency.
    The target is the key in the picked endpoint's metadata; `retry-after` says how long a 429 asks for.
    """
    return _grpc_log(ATTEMPT_LOG_NAME, [], additional_response_headers_to_log=["retry-after"])


def _answer_log(config: Config) -> dict[str, Any]:
    """One entry per client request, about the answer that reached the client: the usage it reported (usage
    accounting), its output tokens (routes measuring per output token) and what the ext_proc measured of a
    stream it translated (time to first token, generation time, tokens). The router's per-attempt log cannot
    carry any of it: metadata set by filters, even the upstream ext_proc's, lands on the request, which only
    this log sees."""

    def tag(name: str, namespace: str, key: str) -> dict[str, Any]:
        return {
            "tag": name,
            "metadata": {"kind": {"request": {}}, "metadata_key": {"key": namespace, "path": [{"key": key}]}},
        }

    tags = [tag(OUTPUT_TOKENS_TAG, METADATA_NAMESPACE, "completion_tokens")]
    tags.extend(tag(name, STREAM_METADATA_NAMESPACE, key) for key, name in STREAM_TAGS.items())
    tags.extend(tag(name, USAGE_METADATA_NAMESPACE, key) for key, name in USAGE_TAGS.items())
    return _grpc_log(ANSWER_LOG_NAME, [*tags, *clients.answer_log_tags(config)])


def _route_configuration(config: Config, live: LiveState) -> dict[str, Any]:
    routes: list[dict[str, Any]] = [errors_shape.models_list_route(config)]
    for route in config.routes:
        groups = {use: group for group in serving_groups(config, route) for use in group.uses}
        for endpoint in ClientEndpoint:
            openai_only = groups.get(Use(endpoint, own_api_only=False, openai_only=True))
            served = _model_route(endpoint, openai_only) if openai_only else None
            routes.extend(responses_only.routes(config, endpoint, route, served))  # before all: they match too
            flagged = groups.get(Use(endpoint, own_api_only=True))
            if flagged is not None:  # before the unflagged route, which would match as well
                routes.append(_model_route(endpoint, flagged, own_api_only=True))
            group = groups.get(Use(endpoint, own_api_only=False))
            routes.append(_model_route(endpoint, group) if group else _unserved_route(config, endpoint, route))
    routes.extend(errors_shape.client_error_routes(config))
    return {
        "name": ROUTE_CONFIG_NAME,
        "virtual_hosts": [
            {
                "name": "switchyard",
                "domains": ["*"],
                # Without an explicit limit Envoy silently skips retries of bodies over 1 MiB.
                "request_body_buffer_limit": config.max_request_body,
                "routes": routes,
                **clients.virtual_host_fields(config, live),
            }
        ],
    }


def _unserved_route(config: Config, endpoint: ClientEndpoint, route: Route) -> dict[str, Any]:
    """No target of the route has this endpoint (an embeddings call to a route of Anthropic models)."""
    kinds = ", ".join(f"{t.display_name} ({config.provider_of(t).kind.value})" for t in route.targets)
    return {
        "name": route_name(endpoint, route),
        "match": _model_match(endpoint, route),
        "direct_response": {
            "status": 400,
            "body": {"inline_string": f"No target of model {route.model} can serve {endpoint.path}: {kinds}."},
        },
    }


def _model_match(endpoint: ClientEndpoint, route: Route, own_api_only: bool = False) -> dict[str, Any]:
    flags = [errors_shape.flagged(OWN_API_ONLY)] if own_api_only else []
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


def _model_route(endpoint: ClientEndpoint, group: ServingGroup, own_api_only: bool = False) -> dict[str, Any]:
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
            "idle_timeout": _seconds(route.timeout * attempts + 5.0),
            "auto_host_rewrite": True,
            "retry_policy": {
                "retry_on": _RETRY_ON,
                "retriable_status_codes": list(route.fallback_codes),
                # Each target at most once per request (R2).
                "num_retries": attempts - 1,
                "per_try_timeout": _seconds(route.timeout),
                "retry_back_off": _BACKOFF,
                "retry_host_predicate": [
                    {
                        "name": "envoy.retry_host_predicates.previous_hosts",
                        "typed_config": typed("envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"),
                    }
                ],
                "host_selection_retry_max_attempts": 8 * attempts,
                "retry_priority": {
                    "name": "envoy.retry_priorities.previous_priorities",
                    "typed_config": typed(
                        "envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig",
                        update_frequency=1,
                    ),
                },
            },
        },
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


def _rewrite_metadata(rewrite: TargetRewrite | None) -> dict[str, str]:
    return {} if rewrite is None else {REWRITE_METADATA_KEY: rewrite.encode()}


def _load_assignment(
    config: Config, group: ServingGroup, rewrites: tuple[TargetRewrite | None, ...], live: LiveState
) -> dict[str, Any]:
    """Each target is a locality of its own, weighted by its placement, at its placement's priority level.

    A locality per target (rather than weighted endpoints) keeps a target's share independent of how many
    addresses its provider's name resolves to; the addresses inside share the target's traffic evenly.
    Targets out of service are marked unhealthy: Envoy tries them only when nothing healthier is left in the
    route (panic mode), never before.

    The endpoints stay inline (STRICT_DNS) rather than going over EDS: EDS keeps only the first endpoint of
    each address (envoyproxy/envoy#22417), and two targets of one provider (gpt-4o and gpt-4o-mini on
    api.openai.com) share an address. A weight or health change therefore updates this route's cluster.
    """
    route = group.route
    placed = live.placements(route)
    levels = sorted({p.priority for p in placed})
    envoy_priority = {level: rank for rank, level in enumerate(levels)}  # Envoy wants 0..N-1 without gaps
    localities = []
    for target, placement, rewrite in zip(route.targets, placed, rewrites, strict=True):
        provider = config.provider_of(target)
        key = target_key(route, target)
        rank = envoy_priority[placement.priority]
        endpoint_metadata = {
            "filter_metadata": {
                METADATA_NAMESPACE: {"key": key, "target": target.display_name, **_rewrite_metadata(rewrite)},
                # Plain-HTTP endpoints match no entry and get the cluster's default (plaintext) socket.
                "envoy.transport_socket_match": {"tls_host": provider.host if provider.uses_tls else ""},
            }
        }
        localities.append(
            {
                "priority": rank,
                "locality": {"zone": f"priority-{rank}", "sub_zone": target.display_name},
                "load_balancing_weight": placement.weight,
                "lb_endpoints": [
                    {
                        "endpoint": {
                            "address": {"socket_address": {"address": provider.host, "port_value": provider.port}},
                            "hostname": provider.authority,
                        },
                        **({"health_status": "UNHEALTHY"} if key in live.out_of_service else {}),
                        "metadata": endpoint_metadata,
                    }
                ],
            }
        )
    return {
        "cluster_name": group.cluster,
        "endpoints": localities,
        "policy": {"overprovisioning_factor": _OVERPROVISIONING},
    }


def _cluster(config: Config, group: ServingGroup, settings: TranslateSettings, live: LiveState) -> dict[str, Any]:
    route = group.route
    rewrites = group_rewrites(config, group) if settings.rewrite_attempts else None
    return {
        "name": group.cluster,
        "type": "STRICT_DNS",
        "dns_lookup_family": "V4_PREFERRED",
        "load_assignment": _load_assignment(config, group, rewrites or (None,) * len(route.targets), live),
        "connect_timeout": _seconds(min(route.timeout, 5.0)),
        "lb_policy": "ROUND_ROBIN",
        "common_lb_config": {"locality_weighted_lb_config": {}},
        "per_connection_buffer_limit_bytes": config.max_request_body + 65536,
        "circuit_breakers": _CIRCUIT_BREAKERS,
        **_outlier_detection(route),
        "transport_socket_matches": _tls_matches(config, route, settings),
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": typed(
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                explicit_http_config={"http_protocol_options": {}},
                http_filters=[*_attempt_filters(rewrites, settings), _upstream_codec()],
            )
        },
    }


_GATEWAY_FAILURES = frozenset({502, 503, 504})


def _outlier_detection(route: Route) -> dict[str, Any]:
    """Each Envoy's own, immediate ejection of a target failing in a row, for the failures it can tell
    apart: no response at all (refused, reset, timed out) always, and 502/503/504 only when the route falls
    back on all three. Envoy cannot be told which other codes count, and a target must not be penalised for
    a code outside the fallback codes, so everything else is judged by the control plane's recorder, which
    sees exact codes from every Envoy and ejects over EDS."""
    failures = route.health.consecutive_failures
    if failures == 0:
        return {}
    gateway = 100 if set(route.fallback_codes) >= _GATEWAY_FAILURES else 0
    return {
        "outlier_detection": {
            "split_external_local_origin_errors": True,
            "consecutive_local_origin_failure": failures,
            "enforcing_consecutive_local_origin_failure": 100,
            "consecutive_gateway_failure": failures,
            "enforcing_consecutive_gateway_failure": gateway,
            "enforcing_consecutive_5xx": 0,
            "enforcing_success_rate": 0,
            "enforcing_local_origin_success_rate": 0,
            "interval": "1s",
            "base_ejection_time": _seconds(route.health.ejection_time),
            "max_ejection_time": _seconds(max(60.0, route.health.ejection_time)),
            "max_ejection_percent": 100,
        }
    }


def _tls_matches(config: Config, route: Route, settings: TranslateSettings) -> list[dict[str, Any]]:
    """One TLS socket per https host, with SNI and the verified name fixed to that host.

    Envoy's auto_sni/auto_san_validation derive both from the Host header, which carries the port when it is
    not 443, so an https provider on another port failed verification. The host is known here: use it.
    """
    hosts = sorted({p.host for t in route.targets if (p := config.provider_of(t)).uses_tls})
    matches = []
    for host in hosts:
        is_ip = _is_ip(host)
        common = {
            "validation_context": {
                "trusted_ca": {"filename": settings.tls_ca_file},
                "match_typed_subject_alt_names": [
                    {"san_type": "IP_ADDRESS" if is_ip else "DNS", "matcher": {"exact": host}}
                ],
            }
        }
        tls = typed(
            "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            common_tls_context=common,
            **({} if is_ip else {"sni": host}),  # SNI must be a name, never an IP address
        )
        matches.append(
            {
                "name": f"tls:{host}",
                "match": {"tls_host": host},
                "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": tls},
            }
        )
    return matches


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _attempt_filters(rewrites: tuple[TargetRewrite, ...] | None, settings: TranslateSettings) -> list[dict[str, Any]]:
    """The per-attempt rewrite, in Envoy: the picked endpoint's rewrite into a header, which the Lua filter
    applies and removes; then, in clusters with a target of another API, the ext_proc for those attempts."""
    if rewrites is None:
        return []
    filters = [_rewrite_header_filter(), _lua_rewrite_filter()]
    if needs_translation(rewrites):
        filters.append(_translating_extproc_filter(settings))
    return filters


def _rewrite_header_filter() -> dict[str, Any]:
    """`%UPSTREAM_METADATA%` resolves to the endpoint Envoy picked for this attempt: Lua has no access to it.

    The header is removed first: an endpoint without the metadata would otherwise leave a client's own
    `x-switchyard-rewrite` in place (measured on Envoy 1.40), and the Lua filter would apply it."""
    return {
        "name": "envoy.filters.http.header_mutation",
        "typed_config": typed(
            "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
            mutations={
                "request_mutations": [
                    {"remove": REWRITE_HEADER},
                    {
                        "append": {
                            "header": {
                                "key": REWRITE_HEADER,
                                "value": f"%UPSTREAM_METADATA({METADATA_NAMESPACE}:{REWRITE_METADATA_KEY})%",
                            },
                            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                        }
                    },
                ]
            },
        ),
    }


def _lua_rewrite_filter() -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.lua",
        "typed_config": typed(
            "envoy.extensions.filters.http.lua.v3.Lua",
            default_source_code={"inline_string": attempt_rewrite_lua()},
        ),
    }


def _translating_extproc_filter(settings: TranslateSettings) -> dict[str, Any]:
    """The ext_proc, skipped (per attempt, by Envoy) unless the Lua filter asked for a translation.

    Envoy evaluates the matcher on the request headers as the Lua filter left them, so attempts to a target of
    the client's own API never reach Python, even in a route that mixes APIs (measured on Envoy 1.40)."""
    extproc = {
        "name": "envoy.filters.http.ext_proc",
        "typed_config": typed(
            "envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
            grpc_service={
                "envoy_grpc": {"cluster_name": EXTPROC_CLUSTER},
                "timeout": "5s",
                # A stream that cannot open, or is reset before the ext_proc answered (an ext_proc just died),
                # opens again, on another ext_proc if one is up. Measured on Envoy 1.40 under load: for a few
                # tenths of a second after a SIGKILL, Envoy's load balancer still picks the dead process (even
                # flagged as ejected), sometimes for every retry of a stream, until the restarted process
                # listens (0.3-0.8 s after the kill on 2 busy cores). So retries are many and backed off: up
                # to 20, each within 10 ms..0.25 s (jittered; about 2.5 s in all on average, the first within
                # 10 ms), to outlast that window or the restart. 10 retries (about 0.6 s) still lost one
                # request in ~20 chaos runs, refused on the dead socket to the last retry. Safe: the ext_proc
                # is stateless and a reset stream had no answer yet, so the retried stream starts from
                # scratch. Only failures pay for it.
                "retry_policy": {
                    "retry_on": "connect-failure,refused-stream,reset,unavailable",
                    "num_retries": 20,
                    "retry_back_off": {"base_interval": "0.01s", "max_interval": "0.25s"},
                    "retry_host_predicate": [
                        {
                            "name": "envoy.retry_host_predicates.previous_hosts",
                            "typed_config": typed(
                                "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
                            ),
                        }
                    ],
                    "host_selection_retry_max_attempts": 8,
                },
            },
            # Deliberate: an untranslated body would reach a provider of another API. A local reply from an
            # upstream filter is never retried, so keep the ext_proc up.
            failure_mode_allow=False,
            # A same-API attempt that only has body rules applied skips the response (extproc/exchange.py).
            allow_mode_override=True,
            message_timeout=_seconds(settings.extproc_message_timeout_s),
            # Only translated attempts get here (the matcher below), and each needs its body and the response.
            # The ext_proc reports what it measured (time to first token, output tokens) into the answer log.
            metadata_options={"receiving_namespaces": {"untyped": [STREAM_METADATA_NAMESPACE]}},
            processing_mode={
                "request_header_mode": "SEND",
                "response_header_mode": "SEND",
                "request_body_mode": "BUFFERED",
                # Chunks as they arrive: a stream's are translated at once, a whole answer's held to its end.
                "response_body_mode": "STREAMED",
                "request_trailer_mode": "SKIP",
                "response_trailer_mode": "SKIP",
            },
        ),
    }
    skip_unless_translated = {
        "matcher_list": {
            "matchers": [
                {
                    "predicate": {
                        "not_matcher": {
                            "single_predicate": {
                                "input": {
                                    "name": "translation",
                                    "typed_config": typed(
                                        "envoy.type.matcher.v3.HttpRequestHeaderMatchInput",
                                        header_name=translation_request.HEADER,
                                    ),
                                },
                                "value_match": {"prefix": translation_request.VALUE_PREFIX},
                            }
                        }
                    },
                    "on_match": {
                        "action": {
                            "name": "skip",
                            "typed_config": typed("envoy.extensions.filters.common.matcher.action.v3.SkipFilter"),
                        }
                    },
                }
            ]
        }
    }
    return {
        "name": "switchyard.translate",
        "typed_config": typed(
            "envoy.extensions.common.matching.v3.ExtensionWithMatcher",
            xds_matcher=skip_unless_translated,
            extension_config=extproc,
        ),
    }


def _upstream_codec() -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.upstream_codec",
        "typed_config": typed("envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"),
    }
