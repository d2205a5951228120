"""The gateway nodes (Envoys) one control plane serves, and the few things that differ between them.

Every node gets the same clusters and routes. Only its listener may differ, in two ways, both asked for in
the node metadata its bootstrap sets (switchyard/supervisor/bootstrap.py), read by `node_view` and applied by
`listener_for_node` (pure) when a snapshot gives a node its resources (`Snapshot.resources_for`):
- a node started with `switchyard node --listen HOST:PORT` (`switchyard_listen`) gets the listener on that
  address;
- a node with several control-plane replicas (`switchyard_log_clusters`) gets one attempt logger per replica
  cluster instead of the one to `switchyard_xds`, so every replica sees every node's attempts.

`NodeRegistry` remembers, per ADS stream: the node's name, where it listens, since when it is connected, the
version it last applied in full (every resource type acknowledged at the current content), the last
rejection, and, once its stream has ended, since when it is gone. Gone nodes are kept a while (`GONE_KEPT_S`)
so an operator sees what left, then forgotten. Node names should be unique: two live streams under one name
from different node instances are both kept and shown as a conflict (status.py), never merged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from envoy.extensions.access_loggers.grpc.v3 import als_pb2 as grpc_access_log_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2

from controlplane.envoy_api import HttpConnectionManager, Listener
from switchyard.addresses import AddressError, TcpAddress, parse_address
from switchyard.contract import (
    CONTROLPLANE_CLUSTER,
    INSTANCE_METADATA_KEY,
    LISTEN_METADATA_KEY,
    LOG_CLUSTERS_METADATA_KEY,
)

log = logging.getLogger("switchyard.controlplane.nodes")

GONE_KEPT_S = 600.0


@dataclass(frozen=True)
class NodeView:
    """What an Envoy's node metadata asks of the listener it is sent; the defaults change nothing."""

    listen: TcpAddress | None = None  # its own listener address; None: the YAML's `listen`
    log_clusters: tuple[str, ...] = ()  # one attempt logger per cluster; (): the one to CONTROLPLANE_CLUSTER
    instance: str = ""  # which run of the node (empty for bootstraps not rendered by Switchyard)

    @property
    def changes_listener(self) -> bool:
        return self.listen is not None or bool(self.log_clusters)


def listener_for_node(listener: Listener, view: NodeView) -> Listener:
    """A copy of `listener` as `view` asks: on its own address, and/or with the attempt and answer logs sent to
    each of its control-plane clusters. Everything else (filters, limits) is unchanged."""
    rewritten = listener_with_address(listener, view.listen) if view.listen is not None else _copy(listener)
    if view.log_clusters:
        for chain in rewritten.filter_chains:
            for network_filter in chain.filters:
                hcm = HttpConnectionManager()
                if not network_filter.typed_config.Unpack(hcm):
                    continue
                _log_to_each(hcm.access_log, view.log_clusters)
                for http_filter in hcm.http_filters:
                    router = router_pb2.Router()
                    if http_filter.typed_config.Unpack(router):
                        _log_to_each(router.upstream_log, view.log_clusters)
                        http_filter.typed_config.Pack(router)
                network_filter.typed_config.Pack(hcm)
    return rewritten


def _copy(listener: Listener) -> Listener:
    copied = Listener()
    copied.CopyFrom(listener)
    return copied


def _log_to_each(loggers: Any, clusters: tuple[str, ...]) -> None:
    """Replace every gRPC access logger that streams to CONTROLPLANE_CLUSTER by one per cluster in `clusters`."""
    fanned_out = []
    for logger in loggers:
        config = grpc_access_log_pb2.HttpGrpcAccessLogConfig()
        unpacked = logger.typed_config.Unpack(config)
        if not unpacked or config.common_config.grpc_service.envoy_grpc.cluster_name != CONTROLPLANE_CLUSTER:
            fanned_out.append(logger)
            continue
        for cluster in clusters:
            config.common_config.grpc_service.envoy_grpc.cluster_name = cluster
            copy = type(logger)()
            copy.CopyFrom(logger)
            copy.typed_config.Pack(config)
            fanned_out.append(copy)
    del loggers[:]
    loggers.extend(fanned_out)


def listener_with_address(listener: Listener, address: TcpAddress) -> Listener:
    """A copy of `listener` listening on `address`; everything else (filters, limits) is unchanged."""
    rewritten = _copy(listener)
    rewritten.address.Clear()
    rewritten.address.socket_address.address = address.host
    rewritten.address.socket_address.port_value = address.port
    return rewritten


def requested_listen(node: Any) -> TcpAddress | None:
    """The listener address an Envoy's node metadata asks for (an `envoy.config.core.v3.Node`); None when it
    asks for none. A malformed one raises AddressError (the node then gets the YAML's address)."""
    fields = node.metadata.fields
    if LISTEN_METADATA_KEY not in fields:
        return None
    text = fields[LISTEN_METADATA_KEY].string_value
    address = parse_address(text)
    if not isinstance(address, TcpAddress):
        raise AddressError(f"{text!r}: a node's listener address is HOST:PORT")
    return address


