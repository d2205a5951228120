"""The gateway nodes (Envoys) one control plane serves, and the one thing that differs between them.

Every node gets the same clusters and routes. Only the listener's address may differ: a node started with
`switchyard node --listen HOST:PORT` says so in its bootstrap's node metadata (`switchyard_listen`), and its
ADS stream sends it the snapshot's listener with that address (`listener_with_address`, pure).

`NodeRegistry` remembers, per node id: where it listens, since when it is connected, the version it last
applied in full (every resource type acknowledged at the current content), the last rejection, and, once
its stream has ended, since when it is gone. Gone nodes are kept a while (`GONE_KEPT_S`) so an operator sees
what left, then forgotten.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controlplane.envoy_api import Listener
from switchyard.addresses import AddressError, TcpAddress, parse_address
from switchyard.bootstrap import LISTEN_METADATA_KEY

log = logging.getLogger("switchyard.controlplane.nodes")

GONE_KEPT_S = 600.0


def listener_with_address(listener: Listener, address: TcpAddress) -> Listener:
    """A copy of `listener` listening on `address`; everything else (filters, limits) is unchanged."""
    rewritten = Listener()
    rewritten.CopyFrom(listener)
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


@dataclass
class NodeRecord:
    name: str
    listen: str | None  # the node's own listener address; None: the YAML's `listen`
    connected_at: float
    stream: int  # the ADS stream serving it: a reconnection under the same name replaces the record
    applied_version: str | None = None  # the snapshot version it last applied in full
    applied_at: float | None = None
    rejected: str = ""  # Envoy's message for the last push it rejected, until it applies one
    gone_at: float | None = None


class NodeRegistry:
    """Fed by the ADS streams; read by the status API. Single-threaded (the control plane's event loop)."""

    def __init__(self, clock: Callable[[], float] = time.time, keep_gone_s: float = GONE_KEPT_S) -> None:
        self._clock = clock
        self._keep_gone_s = keep_gone_s
        self._nodes: dict[str, NodeRecord] = {}

    def connected(self, stream: int, name: str, listen: str | None) -> None:
        earlier = self._nodes.get(name)
        if earlier is not None and earlier.gone_at is None:
            log.warning("a second Envoy connected as node %r: node ids should be unique; showing the newer", name)
        self._nodes[name] = NodeRecord(name, listen, self._clock(), stream)

    def applied(self, stream: int, version: str) -> None:
        record = self._of(stream)
        if record is not None:
            record.applied_version = version
            record.applied_at = self._clock()
            record.rejected = ""

    def rejected(self, stream: int, message: str) -> None:
        record = self._of(stream)
        if record is not None:
            record.rejected = message

    def disconnected(self, stream: int) -> None:
        record = self._of(stream)
        if record is not None:
            record.gone_at = self._clock()

    def records(self) -> list[NodeRecord]:
        """Every node, connected or gone for less than `keep_gone_s`, by name."""
        now = self._clock()
        for name, record in list(self._nodes.items()):
            if record.gone_at is not None and now - record.gone_at > self._keep_gone_s:
                del self._nodes[name]
        return sorted(self._nodes.values(), key=lambda record: record.name)

    def _of(self, stream: int) -> NodeRecord | None:
        """The record a stream serves; None once another stream took its name over."""
        return next((r for r in self._nodes.values() if r.stream == stream), None)


def node_state(record: NodeRecord, current_version: str | None) -> str:
    """`gone` (its stream ended), `current` (it applied the snapshot in force), else `behind`."""
    if record.gone_at is not None:
        return "gone"
    if current_version is not None and record.applied_version == current_version:
        return "current"
    return "behind"
