"""Config → Envoy resources: a pure function, unit-testable without Envoy and pinned by a golden file.

Design (see shared notes on Envoy as an LLM failover data plane):
- one listener whose filters run once per client request (resources/listener.py), lifting the body's `model`
  into dynamic metadata so that routes (resources/routes.py) match on it and malformed JSON and unknown
  models are answered by Envoy without touching Python;
- one cluster per serving group of a route (resources/clusters.py); each config priority becomes an Envoy
  priority level whose endpoints carry the targets' weights, so Envoy's own retry machinery does failover
  within one client request (controlplane/failover.py);
- the *upstream* filters (the router's, or a cluster's own where attempts need the ext_proc) run again for
  every attempt and rewrite the request for whichever target Envoy picked (resources/upstream_filters.py);
- two gRPC access logs bring attempts and answers back to the control plane (resources/access_logs.py).

The names shared with the other processes and languages (ext_proc, Lua, the bootstrap) are in
switchyard/contract.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType

from controlplane.envoy_api import (
    CLUSTER_TYPE,
    LISTENER_TYPE,
    ROUTE_TYPE,
    Cluster,
    Listener,
    MessageCache,
    RouteConfiguration,
)
from controlplane.live_state import NO_LIVE_STATE, LiveState
from controlplane.resource_memo import ResourceMemo
from controlplane.resources.clusters import cluster, live_inputs
from controlplane.resources.listener import listener
from controlplane.resources.routes import route_configuration
from controlplane.resources.routes import route_name as route_name
from controlplane.resources.settings import DEFAULT_SETTINGS as DEFAULT_SETTINGS
from controlplane.resources.settings import TranslateSettings as TranslateSettings
from controlplane.resources.tracing import otlp_cluster
from switchyard.config import Config


@dataclass(frozen=True)
class EnvoyResources:
    listeners: tuple[Listener, ...]
    route_configs: tuple[RouteConfiguration, ...]
    clusters: tuple[Cluster, ...]
    # Each resource's canonical JSON by type, in the order above: what snapshots hash, because the dicts' text is
    # the same in every process where the bytes of a packed Any are not.
    texts: Mapping[str, tuple[str, ...]]


# Resources converted before (a health or latency change converts only what it changed), and the resources each
# config was translated into by what they were built from (it builds only what it changed). Both are invisible to
# callers: translate stays a pure function of its arguments.
_CONVERTED = MessageCache()
_MEMO = ResourceMemo(_CONVERTED)


def translate(
    config: Config, settings: TranslateSettings = DEFAULT_SETTINGS, live: LiveState = NO_LIVE_STATE
) -> EnvoyResources:
    """`live` health verdicts and latency change only the endpoints of the routes they concern: listeners,
    routes and every other cluster stay byte-identical, so Envoy leaves them alone. Refused clients and the
    node count (with `clients:` only) change the routes' client table and request limits (clients.py)."""
    listener_message, listener_text = _MEMO.resource(
        config, ("listener", settings), partial(listener, config, settings), Listener
    )
    route_message, route_text = _MEMO.resource(
        config,
        ("routes", settings, live.client_inputs(config)),
        partial(route_configuration, config, settings, live),
        RouteConfiguration,
    )
    built = [
        _MEMO.resource(
            config,
            ("cluster", group.cluster, settings, live_inputs(group, live)),
            partial(cluster, config, group, settings, live),
            Cluster,
        )
        for group in _MEMO.serving_groups(config)
    ]
    otlp = otlp_cluster(config)
    if otlp is not None:
        built.append(_MEMO.resource(config, ("otlp",), lambda: otlp, Cluster))
    resources = ((listener_message, listener_text), (route_message, route_text), *built)
    _CONVERTED.retain(sum(len(text) + message.ByteSize() for message, text in resources))
    return EnvoyResources(
        listeners=(listener_message,),
        route_configs=(route_message,),
        clusters=tuple(message for message, _ in built),
        texts=MappingProxyType(
            {
                LISTENER_TYPE: (listener_text,),
                ROUTE_TYPE: (route_text,),
                CLUSTER_TYPE: tuple(text for _, text in built),
            }
        ),
    )