def node_view(node: Any) -> NodeView:
    """Everything an Envoy's node metadata asks for; a malformed listener address is logged and ignored (the
    node gets the YAML's)."""
    fields = node.metadata.fields
    try:
        listen = requested_listen(node)
    except AddressError as error:
        log.error("Envoy %s asks for an invalid listener address (%s); it gets the YAML's", node.id, error)
        listen = None
    clusters: tuple[str, ...] = ()
    if LOG_CLUSTERS_METADATA_KEY in fields:
        values = fields[LOG_CLUSTERS_METADATA_KEY].list_value.values
        clusters = tuple(value.string_value for value in values if value.string_value)
    instance = fields[INSTANCE_METADATA_KEY].string_value if INSTANCE_METADATA_KEY in fields else ""
    return NodeView(listen, clusters, instance)


@dataclass
class NodeRecord:
    name: str
    listen: str | None  # the node's own listener address; None: the YAML's `listen`
    connected_at: float
    stream: int  # the ADS stream serving it
    applied_version: str | None = None  # the snapshot version it last applied in full
    applied_at: float | None = None
    rejected: str = ""  # Envoy's message for the last push it rejected, until it applies one
    gone_at: float | None = None
    instance: str = ""  # the node run's random id from its bootstrap ("" when it sets none)
    peer: str = ""  # where its ADS stream comes from, as gRPC says it (e.g. ipv4:10.0.0.7:51234)

    @property
    def live(self) -> bool:
        return self.gone_at is None


class NodeRegistry:
    """Fed by the ADS streams; read by the status API. Single-threaded (the control plane's event loop)."""

    def __init__(self, clock: Callable[[], float] = time.time, keep_gone_s: float = GONE_KEPT_S) -> None:
        self._clock = clock
        self._keep_gone_s = keep_gone_s
        self._nodes: dict[int, NodeRecord] = {}  # by ADS stream
        # Told when a node connects or leaves: the control plane divides client request limits by live nodes.
        self.on_change: Callable[[], None] = lambda: None

    def connected(self, stream: int, name: str, listen: str | None, instance: str = "", peer: str = "") -> None:
        """A new stream replaces a gone record of its name and a live one of the same instance (an Envoy that
        reconnected before its old stream was seen to end). Another live node under the same name is kept
        next to it: a conflict the status shows."""
        for other in list(self._nodes.values()):
            if other.name != name:
                continue
            if not other.live or (instance and other.instance == instance):
                del self._nodes[other.stream]
            else:
                log.warning(
                    "two live nodes are named %r (%s and %s): node names must be unique; both are listed as a conflict",
                    name,
                    other.peer or "?",
                    peer or "?",
                )
        self._nodes[stream] = NodeRecord(name, listen, self._clock(), stream, instance=instance, peer=peer)
        self.on_change()

    def applied(self, stream: int, version: str) -> None:
        record = self._nodes.get(stream)
        if record is not None:
            record.applied_version = version
            record.applied_at = self._clock()
            record.rejected = ""

    def rejected(self, stream: int, message: str) -> None:
        record = self._nodes.get(stream)
        if record is not None:
            record.rejected = message

    def disconnected(self, stream: int) -> None:
        record = self._nodes.get(stream)
        if record is not None:
            record.gone_at = self._clock()
            self.on_change()

    def live_names(self) -> set[str]:
        """The names of the nodes with a live ADS stream here."""
        return {record.name for record in self._nodes.values() if record.live}

    def records(self) -> list[NodeRecord]:
        """Every node, connected or gone for less than `keep_gone_s`, by name (then by connection time)."""
        now = self._clock()
        for stream, record in list(self._nodes.items()):
            if record.gone_at is not None and now - record.gone_at > self._keep_gone_s:
                del self._nodes[stream]
        return sorted(self._nodes.values(), key=lambda record: (record.name, record.connected_at))


def node_state(record: NodeRecord, current_version: str | None, conflict: bool = False) -> str:
    """`gone` (its stream ended), `conflict` (another live node has its name), `current` (it applied the
    snapshot in force), else `behind`."""
    if not record.live:
        return "gone"
    if conflict:
        return "conflict"
    if current_version is not None and record.applied_version == current_version:
        return "current"
    return "behind"


@dataclass
class LoggingNode:
    """A node with an attempt-log stream open to this control plane (its ADS stream may be elsewhere: a
    standby replica hears the whole fleet this way)."""

    name: str
    listen: str | None
    since: float = field(default_factory=time.time)
    streams: int = 0  # the attempt log and the answer log are one stream each
