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

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

from google.protobuf.message import Message

from controlplane.envoy_api import (
    CLUSTER_TYPE,
    LISTENER_TYPE,
    ROUTE_TYPE,
    Cluster,
    Listener,
    MessageCache,
    RouteConfiguration,
    canonical_json,
)
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
    # Each resource's canonical JSON by type, in the order above: what snapshots hash, because the dicts' text is
    # the same in every process where the bytes of a packed Any are not.
    texts: Mapping[str, tuple[str, ...]]


M = TypeVar("M", bound=Message)

# Resources converted before: a health or latency change re-translates everything but converts only the
# resources it changed (the cache is invisible to callers: translate stays a pure function of its arguments).
_CONVERTED = MessageCache()


def _convert(dicts: list[dict[str, Any]], message_type: type[M]) -> tuple[tuple[M, ...], tuple[str, ...]]:
    texts = tuple(canonical_json(data) for data in dicts)
    return tuple(_CONVERTED.message(text, data, message_type) for text, data in zip(texts, dicts, strict=True)), texts


def translate(
    config: Config, settings: TranslateSettings = DEFAULT_SETTINGS, live: LiveState = NO_LIVE_STATE
) -> EnvoyResources:
    """`live` health verdicts and latency change only the endpoints of the routes they concern: listeners,
    routes and every other cluster stay byte-identical, so Envoy leaves them alone. Refused clients and the
    node count (with `clients:` only) change the routes' client table and request limits (clients.py)."""
    listeners, listener_texts = _convert([listener(config, settings)], Listener)
    route_configs, route_texts = _convert([route_configuration(config, settings, live)], RouteConfiguration)
    cluster_dicts = [
        cluster(config, group, settings, live) for route in config.routes for group in serving_groups(config, route)
    ]
    otlp = otlp_cluster(config)
    clusters, cluster_texts = _convert(cluster_dicts if otlp is None else [*cluster_dicts, otlp], Cluster)
    return EnvoyResources(
        listeners=listeners,
        route_configs=route_configs,
        clusters=clusters,
        texts=MappingProxyType({LISTENER_TYPE: listener_texts, ROUTE_TYPE: route_texts, CLUSTER_TYPE: cluster_texts}),
    )
