"""State-of-the-world ADS over grpc.aio: every Envoy gets the whole snapshot, clusters first.

Each stream is one sequential loop over two kinds of events, Envoy's requests and new snapshots, so there
is no interleaving to reason about. A request that answers the latest nonce is an ACK (or a NACK, logged
with Envoy's reason and not resent); any other request asks for the current version. When a new snapshot
arrives, listeners and routes are held back until Envoy acknowledges the clusters they name.
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
from controlplane.snapshot import Snapshot
from controlplane.store import SnapshotStore

log = logging.getLogger("switchyard.controlplane.ads")

_Event: TypeAlias = "discovery_pb2.DiscoveryRequest | Snapshot | None"


@dataclass
class _Sent:
    version: str
    nonce: str


@dataclass
class _Stream:
    node: str = "?"
    snapshot: Snapshot | None = None
    subscribed: set[str] = field(default_factory=set)
    sent: dict[str, _Sent] = field(default_factory=dict)
    acked: dict[str, str] = field(default_factory=dict)
    awaiting_cluster_ack: bool = False


class AdsService(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):  # type: ignore[misc]
    def __init__(self, store: SnapshotStore) -> None:
        self._store = store
        self._nonces = itertools.count(1)

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
        stream = _Stream()
        try:
            while (event := await events.get()) is not None:
                if isinstance(event, Snapshot):
                    responses = self._on_snapshot(stream, event)
                else:
                    responses = self._on_request(stream, event)
                for response in responses:
                    yield response
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
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
        if CLUSTER_TYPE in stream.subscribed:
            stream.awaiting_cluster_ack = True
            return [self._response(stream, CLUSTER_TYPE)]
        return self._outdated(stream)

    def _on_request(
        self, stream: _Stream, request: discovery_pb2.DiscoveryRequest
    ) -> list[discovery_pb2.DiscoveryResponse]:
        if request.node.id and stream.node == "?":
            stream.node = request.node.id
            log.info("Envoy %s connected", stream.node)
        type_url = request.type_url
        if type_url not in PUSH_ORDER:
            return []
        stream.subscribed.add(type_url)
        sent = stream.sent.get(type_url)
        if sent is not None and request.response_nonce:
            if request.response_nonce != sent.nonce:
                return []  # answers an older push; the newer one is still in flight
            return self._on_reply(stream, type_url, sent, request)
        return self._outdated(stream)

    def _on_reply(
        self, stream: _Stream, type_url: str, sent: _Sent, request: discovery_pb2.DiscoveryRequest
    ) -> list[discovery_pb2.DiscoveryResponse]:
        kind = type_url.rsplit(".", 1)[-1]
        if request.HasField("error_detail"):
            log.error(
                "Envoy %s rejected %s version %s: %s",
                stream.node,
                kind,
                sent.version,
                request.error_detail.message,
            )
            return []  # a rejected cluster set must not be followed by routes that name its clusters
        stream.acked[type_url] = sent.version
        if all(stream.acked.get(t) == sent.version for t in stream.subscribed):
            log.info("Envoy %s applied version %s", stream.node, sent.version)
        if type_url == CLUSTER_TYPE:
            stream.awaiting_cluster_ack = False
            return self._outdated(stream)
        return []

    def _outdated(self, stream: _Stream) -> list[discovery_pb2.DiscoveryResponse]:
        """Responses for every subscribed type not yet sent at the current version, in push order."""
        if stream.snapshot is None:
            stream.snapshot = self._store.current
        snapshot = stream.snapshot
        if snapshot is None:
            return []
        responses = []
        for type_url in PUSH_ORDER:
            if type_url not in stream.subscribed:
                continue
            sent = stream.sent.get(type_url)
            if sent is not None and sent.version == snapshot.version:
                continue
            if type_url != CLUSTER_TYPE and stream.awaiting_cluster_ack:
                continue
            if type_url == CLUSTER_TYPE:
                stream.awaiting_cluster_ack = True
            responses.append(self._response(stream, type_url))
        return responses

    def _response(self, stream: _Stream, type_url: str) -> discovery_pb2.DiscoveryResponse:
        assert stream.snapshot is not None
        nonce = str(next(self._nonces))
        stream.sent[type_url] = _Sent(stream.snapshot.version, nonce)
        resources = []
        for message in stream.snapshot.resources[type_url]:
            packed = any_pb2.Any()
            packed.Pack(message)
            resources.append(packed)
        return discovery_pb2.DiscoveryResponse(
            version_info=stream.snapshot.version, resources=resources, type_url=type_url, nonce=nonce
        )
