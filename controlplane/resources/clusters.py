"""One cluster per serving group: its targets as endpoints, how Envoy connects to them, and failover.

Each config priority becomes an Envoy priority level whose endpoints carry the targets' weights, so Envoy's
own retry machinery fails over within one client request (controlplane/failover.py). Live health verdicts and
weights change only these clusters' endpoints. The per-attempt rewrite runs in the upstream filters, from the
picked endpoint's metadata: the router's, or the cluster's own where attempts need the ext_proc
(resources/upstream_filters.py).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from controlplane import affinity, failover
from controlplane.attempt_rewrite import TargetRewrite, group_rewrites
from controlplane.envoy_api import METADATA_NAMESPACE, seconds, typed
from controlplane.live_state import LiveState
from controlplane.resources import tracing
from controlplane.resources.settings import TranslateSettings
from controlplane.resources.upstream_filters import cluster_upstream_filters
from controlplane.serving_groups import ServingGroup
from controlplane.target_keys import target_key
from switchyard.config import Config, Route
from switchyard.contract import REWRITE_METADATA_KEY


def cluster(config: Config, group: ServingGroup, settings: TranslateSettings, live: LiveState) -> dict[str, Any]:
    route = group.route
    rewrites = group_rewrites(config, group) if settings.rewrite_attempts else None
    return {
        "name": group.cluster,
        "type": "STRICT_DNS",
        "dns_lookup_family": "V4_PREFERRED",
        "load_assignment": _load_assignment(config, group, rewrites or (None,) * len(route.targets), live),
        "connect_timeout": seconds(min(route.timeout, 5.0)),
        "lb_policy": affinity.lb_policy(route),
        "common_lb_config": {"locality_weighted_lb_config": {}},
        "per_connection_buffer_limit_bytes": config.max_request_body + 65536,
        "circuit_breakers": failover.CIRCUIT_BREAKERS,
        **failover.outlier_detection(route),
        "transport_socket_matches": _tls_matches(config, route, settings),
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": typed(
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                common_http_protocol_options={"idle_timeout": seconds(_idle_timeout(config, route))},
                explicit_http_config={"http_protocol_options": {}},
                **_own_upstream_filters(rewrites, settings),
            )
        },
    }


def _idle_timeout(config: Config, route: Route) -> float:
    """Idle connections close before the providers close them (Provider.idle_timeout): Envoy's default keeps
    them an hour, and a server that closes one as a request leaves on it fails that request."""
    return min(config.provider_of(target).idle_timeout for target in route.targets)


def _own_upstream_filters(rewrites: tuple[TargetRewrite, ...] | None, settings: TranslateSettings) -> dict[str, Any]:
    """Where attempts need the ext_proc; elsewhere the router's serve (resources/upstream_filters.py)."""
    filters = cluster_upstream_filters(rewrites, settings)
    return {"http_filters": filters} if filters else {}


def live_inputs(group: ServingGroup, live: LiveState) -> tuple[object, ...]:
    """All `cluster` reads from `live`: its route's placements and which of its targets are out of service
    (controlplane/resource_memo.py builds a cluster again only when these change)."""
    route = group.route
    keys = (target_key(route, target) for target in route.targets)
    return live.placements(route), frozenset(key for key in keys if key in live.out_of_service)


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
                METADATA_NAMESPACE: {
                    "key": key,
                    "target": target.display_name,
                    **_rewrite_metadata(rewrite),
                    **tracing.endpoint_metadata(config, provider, target),
                },
                # Plain-HTTP endpoints match no entry and get the cluster's default (plaintext) socket.
                "envoy.transport_socket_match": {"tls_host": provider.host if provider.uses_tls else ""},
                **affinity.endpoint_hash_key(route, key),
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
        "policy": {"overprovisioning_factor": failover.OVERPROVISIONING},
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
