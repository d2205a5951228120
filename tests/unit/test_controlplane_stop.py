"""`switchyard controlplane` on SIGTERM: short but orderly, even with an ADS stream open (Envoy keeps its
config); a second signal does not wait for the grace. One real control plane process on a Unix socket."""

from __future__ import annotations

import queue
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from switchyard.supervisor.processes import wait_until
from tests.support.grpc_process import GrpcProcess, switchyard_grpc_process

CLUSTERS = "type.googleapis.com/envoy.config.cluster.v3.Cluster"


@pytest.fixture
def controlplane(tmp_path: Path) -> Iterator[GrpcProcess]:
    config = tmp_path / "c.yaml"
    config.write_text(
        "listen: 127.0.0.1:18999\nproviders: {p: {kind: openai_compatible, base_url: 'http://127.0.0.1:9'}}\n"
        "routes: [{model: m, targets: [{provider: p, model: m}]}]\n"
    )
    socket_path = tmp_path / "xds.sock"
    args = ["controlplane", str(config), "--listen", f"unix:{socket_path}"]
    with switchyard_grpc_process(args, socket_path, tmp_path / "controlplane.log") as running:
        yield running


def _subscribe(channel: grpc.Channel) -> Iterator[discovery_pb2.DiscoveryResponse]:
    """An ADS stream like Envoy's, left open: the first answer (the clusters) has arrived."""
    outgoing: queue.Queue[discovery_pb2.DiscoveryRequest | None] = queue.Queue()
    outgoing.put(discovery_pb2.DiscoveryRequest(type_url=CLUSTERS))
    stream: Iterator[discovery_pb2.DiscoveryResponse] = ads_pb2_grpc.AggregatedDiscoveryServiceStub(
        channel
    ).StreamAggregatedResources(iter(outgoing.get, None), timeout=30)
    assert next(stream).type_url == CLUSTERS
    return stream


@pytest.mark.parametrize("signals", [1, 2])
def test_sigterm_closes_the_ads_streams_and_exits(controlplane: GrpcProcess, signals: int) -> None:
    process, channel, log = controlplane
    stream = _subscribe(channel)
    signalled = time.monotonic()
    process.send_signal(signal.SIGTERM)
    if signals == 2:
        assert wait_until(lambda: "control plane stopping" in log.read_text(), 10)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
    process.wait(10)
    took = time.monotonic() - signalled
    assert process.returncode == 0, log.read_text()
    # One signal: the open streams get a second. Two: they are closed at once.
    assert took < (0.8 if signals == 2 else 3.0), f"stopped {took:.2f}s after the last signal"
    with pytest.raises(grpc.RpcError):
        next(stream)
    text = log.read_text()
    assert "closing ADS and attempt-log streams (Envoy keeps its config)" in text and "control plane stopped" in text
