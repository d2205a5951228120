"""An immutable, versioned, consistency-checked view of everything the control plane serves.

Built in one step from a validated config, so Envoy is only ever sent a complete, self-consistent set: a route
never names a cluster that is not in the same snapshot, and no endpoint lacks its per-attempt rewrite.

Versions are derived from content (`snapshot_of`), never counted: two control-plane replicas on the same YAML
hand out the same version for the same resources, and a restarted one the version its nodes already have.

A snapshot is also the cache the ADS streams serve from, keyed by node like go-control-plane's: each node gets
`resources_for(its NodeView)`, the same resources except a listener as its metadata asks (controlplane/nodes.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from google.protobuf.message import Message

from controlplane.envoy_api import (
    CLUSTER_TYPE,
    LISTENER_TYPE,
    METADATA_NAMESPACE,
    ROUTE_TYPE,
    HttpConnectionManager,
)
from controlplane.live_state import NO_LIVE_STATE, LiveState
from controlplane.nodes import NodeView, listener_for_node
from controlplane.resources.route_index import route_messages
from controlplane.translate import DEFAULT_SETTINGS, TranslateSettings, translate
from switchyard.config import Config
from switchyard.contract import CONTROLPLANE_CLUSTER, EXTPROC_CLUSTER, OTLP_CLUSTER, REWRITE_METADATA_KEY

# Clusters that live in Envoy's bootstrap rather than in any snapshot.
BOOTSTRAP_CLUSTERS = frozenset({EXTPROC_CLUSTER, CONTROLPLANE_CLUSTER})


class InconsistentSnapshotError(Exception):
    pass


@dataclass(frozen=True)
class Snapshot:
    version: str
    resources: Mapping[str, tuple[Message, ...]]
    content_hash: str
    config: Config
    live: LiveState = NO_LIVE_STATE
    # per resource type: lets each Envoy be sent only the types that changed (a weight change is CDS only)
    type_hashes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    _per_node: dict[NodeView, Mapping[str, tuple[Message, ...]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def resources_for(self, node: NodeView) -> Mapping[str, tuple[Message, ...]]:
        """What one node is sent, built once per distinct view of this snapshot. Its type hashes stay the
        snapshot's: what a node asks for never changes while its stream lasts, so they still tell it apart
        from an older snapshot."""
        if not node.changes_listener:
            return self.resources
        resources = self._per_node.get(node)
        if resources is None:
            listeners = tuple(listener_for_node(listener, node) for listener in self.resources[LISTENER_TYPE])
            resources = self._per_node[node] = MappingProxyType({**self.resources, LISTENER_TYPE: listeners})
        return resources

    @property
    def config_version(self) -> str:
        """The YAML's version: "c0ffee123456.0123456789ab" is config c0ffee123456 (what the YAML alone gives)
        under live state (health, weights) that changed the resources to 0123456789ab."""
        return self.version.partition(".")[0]

    @property
    def route_count(self) -> int:
        return len(self.config.routes)

    @property
    def target_count(self) -> int:
        return sum(len(route.targets) for route in self.config.routes)


def build_snapshot(
    config: Config,
    version: str,
    settings: TranslateSettings = DEFAULT_SETTINGS,
    live: LiveState = NO_LIVE_STATE,
) -> Snapshot:
    envoy = translate(config, settings, live)
    resources = MappingProxyType(
        {
            CLUSTER_TYPE: envoy.clusters,
            LISTENER_TYPE: envoy.listeners,
            ROUTE_TYPE: envoy.route_configs,
        }
    )
    _check_consistency(resources, rewrites=settings.rewrite_attempts)
    type_hashes = {type_url: _hash(envoy.texts[type_url]) for type_url in resources}
    return Snapshot(
        version=version,
        resources=resources,
        content_hash=_hash(f"{type_url} {digest}" for type_url, digest in sorted(type_hashes.items())),
        config=config,
        live=live,
        type_hashes=MappingProxyType(type_hashes),
    )


VERSION_DIGITS = 12  # of a sha256: short enough to read, long enough never to collide between configs


def snapshot_of(
    config: Config,
    settings: TranslateSettings = DEFAULT_SETTINGS,
    live: LiveState = NO_LIVE_STATE,
    config_version: str | None = None,
) -> Snapshot:
    """A snapshot versioned by its content. The config version is the content hash of the config's resources
    under no live state; when the live state changes them, the version adds the hash of what is served:
    `CONFIG.LIVE`. Pass the config version when it is known (a live-state push), to translate once."""
    if config_version is None:
        base = build_snapshot(config, "", settings)
        config_version = base.content_hash[:VERSION_DIGITS]
        if live == NO_LIVE_STATE:
            return replace(base, version=config_version)
    snapshot = build_snapshot(config, "", settings, live)
    served = snapshot.content_hash[:VERSION_DIGITS]
    return replace(snapshot, version=config_version if served == config_version else f"{config_version}.{served}")


def _check_consistency(messages: Mapping[str, tuple[Message, ...]], rewrites: bool = True) -> None:
    # Envoy's generated message classes are untyped (Any) for mypy; say so once rather than per attribute.
    resources: Mapping[str, tuple[Any, ...]] = messages
    clusters = {c.name for c in resources[CLUSTER_TYPE]}
    route_configs = {r.name for r in resources[ROUTE_TYPE]}
    problems: list[str] = []
    for rc in resources[ROUTE_TYPE]:
        for vhost in rc.virtual_hosts:
            for route in route_messages(vhost):
                if route.HasField("route") and route.route.cluster not in clusters | BOOTSTRAP_CLUSTERS:
                    problems.append(f"route {route.name!r} names unknown cluster {route.route.cluster!r}")
    for listener in resources[LISTENER_TYPE]:
        for chain in listener.filter_chains:
            for network_filter in chain.filters:
                hcm = HttpConnectionManager()
                network_filter.typed_config.Unpack(hcm)
                if hcm.rds.route_config_name not in route_configs:
                    problems.append(f"listener {listener.name!r} names unknown routes {hcm.rds.route_config_name!r}")
    for cluster in resources[CLUSTER_TYPE]:
        if cluster.name == OTLP_CLUSTER:  # the trace receiver, not a route's
            continue
        for locality in cluster.load_assignment.endpoints:
            for lb_endpoint in locality.lb_endpoints:
                fields = lb_endpoint.metadata.filter_metadata[METADATA_NAMESPACE].fields
                if rewrites and not fields[REWRITE_METADATA_KEY].string_value:
                    key = fields["key"].string_value
                    problems.append(f"endpoint key {key!r} of cluster {cluster.name!r} has no rewrite")
    if problems:
        raise InconsistentSnapshotError("; ".join(problems))


def _hash(texts: Iterable[str]) -> str:
    """Of the content, not the bytes: a packed `Any` (every typed_config) holds its message serialized with
    maps in an order that differs between processes, so two replicas would hash the same config apart. The
    resources' canonical JSON (translate's `texts`) is the same everywhere. One line per text (compact JSON
    has no newline), so no two lists hash alike."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\n")
    return digest.hexdigest()
