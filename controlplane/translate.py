"""Config → Envoy resources: a pure function, unit-testable without Envoy and pinned by a golden file.

Design (see shared notes on Envoy as an LLM failover data plane):
- one listener whose filters run once per client request (resources/listener.py), lifting the body's `model`
  into dynamic metadata so that routes (resources/routes.py) match on it and malformed JSON and unknown
  models are answered by Envoy without touching Python;
- one cluster per serving group of a route (resources/clusters.py); each config priority becomes an Envoy
  priority level whose endpoints carry the targets' weights, so Envoy's own retry machinery does failover
  within one client request (controlplane/failover.py);
- each cluster's *upstream* filter chain runs again for every attempt and rewrites the request for whichever
  target Envoy picked (resources/upstream_filters.py);
- two gRPC access logs bring attempts and answers back to the control plane (resources/access_logs.py).

The names shared with the other processes and languages (ext_proc, Lua, the bootstrap) are in
switchyard/contract.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.envoy_api import Cluster, Listener, RouteConfiguration, to_message
from controlplane.live_state import NO_LIVE_STATE, LiveState
from controlplane.resources.clusters import cluster
from controlplane.resources.listener import listener
from controlplane.resources.routes import route_configuration
from controlplane.resources.routes import route_name as route_name
from controlplane.resources.settings import DEFAULT_SETTINGS as DEFAULT_SETTINGS
from controlplane.resources.settings import TranslateSettings as TranslateSettings
from controlplane.resources.tracing import otlp_cluster
from controlplane.serving_groups import serving_groups
from switchyard.config import Config


@dataclass(frozen=True)
class EnvoyResources:
    listeners: tuple[Listener, ...]
    route_configs: tuple[RouteConfiguration, ...]
    clusters: tuple[Cluster, ...]


def translate(
    config: Config, settings: TranslateSettings = DEFAULT_SETTINGS, live: LiveState = NO_LIVE_STATE
) -> EnvoyResources:
    """`live` health verdicts and latency change only the endpoints of the routes they concern: listeners,
    routes and every other cluster stay byte-identical, so Envoy leaves them alone. Refused clients and the
    node count (with `clients:` only) change the routes' client table and request limits (clients.py)."""
    return EnvoyResources(
        listeners=(to_message(listener(config, settings), Listener),),
        route_configs=(to_message(route_configuration(config, settings, live), RouteConfiguration),),
        clusters=tuple(
            to_message(cluster(config, group, settings, live), Cluster)
            for route in config.routes
            for group in serving_groups(config, route)
        )
        + _tracing_clusters(config),
    )


def _tracing_clusters(config: Config) -> tuple[Cluster, ...]:
    otlp = otlp_cluster(config)
    return () if otlp is None else (to_message(otlp, Cluster),)
