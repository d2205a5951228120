"""Several control-plane replicas: the bootstrap that lists them (ADS to the first that answers, the attempt
log to each), the listener each node gets (one attempt logger per replica), versions derived from content (so
replicas agree), and how the ops view shows duplicate node names and nodes configured by another replica."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from envoy.config.core.v3 import base_pb2
from envoy.extensions.access_loggers.grpc.v3 import als_pb2 as grpc_access_log_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from prometheus_client import CollectorRegistry, generate_latest

from controlplane.envoy_api import LISTENER_TYPE, HttpConnectionManager
from controlplane.health import DEFAULT_POLICY
from controlplane.live_state import LiveState
from controlplane.nodes import LoggingNode, NodeRegistry, NodeView, listener_for_node, node_view
from controlplane.snapshot import snapshot_of
from controlplane.target_keys import target_key
from controlplane.telemetry.metrics import StatusCollector
from controlplane.telemetry.status import build_status
from controlplane.telemetry.target_stats import TargetStatsRecorder
from switchyard.addresses import AddressError, TcpAddress, parse_address_list
from switchyard.cli.main import main
from switchyard.cli.status_view import render_status
from switchyard.config import load_config_text
from switchyard.supervisor.bootstrap import (
    CONTROLPLANE_CLUSTER,
    INSTANCE_METADATA_KEY,
    LISTEN_METADATA_KEY,
    LOG_CLUSTERS_METADATA_KEY,
    BootstrapParams,
    render_bootstrap,
)
from tests.unit.test_bootstrap import assert_envoy_accepts

CONFIG = """
listen: 127.0.0.1:18999
providers: {p: {kind: openai_compatible, base_url: 'http://127.0.0.1:9'}}
routes: [{model: m, targets: [{name: a, provider: p, model: MODEL}, {name: b, provider: p, model: other}]}]
"""


def _render(xds: str) -> dict[str, Any]:
    params = BootstrapParams("n1", "unix:/w/a.sock", xds, ("unix:/w/e.sock",), instance="i1")
    document: dict[str, Any] = yaml.safe_load(render_bootstrap(params))
    return document


def _clusters(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {cluster["name"]: cluster for cluster in document["static_resources"]["clusters"]}


# --- the bootstrap ---


def test_several_control_planes_are_one_priority_each_and_each_has_a_log_cluster() -> None:
    document = _render("cp1:18000,cp2:18000,10.0.0.3:18000")
    clusters = _clusters(document)
    ads = clusters[CONTROLPLANE_CLUSTER]
    assert [(locality["priority"], locality["lb_endpoints"]) for locality in ads["load_assignment"]["endpoints"]] == [
        (i, [{"endpoint": {"address": {"socket_address": {"address": host, "port_value": 18000}}}}])
        for i, host in enumerate(("cp1", "cp2", "10.0.0.3"))
    ]
    # A replica that fails is ejected at once, so the stream's retry goes to the next priority.
    assert ads["outlier_detection"]["consecutive_local_origin_failure"] == 1
    grpc = document["dynamic_resources"]["ads_config"]["grpc_services"][0]["envoy_grpc"]
    assert grpc["cluster_name"] == CONTROLPLANE_CLUSTER and grpc["retry_policy"]["retry_back_off"]
    names = [f"{CONTROLPLANE_CLUSTER}_{i}" for i in (1, 2, 3)]
    assert document["node"]["metadata"] == {INSTANCE_METADATA_KEY: "i1", LOG_CLUSTERS_METADATA_KEY: names}
    for name, host in zip(names, ("cp1", "cp2", "10.0.0.3"), strict=True):
        log_cluster = clusters[name]
        (locality,) = log_cluster["load_assignment"]["endpoints"]
        assert locality["lb_endpoints"] == [
            {"endpoint": {"address": {"socket_address": {"address": host, "port_value": 18000}}}}
        ]
        # a copy of the shared cluster otherwise (timeouts, HTTP/2 keepalive; a transport socket, when set)
        assert log_cluster["typed_extension_protocol_options"] == ads["typed_extension_protocol_options"]
        assert log_cluster["connect_timeout"] == ads["connect_timeout"]


def test_one_control_plane_needs_no_log_clusters() -> None:
    document = _render("unix:/w/xds.sock")
    assert set(_clusters(document)) == {CONTROLPLANE_CLUSTER, "switchyard_extproc"}
    assert LOG_CLUSTERS_METADATA_KEY not in document["node"]["metadata"]


def test_envoy_accepts_a_bootstrap_with_two_control_planes(tmp_path: Path) -> None:
    params = BootstrapParams(
        "n1", f"unix:{tmp_path}/a.sock", "127.0.0.1:18000,127.0.0.1:18100", (f"unix:{tmp_path}/e.sock",)
    )
    assert_envoy_accepts(params, tmp_path)


def test_control_plane_lists_are_checked() -> None:
    assert parse_address_list("a:1, b:2") == (TcpAddress("a", 1), TcpAddress("b", 2))
    for bad in ("", "a:1,", "a:1,a:1", "a:1,nope"):
        with pytest.raises(AddressError):
            parse_address_list(bad)


def test_envoy_bootstrap_and_node_take_several_control_planes(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["envoy-bootstrap", "--admin", "unix:/w/a.sock", "--extproc", "e:18001"]
    assert main([*argv, "--xds", "cp1:18000,cp2:18000", "--insecure"]) == 0
    document = yaml.safe_load(capsys.readouterr().out)
    assert {f"{CONTROLPLANE_CLUSTER}_1", f"{CONTROLPLANE_CLUSTER}_2"} <= set(_clusters(document))
    with pytest.raises(SystemExit):
        main([*argv, "--xds", "cp1:18000,cp1:18000"])
    assert "listed twice" in capsys.readouterr().err


# --- what a node asks for, and the listener it gets ---


def _node(**metadata: Any) -> base_pb2.Node:
    node = base_pb2.Node(id="n1")
    for key, value in metadata.items():
        if isinstance(value, list):
            node.metadata.fields[key].list_value.values.add().string_value = value[0]
            for item in value[1:]:
                node.metadata.fields[key].list_value.values.add().string_value = item
        else:
            node.metadata.fields[key].string_value = value
    return node


def test_node_view_reads_the_metadata_the_bootstrap_sets() -> None:
    assert node_view(base_pb2.Node(id="n1")) == NodeView()
    view = node_view(
        _node(
            **{
                LISTEN_METADATA_KEY: "127.0.0.1:9001",
                LOG_CLUSTERS_METADATA_KEY: ["x_1", "x_2"],
                INSTANCE_METADATA_KEY: "i",
            }
        )
    )
    assert view == NodeView(TcpAddress("127.0.0.1", 9001), ("x_1", "x_2"), "i")
    assert node_view(_node(**{LISTEN_METADATA_KEY: "unix:/l.sock"})).listen is None, "invalid: the YAML's"


def _loggers(listener: Any) -> tuple[list[str], list[str]]:
    """(clusters of the answer log, clusters of the attempt log) of a listener."""
    hcm = HttpConnectionManager()
    listener.filter_chains[0].filters[0].typed_config.Unpack(hcm)

    def clusters(loggers: Any) -> list[str]:
        found = []
        for logger in loggers:
            config = grpc_access_log_pb2.HttpGrpcAccessLogConfig()
            if logger.typed_config.Unpack(config):
                found.append(config.common_config.grpc_service.envoy_grpc.cluster_name)
        return found

    router = router_pb2.Router()
    assert any(f.typed_config.Unpack(router) for f in hcm.http_filters)
    return clusters(hcm.access_log), clusters(router.upstream_log)


def test_a_node_with_several_control_planes_logs_its_attempts_to_each() -> None:
    snapshot = snapshot_of(load_config_text(CONFIG.replace("MODEL", "m1")))
    (listener,) = snapshot.resources[LISTENER_TYPE]
    before = listener.SerializeToString(deterministic=True)
    assert _loggers(listener) == ([CONTROLPLANE_CLUSTER], [CONTROLPLANE_CLUSTER])

    view = NodeView(TcpAddress("127.0.0.1", 9001), ("switchyard_xds_1", "switchyard_xds_2"))
    rewritten = listener_for_node(listener, view)

    assert _loggers(rewritten) == (["switchyard_xds_1", "switchyard_xds_2"], ["switchyard_xds_1", "switchyard_xds_2"])
    assert rewritten.address.socket_address.port_value == 9001
    assert listener.SerializeToString(deterministic=True) == before, "the snapshot's listener is not touched"
    assert listener_for_node(listener, NodeView()) == listener


# --- versions from content ---


def test_versions_come_from_content_so_replicas_agree() -> None:
    config = load_config_text(CONFIG.replace("MODEL", "m1"))
    first, again = snapshot_of(config), snapshot_of(load_config_text(CONFIG.replace("MODEL", "m1")))
    assert first.version == again.version == first.config_version
    assert len(first.version) == 12 and "." not in first.version
    assert snapshot_of(load_config_text(CONFIG.replace("MODEL", "m2"))).version != first.version

    route = config.routes[0]
    parked = LiveState(out_of_service=frozenset({target_key(route, route.targets[0])}))
    live = snapshot_of(config, live=parked)
    assert live.config_version == first.config_version and live.version.startswith(f"{first.version}.")
    assert snapshot_of(config, live=parked, config_version=first.config_version).version == live.version
    # the same health again gives the same version; all healthy again gives the plain config version
    assert snapshot_of(config, live=LiveState(out_of_service=parked.out_of_service)).version == live.version
    assert snapshot_of(config, live=LiveState(), config_version=first.config_version).version == first.version


def test_another_process_computes_the_same_versions() -> None:
    """Two replicas are two processes (string hashing differs per process): same YAML, same health, same
    versions."""
    script = (
        "from controlplane.live_state import LiveState\n"
        "from controlplane.snapshot import snapshot_of\n"
        "from controlplane.target_keys import target_key\n"
        "from switchyard.config import load_config_text\n"
        "import sys\n"
        "config = load_config_text(sys.stdin.read())\n"
        "route = config.routes[0]\n"
        "keys = frozenset(target_key(route, t) for t in route.targets)\n"
        "print(snapshot_of(config).version, snapshot_of(config, live=LiveState(out_of_service=keys)).version)\n"
    )
    versions = set()
    for seed in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-c", script],
            input=CONFIG.replace("MODEL", "m1"),
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
        )
        versions.add(result.stdout.strip())
    assert len(versions) == 1, versions


# --- the ops view: duplicate names, nodes configured by another replica ---


def _status(registry: NodeRegistry, logging: dict[str, LoggingNode] | None = None) -> dict[str, Any]:
    snapshot = snapshot_of(load_config_text(CONFIG.replace("MODEL", "m1")))
    for record in registry.records():
        if record.live:
            registry.applied(record.stream, snapshot.version)
    recorder = TargetStatsRecorder(lambda _: DEFAULT_POLICY)
    return build_status(
        snapshot, recorder, None, now=2000.0, nodes=registry.records(), attempts_by_node={}, logging_nodes=logging
    )


def test_two_live_nodes_with_one_name_are_both_listed_as_a_conflict() -> None:
    registry = NodeRegistry(lambda: 1000.0)
    registry.connected(1, "n1", "127.0.0.1:9001", instance="run-a", peer="ipv4:127.0.0.1:5001")
    registry.connected(2, "n1", "127.0.0.1:9002", instance="run-b", peer="ipv4:127.0.0.1:5002")
    registry.connected(3, "n2", None, instance="run-c")
    document = _status(registry)
    first, second, other = document["nodes"]
    assert (first["state"], second["state"], other["state"]) == ("conflict", "conflict", "current")
    assert {first["listen"], second["listen"]} == {"127.0.0.1:9001", "127.0.0.1:9002"}
    assert "2 live nodes are named 'n1'" in first["conflict"]
    assert first["peer"] == "ipv4:127.0.0.1:5001"

    registry_text = CollectorRegistry()
    registry_text.register(StatusCollector(lambda: document))
    metrics = generate_latest(registry_text).decode()
    assert 'switchyard_node_connected{node="n1"} 2.0' in metrics
    assert 'switchyard_node_current{node="n1"} 0.0' in metrics
    table = render_status(document)
    assert table.count("CONFLICT: 2 live nodes are named 'n1'") == 2

    registry.disconnected(2)
    assert [node["state"] for node in _status(registry)["nodes"]] == ["current", "gone", "current"]


def test_the_same_node_reconnecting_replaces_its_record() -> None:
    registry = NodeRegistry(lambda: 1000.0)
    registry.connected(1, "n1", None, instance="run-a")
    registry.connected(2, "n1", None, instance="run-a")  # before its old stream was seen to end
    (record,) = registry.records()
    assert record.stream == 2
    registry.disconnected(1)  # late news from the old stream changes nothing
    assert registry.records()[0].live


def test_a_standby_lists_the_nodes_that_stream_their_attempts_to_it() -> None:
    registry = NodeRegistry(lambda: 1000.0)
    registry.connected(1, "n1", None, instance="run-a")
    logging = {
        "n1": LoggingNode("n1", None, since=990.0, streams=2),
        "n2": LoggingNode("n2", "127.0.0.1:9002", since=995.0, streams=1),
    }
    n1, n2 = _status(registry, logging)["nodes"]
    assert (n1["name"], n1["state"], n1["attempt_log"]) == ("n1", "current", True)
    assert (n2["name"], n2["state"], n2["attempt_log"], n2["listen"]) == ("n2", "elsewhere", True, "127.0.0.1:9002")
    assert n2["version"] is None and n2["connected_for_s"] == 1005.0
    assert "elsewhere: configured by another control plane" in render_status(_status(registry, logging))


def test_a_node_that_left_for_another_replica_is_listed_once() -> None:
    registry = NodeRegistry(lambda: 1000.0)
    registry.connected(1, "n1", None, instance="run-a")
    registry.disconnected(1)  # its ADS stream moved to another replica; its attempt log still comes here
    logging = {"n1": LoggingNode("n1", None, since=990.0, streams=2)}
    assert [node["state"] for node in _status(registry, logging)["nodes"]] == ["elsewhere"]
    # a second n1 that stopped, next to the live n1: the gone one stays listed
    registry.connected(2, "n1", None, instance="run-a")
    registry.connected(3, "n1", None, instance="run-b")
    registry.disconnected(3)
    assert [node["state"] for node in _status(registry, logging)["nodes"]] == ["current", "gone"]
