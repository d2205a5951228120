"""State-of-the-world ADS over grpc.aio: every Envoy gets the whole snapshot, clusters first.

Each stream is one sequential loop over two kinds of events, Envoy's requests and new snapshots, so there
is no interleaving to reason about. A request that answers the latest nonce is an ACK (or a NACK, logged
with Envoy's reason and not resent); any other request asks for the current version. When a new snapshot
arrives, only the resource types whose content changed are sent (a weight change is one CDS message), and
listeners and routes are held back until Envoy acknowledges the clusters they name.

Each stream sends what the snapshot gives for its node (`Snapshot.resources_for`, by what the node's metadata
asks: controlplane/nodes.py), and tells the node registry who connected, which version it applied in full,
what it rejected and when it left.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TypeAlias

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import any_pb2

from controlplane.envoy_api import CLUSTER_TYPE, PUSH_ORDER
from controlplane.nodes import NodeRegistry, NodeView, node_view
from controlplane.snapshot import Snapshot
from controlplane.store import SnapshotStore

log = logging.getLogger("switchyard.controlplane.ads")

_Event: TypeAlias = "discovery_pb2.DiscoveryRequest | Snapshot | None"


@dataclass
class _Sent:
    version: str
    nonce: str
    content: str  # the snapshot's hash of this type: unchanged content is not sent again


@dataclass
class _Stream:
    id: int
    node: str = "?"
    peer: str = ""
    view: NodeView = field(default_factory=NodeView)  # what its node metadata asks for
    snapshot: Snapshot | None = None
    subscribed: set[str] = field(default_factory=set)
    sent: dict[str, _Sent] = field(default_factory=dict)
    unacknowledged: set[str] = field(default_factory=set)
    awaiting_cluster_ack: bool = False
    rejected: set[str] = field(default_factory=set)  # types whose last push Envoy rejected
    applied: str | None = None  # the snapshot version Envoy has in full, as last told to the registry


class AdsService(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):  # type: ignore[misc]
    def __init__(self, store: SnapshotStore, nodes: NodeRegistry | None = None) -> None:
        self._store = store
        self.nodes = NodeRegistry() if nodes is None else nodes
        self._nonces = itertools.count(1)
        self._stream_ids = itertools.count(1)

    async def StreamAggregatedResources(
        self,
        request_iterator: AsyncIterator[discovery_pb2.DiscoveryRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[discovery_pb2.DiscoveryResponse]:
        events: asyncio.Queue[_Event] = asyncio.Queue()
        tasks = [
            asyncio.create_task(self._forward_requests(request_iterator, events)),
            asyncio.create_task(self._forward_snapshots(events)),
        ]
        stream = _Stream(next(self._stream_ids), peer=_peer(context))
        try:
            while (event := await events.get()) is not None:
                if isinstance(event, Snapshot):
                    responses = self._on_snapshot(stream, event)
                else:
                    responses = self._on_request(stream, event)
                self._note_applied(stream)
                for response in responses:
                    yield response
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.nodes.disconnected(stream.id)
            log.info("Envoy %s disconnected", stream.node)

    async def _forward_requests(
        self, requests: AsyncIterator[discovery_pb2.DiscoveryRequest], events: asyncio.Queue[_Event]
    ) -> None:
        try:
            async for request in requests:
                events.put_nowait(request)
        finally:
            events.put_nowait(None)

    async def _forward_snapshots(self, events: asyncio.Queue[_Event]) -> None:
        version: str | None = None
        while True:
            snapshot = await self._store.wait_newer_than(version)
            version = snapshot.version
            events.put_nowait(snapshot)

    def _on_snapshot(self, stream: _Stream, snapshot: Snapshot) -> list[discovery_pb2.DiscoveryResponse]:
        stream.snapshot = snapshot
        return self._outdated(stream)

    def _on_request(
        self, stream: _Stream, request: discovery_pb2.DiscoveryRequest
    ) -> list[discovery_pb2.DiscoveryResponse]:
        if request.node.id and stream.node == "?":
            self._on_connect(stream, request)
        type_url = request.type_url
        if type_url not in PUSH_ORDER:
            return []
        stream.subscribed.add(type_url)
        sent = stream.sent.get(type_url)
        if sent is not None and request.response_nonce:
            if request.response_nonce != sent.nonce:
                return []  # answers an older push; the newer one is still in flight
            self._on_reply(stream, type_url, sent, request)
        return self._outdated(stream)

    def _on_connect(self, stream: _Stream, request: discovery_pb2.DiscoveryRequest) -> None:
        stream.node = request.node.id
        stream.view = node_view(request.node)
        listen = None if stream.view.listen is None else str(stream.view.listen)
        self.nodes.connected(stream.id, stream.node, listen, stream.view.instance, stream.peer)
        log.info(
            "Envoy %s connected from %s%s%s",
            stream.node,
            stream.peer or "?",
            "" if listen is None else f" (its listener: {listen})",
            f" (attempt log to {len(stream.view.log_clusters)} control planes)" if stream.view.log_clusters else "",
        )

    def _on_reply(self, stream: _Stream, type_url: str, sent: _Sent, request: discovery_pb2.DiscoveryRequest) -> None:
        stream.unacknowledged.discard(type_url)
        if request.HasField("error_detail"):
            kind = type_url.rsplit(".", 1)[-1]
            message = request.error_detail.message
            log.error("Envoy %s rejected %s version %s: %s", stream.node, kind, sent.version, message)
            stream.rejected.add(type_url)
            self.nodes.rejected(stream.id, f"{kind} version {sent.version}: {message}")
            return  # a rejected cluster set must not be followed by routes that name its clusters
        stream.rejected.discard(type_url)
        if type_url == CLUSTER_TYPE:
            stream.awaiting_cluster_ack = False

    def _note_applied(self, stream: _Stream) -> None:
        """Tell the registry when Envoy has the stream's snapshot in full: every type that has resources sent at
        its current content and acknowledged, none rejected."""
        snapshot = stream.snapshot
        if snapshot is None or stream.node == "?" or stream.applied == snapshot.version:
            return
        if stream.unacknowledged or stream.rejected:
            return
        for type_url in PUSH_ORDER:
            if snapshot.resources[type_url] and self._needs(stream, type_url):
                return
        stream.applied = snapshot.version
        self.nodes.applied(stream.id, snapshot.version)
        # Here, once per version and stream: an ACK of each type in turn would otherwise say it every time
        # nothing else was outstanding (clusters acknowledged before the listener and routes went out).
        log.info("Envoy %s applied version %s", stream.node, snapshot.version)

    def _outdated(self, stream: _Stream) -> list[discovery_pb2.DiscoveryResponse]:
        """Responses for every subscribed type whose content Envoy does not have yet, in push order."""
        if stream.snapshot is None:
            stream.snapshot = self._store.current
        if stream.snapshot is None:
            return []
        responses = []
        for type_url in PUSH_ORDER:
            if type_url not in stream.subscribed or not self._needs(stream, type_url):
                continue
            if type_url != CLUSTER_TYPE and stream.awaiting_cluster_ack:
                continue
            if type_url == CLUSTER_TYPE:
                stream.awaiting_cluster_ack = True
            responses.append(self._response(stream, type_url))
        return responses

    def _needs(self, stream: _Stream, type_url: str) -> bool:
        assert stream.snapshot is not None
        sent = stream.sent.get(type_url)
        return sent is None or sent.content != stream.snapshot.type_hashes[type_url]

    def _response(self, stream: _Stream, type_url: str) -> discovery_pb2.DiscoveryResponse:
        snapshot = stream.snapshot
        assert snapshot is not None
        nonce = str(next(self._nonces))
        stream.sent[type_url] = _Sent(snapshot.version, nonce, snapshot.type_hashes[type_url])
        stream.unacknowledged.add(type_url)
        messages = snapshot.resources_for(stream.view)[type_url]
        resources = []
        for message in messages:
            packed = any_pb2.Any()
            packed.Pack(message)
            resources.append(packed)
        return discovery_pb2.DiscoveryResponse(
            version_info=snapshot.version, resources=resources, type_url=type_url, nonce=nonce
        )


def _peer(context: grpc.aio.ServicerContext | None) -> str:
    try:
        return str(context.peer()) if context is not None else ""
    except Exception:  # a context without a transport (tests): nobody to name
        return ""
