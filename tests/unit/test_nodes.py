"""Many gateway nodes on one control plane: the per-node listener address, the node registry (connect, apply,
behind, rejected, gone), the ADS stream that feeds it, and how /status, /metrics and `switchyard status` show
the nodes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from envoy.config.core.v3 import base_pb2
from envoy.service.accesslog.v3 import als_pb2
from envoy.service.discovery.v3 import discovery_pb2
from prometheus_client import CollectorRegistry, generate_latest

from controlplane.ads import AdsService
from controlplane.envoy_api import CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE, Listener
from controlplane.health import DEFAULT_POLICY
from controlplane.nodes import (
    NodeRecord,
    NodeRegistry,
    NodeView,
    listener_with_address,
    node_state,
    requested_listen,
)
from controlplane.snapshot import Snapshot, build_snapshot
from controlplane.store import SnapshotStore
from controlplane.telemetry.attempt_log import AttemptLogService
from controlplane.telemetry.metrics import StatusCollector
from controlplane.telemetry.status import build_status
from controlplane.telemetry.target_stats import TargetStatsRecorder
from switchyard.addresses import AddressError, TcpAddress
from switchyard.cli.main import build_parser, main
from switchyard.cli.status_view import render_status
from switchyard.config import load_config_text
from switchyard.contract import TARGET_KEY_TAG
from switchyard.supervisor.bootstrap import (
    INSTANCE_METADATA_KEY,
    LISTEN_METADATA_KEY,
    BootstrapParams,
    render_bootstrap,
)
from switchyard.supervisor.gateway import Node, listener_address_of
from switchyard.supervisor.options import NodeOptions
from tests.unit.test_bootstrap import assert_envoy_accepts

CONFIG = """
listen: 127.0.0.1:18999
providers: {p: {kind: openai_compatible, base_url: 'http://127.0.0.1:9'}}
routes: [{model: m, targets: [{name: t, provider: p, model: MODEL}]}]  # named: a reload changes clusters only
"""


def _snapshot(version: str = "1", model: str = "m1") -> Snapshot:
    return build_snapshot(load_config_text(CONFIG.replace("MODEL", model)), version)


def _listener(snapshot: Snapshot) -> Any:
    (listener,) = snapshot.resources[LISTENER_TYPE]
    return listener


# --- the listener address rewrite (pure) ---


def test_the_listener_rewrite_changes_only_the_address_and_leaves_the_snapshot_alone() -> None:
    original = _listener(_snapshot())
    before = original.SerializeToString(deterministic=True)

    rewritten = listener_with_address(original, TcpAddress("127.0.0.2", 9001))

    assert rewritten.address.socket_address.address == "127.0.0.2"
    assert rewritten.address.socket_address.port_value == 9001
    assert original.SerializeToString(deterministic=True) == before, "the snapshot's listener is not touched"
    same_otherwise = Listener()
    same_otherwise.CopyFrom(rewritten)
    same_otherwise.address.CopyFrom(original.address)
    assert same_otherwise == original


def test_a_snapshot_gives_each_node_its_own_listener_and_everyone_the_same_clusters_and_routes() -> None:
    snapshot = _snapshot()
    view = NodeView(listen=TcpAddress("127.0.0.2", 9001))

    resources = snapshot.resources_for(view)

    (listener,) = resources[LISTENER_TYPE]
    assert (listener.address.socket_address.address, listener.address.socket_address.port_value) == ("127.0.0.2", 9001)
    assert _listener(snapshot).address.socket_address.port_value == 18999, "the snapshot's own listener is kept"
    for type_url in (CLUSTER_TYPE, ROUTE_TYPE):
        assert resources[type_url] == snapshot.resources[type_url]
    assert snapshot.resources_for(NodeView()) == snapshot.resources
    assert snapshot.resources_for(NodeView(listen=TcpAddress("127.0.0.2", 9001))) is resources, "built once per view"


def _node(listen: str | None, node_id: str = "n1") -> base_pb2.Node:
    node = base_pb2.Node(id=node_id)
    if listen is not None:
        node.metadata.fields[LISTEN_METADATA_KEY].string_value = listen
    return node


def test_a_node_asks_for_its_listener_address_in_its_metadata() -> None:
    assert requested_listen(_node(None)) is None
    assert requested_listen(_node("127.0.0.1:9001")) == TcpAddress("127.0.0.1", 9001)
    assert requested_listen(_node("[::1]:9001")) == TcpAddress("::1", 9001)
    for bad in ("unix:/tmp/l.sock", "nope", "127.0.0.1:0"):
        with pytest.raises(AddressError):
            requested_listen(_node(bad))


def test_the_bootstrap_carries_the_nodes_listener_address_in_its_metadata() -> None:
    def render(listen: str | None) -> dict[str, Any]:
        params = BootstrapParams(
            "n1", "unix:/w/a.sock", "unix:/w/x.sock", ("unix:/w/e.sock",), listen=listen, instance="i1"
        )
        document: dict[str, Any] = yaml.safe_load(render_bootstrap(params))
        return document

    assert render(None)["node"] == {"id": "n1", "cluster": "switchyard", "metadata": {INSTANCE_METADATA_KEY: "i1"}}
    assert render("127.0.0.1:9001")["node"]["metadata"] == {
        INSTANCE_METADATA_KEY: "i1",
        LISTEN_METADATA_KEY: "127.0.0.1:9001",
    }
    with pytest.raises(ValueError, match="HOST:PORT"):
        render("unix:/w/l.sock")


# --- the registry ---


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_registry_follows_a_node_from_connect_to_gone_and_then_forgets_it() -> None:
    clock = Clock()
    registry = NodeRegistry(clock, keep_gone_s=60)
    registry.connected(1, "n1", "127.0.0.1:9001")
    (record,) = registry.records()
    assert (record.name, record.listen, record.connected_at, record.applied_version) == (
        "n1",
        "127.0.0.1:9001",
        1000.0,
        None,
    )
    assert node_state(record, "1") == "behind", "connected, nothing applied yet"

    clock.now = 1001
    registry.applied(1, "1")
    assert node_state(record, "1") == "current"
    assert node_state(record, "2") == "behind", "a newer snapshot is in force"

    registry.rejected(1, "Listener version 2: cannot bind")
    assert record.rejected == "Listener version 2: cannot bind"
    registry.applied(1, "2")
    assert record.rejected == "" and node_state(record, "2") == "current"

    clock.now = 1010
    registry.disconnected(1)
    assert node_state(record, "2") == "gone" and record.gone_at == 1010
    clock.now = 1070
    assert registry.records() == [record], "kept for a while"
    clock.now = 1071
    assert registry.records() == []


def test_a_node_that_reconnects_is_not_marked_gone_by_its_old_stream() -> None:
    clock = Clock()
    registry = NodeRegistry(clock)
    registry.connected(1, "n1", None)
    registry.disconnected(1)
    clock.now = 1005
    registry.connected(2, "n1", None)
    registry.connected(3, "n2", None)
    registry.disconnected(1)  # late news from the old stream
    n1, n2 = registry.records()
    assert (n1.name, n1.stream, n1.gone_at, n1.connected_at) == ("n1", 2, None, 1005)
    assert n2.name == "n2"


# --- the ADS stream feeds the registry and sends each node its own listener ---


class FakeEnvoy:
    """One ADS stream driven like Envoy: requests in, responses out, in-process."""

    def __init__(self, ads: AdsService, node: base_pb2.Node) -> None:
        self._requests: asyncio.Queue[discovery_pb2.DiscoveryRequest | None] = asyncio.Queue()
        self._node: base_pb2.Node | None = node
        self._responses: asyncio.Queue[discovery_pb2.DiscoveryResponse] = asyncio.Queue()
        # gRPC keeps pulling the server's responses; so does this task, so requests are handled as they come.
        self._pump = asyncio.create_task(self._pull(ads.StreamAggregatedResources(self._iterate(), None)))

    async def _pull(self, responses: AsyncIterator[discovery_pb2.DiscoveryResponse]) -> None:
        async for response in responses:
            self._responses.put_nowait(response)

    async def _iterate(self) -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
        while (request := await self._requests.get()) is not None:
            yield request

    def send(self, type_url: str, response: discovery_pb2.DiscoveryResponse | None = None, error: str = "") -> None:
        request = discovery_pb2.DiscoveryRequest(type_url=type_url)
        if self._node is not None:  # set_node_on_first_message_only
            request.node.CopyFrom(self._node)
            self._node = None
        if response is not None:
            request.version_info = response.version_info
            request.response_nonce = response.nonce
        if error:
            request.error_detail.message = error
        self._requests.put_nowait(request)

    async def receive(self) -> discovery_pb2.DiscoveryResponse:
        return await asyncio.wait_for(self._responses.get(), 5)

    async def sync(self) -> dict[str, discovery_pb2.DiscoveryResponse]:
        """Subscribe like Envoy (CDS and LDS, then RDS once the listener came) and ACK everything."""
        self.send(CLUSTER_TYPE)
        self.send(LISTENER_TYPE)
        got: dict[str, discovery_pb2.DiscoveryResponse] = {}
        clusters = await self.receive()
        got[clusters.type_url] = clusters
        self.send(CLUSTER_TYPE, clusters)
        listener = await self.receive()
        got[listener.type_url] = listener
        self.send(LISTENER_TYPE, listener)
        self.send(ROUTE_TYPE)
        routes = await self.receive()
        got[routes.type_url] = routes
        self.send(ROUTE_TYPE, routes)
        return got

    async def close(self) -> None:
        self._requests.put_nowait(None)
        await asyncio.wait_for(self._pump, 5)


def _address_of(response: discovery_pb2.DiscoveryResponse) -> tuple[str, int]:
    (packed,) = response.resources
    listener = Listener()
    packed.Unpack(listener)
    return listener.address.socket_address.address, listener.address.socket_address.port_value


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_ads_sends_each_node_its_listener_and_records_what_it_applied() -> None:
    async def scenario() -> None:
        store = SnapshotStore()
        await store.set(_snapshot("1", "m1"))
        ads = AdsService(store)
        n1 = FakeEnvoy(ads, _node("127.0.0.1:9001", "n1"))
        n2 = FakeEnvoy(ads, _node(None, "n2"))

        first = await n1.sync()
        assert _address_of(first[LISTENER_TYPE]) == ("127.0.0.1", 9001)
        assert _address_of((await n2.sync())[LISTENER_TYPE]) == ("127.0.0.1", 18999), "the YAML's"
        await _settle()
        records = {r.name: r for r in ads.nodes.records()}
        assert {name: (r.listen, r.applied_version) for name, r in records.items()} == {
            "n1": ("127.0.0.1:9001", "1"),
            "n2": (None, "1"),
        }

        await store.set(_snapshot("2", "m2"))  # a reload: the clusters change
        clusters = await n1.receive()
        assert clusters.type_url == CLUSTER_TYPE and clusters.version_info == "2"
        assert node_state(records["n1"], "2") == "behind", "not acknowledged yet"
        n1.send(CLUSTER_TYPE, clusters, error="bad cluster")
        await _settle()
        assert records["n1"].rejected == "Cluster version 2: bad cluster"
        assert node_state(records["n1"], "2") == "behind"

        for_n2 = await n2.receive()
        n2.send(CLUSTER_TYPE, for_n2)
        await _settle()
        assert records["n2"].applied_version == "2" and node_state(records["n2"], "2") == "current"

        await n1.close()
        await _settle()
        assert node_state(records["n1"], "2") == "gone"
        assert node_state(records["n2"], "2") == "current"
        await n2.close()

    asyncio.run(scenario())


def test_the_attempt_log_counts_attempts_per_node() -> None:
    async def scenario() -> dict[str, int]:
        service = AttemptLogService(TargetStatsRecorder(lambda _: DEFAULT_POLICY))

        async def messages(node: str, count: int) -> AsyncIterator[als_pb2.StreamAccessLogsMessage]:
            for i in range(count):
                message = als_pb2.StreamAccessLogsMessage()
                if i == 0:
                    message.identifier.node.id = node
                    message.identifier.log_name = "switchyard_attempts"
                entry = message.http_logs.log_entry.add()
                entry.request.request_id = f"{node}-{i}"
                entry.common_properties.custom_tags[TARGET_KEY_TAG] = "m/t"
                entry.response.response_code.value = 200
                yield message

        await service.StreamAccessLogs(messages("n1", 3), None)
        await service.StreamAccessLogs(messages("n2", 1), None)
        return dict(service.attempts_by_node)

    assert asyncio.run(scenario()) == {"n1": 3, "n2": 1}


# --- /status, /metrics, `switchyard status` ---


def _status_with_nodes() -> dict[str, Any]:
    snapshot = _snapshot("3.1")
    nodes = [
        NodeRecord("n1", "127.0.0.1:9001", connected_at=900.0, stream=1, applied_version="3.1"),
        NodeRecord("n2", None, connected_at=950.0, stream=2, applied_version="2"),
        NodeRecord("n3", None, connected_at=800.0, stream=3, applied_version="3.1", gone_at=990.0),
    ]
    recorder = TargetStatsRecorder(lambda _: DEFAULT_POLICY)
    return build_status(snapshot, recorder, None, now=1000.0, nodes=nodes, attempts_by_node={"n1": 7})


def test_status_lists_each_node_with_its_address_version_and_state() -> None:
    n1, n2, n3 = _status_with_nodes()["nodes"]
    assert n1 == {
        "name": "n1",
        "listen": "127.0.0.1:9001",
        "listen_from": "node",
        "state": "current",
        "version": "3.1",
        "config_version": "3",
        "current_version": "3.1",
        "connected_since": 900.0,
        "connected_for_s": 100.0,
        "gone_since": None,
        "gone_for_s": None,
        "rejected": "",
        "attempts": 7,
        "peer": "",
        "conflict": "",
        "attempt_log": None,
    }
    assert (n2["listen"], n2["listen_from"], n2["state"], n2["attempts"]) == ("127.0.0.1:18999", "config", "behind", 0)
    assert (n3["state"], n3["gone_for_s"]) == ("gone", 10.0)


def test_metrics_give_each_nodes_config_version_and_whether_it_is_connected() -> None:
    registry = CollectorRegistry()
    registry.register(StatusCollector(_status_with_nodes))
    text = generate_latest(registry).decode()
    assert 'switchyard_node_config_version_info{node="n1",version="3"} 1.0' in text
    assert 'switchyard_node_config_version_info{node="n2",version="2"} 1.0' in text
    assert 'node="n3"' not in text.split("switchyard_node_config_version_info")[-1].split("# HELP")[0], "gone"
    assert 'switchyard_node_connected{node="n1"} 1.0' in text
    assert 'switchyard_node_connected{node="n3"} 0.0' in text
    assert 'switchyard_node_current{node="n1"} 1.0' in text
    assert 'switchyard_node_current{node="n2"} 0.0' in text


def test_switchyard_status_prints_a_nodes_table() -> None:
    lines = render_status(_status_with_nodes()).splitlines()
    start = lines.index("nodes: 3")
    header, n1, n2, n3 = lines[start + 1 : start + 5]
    assert header.split() == ["node", "listen", "version", "attempts", "connected", "since", "state"]
    assert n1.split()[:4] == ["n1", "127.0.0.1:9001", "3.1", "7"] and n1.endswith("(100s ago)  current")
    assert n2.endswith("behind (current: 3.1)")
    assert n3.endswith("gone 10s ago")
    assert "nodes" not in render_status({**_status_with_nodes(), "nodes": []})


# --- `switchyard node` ---


def test_node_options_and_help() -> None:
    parser = build_parser()
    args = parser.parse_args(["node", "--controlplane", "unix:/w/xds.sock", "--listen", "127.0.0.1:9001"])
    assert (args.controlplane, args.listen, args.drain_timeout, args.drain_notice) == (
        "unix:/w/xds.sock",
        "127.0.0.1:9001",
        60.0,
        5.0,
    )
    assert args.name, "defaults to the host name"
    for bad in (["node"], ["node", "--controlplane", "x", "--listen", "unix:/w/l.sock"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
    for up_only in ("--xds", "--api", "--tls-ca-file"):
        with pytest.raises(SystemExit):
            parser.parse_args(["node", "--controlplane", "127.0.0.1:18000", up_only, "x"])


def test_a_node_runs_the_ext_procs_and_envoy_with_its_name_and_listener_in_the_bootstrap(tmp_path: Path) -> None:
    options = NodeOptions(xds="unix:/cp/xds.sock", name="n1", listen="127.0.0.1:9001", work_dir=tmp_path / "w")
    node = Node(options)
    assert [c.name for c in node.children] == ["extproc-1", "extproc-2", "envoy"]
    bootstrap = yaml.safe_load((tmp_path / "w" / "envoy-bootstrap.yaml").read_text())
    assert len(bootstrap["node"]["metadata"].pop(INSTANCE_METADATA_KEY)) == 16
    assert bootstrap["node"] == {
        "id": "n1",
        "cluster": "switchyard",
        "metadata": {LISTEN_METADATA_KEY: "127.0.0.1:9001"},
    }
    xds = next(c for c in bootstrap["static_resources"]["clusters"] if c["name"] == "switchyard_xds")
    assert xds["load_assignment"]["endpoints"][0]["lb_endpoints"] == [
        {"endpoint": {"address": {"pipe": {"path": "/cp/xds.sock"}}}}
    ]
    assert node.base_url == "http://127.0.0.1:9001"


def test_a_node_without_listen_finds_its_listener_in_envoys_admin() -> None:
    listeners = (
        '{"listener_statuses": [{"name": "switchyard_http", "local_address": '
        '{"socket_address": {"address": "0.0.0.0", "port_value": 8080}}}]}'
    )
    assert listener_address_of(listeners) == "0.0.0.0:8080"
    assert listener_address_of('{"listener_statuses": []}') is None
    assert listener_address_of("{}") is None
    assert listener_address_of("not json") is None


def test_envoy_accepts_a_bootstrap_with_the_listen_metadata(tmp_path: Path) -> None:
    params = BootstrapParams(
        "n1", f"unix:{tmp_path}/a.sock", f"unix:{tmp_path}/x.sock", (f"unix:{tmp_path}/e.sock",), "127.0.0.1:9001"
    )
    assert_envoy_accepts(params, tmp_path)


def test_envoy_bootstrap_command_takes_the_nodes_listener(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["envoy-bootstrap", "--admin", "unix:/w/a.sock", "--xds", "cp:18000", "--extproc", "e:18001", "--insecure"]
    assert main([*argv, "--node-id", "n7", "--listen", "0.0.0.0:9007"]) == 0
    node = yaml.safe_load(capsys.readouterr().out)["node"]
    assert len(node["metadata"].pop(INSTANCE_METADATA_KEY)) == 16, "a random instance id per rendering"
    assert node == {"id": "n7", "cluster": "switchyard", "metadata": {LISTEN_METADATA_KEY: "0.0.0.0:9007"}}
