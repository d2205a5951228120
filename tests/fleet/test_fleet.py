"""A fleet on loopback, as real processes: two control-plane replicas on one YAML (A, then the standby B) and
two gateway nodes (`switchyard node --controlplane A,B --listen ...` on ports of their own).

One story, in order, each step a test on the same fleet:
1. both nodes take their config from A, with the same version, which B (same YAML) serves as well; B hears
   both nodes' attempts;
1b. a third node started under a name already taken is listed next to it as a conflict, not merged;
2. a 429 with Retry-After seen through node 1 parks the target on node 2 within about a second, and both
   replicas agree on every target's counts and health;
3. A is SIGKILLed under load: the nodes move to B without a failed request, B lists them, and an edit of
   the YAML reaches them through B;
4. B is SIGKILLed too: with no control plane at all the nodes serve on (0 failed requests); A comes back on
   its address and both nodes resync to its version, which is the version B had (versions converge).
Every wait polls with a deadline; the measured times are printed (`pytest -s`).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchyard.supervisor.processes import free_port
from tests.support.harness import (
    MockProvider,
    RequestLoop,
    SwitchyardProcess,
    controlplane_process,
    node_process,
    wait_for,
)

pytestmark = pytest.mark.e2e

NODES = ("n1", "n2")


def _config(mock: MockProvider, plain_model: str = "plain-v1") -> str:
    # The YAML's own listen is taken by neither node: each names its own with --listen.
    return f"""
listen: 127.0.0.1:{free_port()}
providers:
  p: {{kind: openai, base_url: "{mock.url}", api_key: sk-fleet}}
routes:
  - model: live
    targets: [{{name: only, provider: p, model: {plain_model}}}]
  - model: parked
    health: {{consecutive_failures: 0}}
    targets:
      - {{name: primary, provider: p, model: parked-primary}}
      - {{name: backup, provider: p, model: parked-backup}}
"""


@dataclass
class Replica:
    name: str
    grpc: str
    api: str
    process: SwitchyardProcess

    def status(self) -> dict[str, Any]:
        document: dict[str, Any] = httpx.get(f"http://{self.api}/status", timeout=5).json()
        return document

    def nodes(self) -> dict[str, dict[str, Any]]:
        return {node["name"]: node for node in self.status()["nodes"]}

    def version(self) -> str:
        """The version nodes get: the config's, with the live state's when health changed the resources."""
        return str(self.status()["config"]["served_version"])

    def serves_both_nodes(self) -> bool:
        """Both nodes configured here (ADS), each at the version in force."""
        document = self.status()
        states = {node["name"]: node for node in document["nodes"] if node["state"] != "gone"}
        return set(states) == set(NODES) and all(
            node["state"] == "current" and node["version"] == node["current_version"] for node in states.values()
        )

    def targets(self) -> dict[tuple[str, str], tuple[str, int, int]]:
        """(route, target) → (state, requests, failures): what this replica decided from the attempts."""
        return {
            (route["model"], target["name"]): (target["state"], target["requests"], target["failures"])
            for route in self.status()["routes"]
            for target in route["targets"]
        }


@dataclass
class Fleet:
    tmp_path: Path
    config: Path
    mock: MockProvider
    replicas: dict[str, Replica]
    ports: dict[str, int]
    nodes: dict[str, SwitchyardProcess]

    def url(self, node: str) -> str:
        return f"http://127.0.0.1:{self.ports[node]}"

    def chat(self, node: str, model: str) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": "hello"}]}
        return httpx.post(f"{self.url(node)}/v1/chat/completions", json=body, timeout=10)

    def admin_get(self, node: str, path: str) -> str:
        transport = httpx.HTTPTransport(uds=str(self.tmp_path / node / "envoy-admin.sock"))
        with httpx.Client(transport=transport, base_url="http://envoy", timeout=5) as admin:
            return admin.get(path).text

    def parked_in_envoy(self, node: str) -> bool:
        clusters = self.admin_get(node, "/clusters").splitlines()
        return any(line.startswith("route/parked::") and "failed_eds_health" in line for line in clusters)

    def start_replica(self, name: str, grpc: str, api: str) -> Replica:
        process = controlplane_process(f"controlplane-{name}", self.config, grpc, api, self.tmp_path)
        replica = Replica(name, grpc, api, process)
        self.replicas[name] = replica
        return replica

    def write_config(self, text: str) -> None:
        """The way editors save: write elsewhere, rename over the file (both replicas watch it)."""
        temporary = self.config.with_suffix(".tmp")
        temporary.write_text(text)
        temporary.replace(self.config)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp_path = tmp_path_factory.mktemp("fleet")
    mock = MockProvider("fleet", tmp_path)
    config = tmp_path / "switchyard.yaml"
    config.write_text(_config(mock))
    fleet = Fleet(tmp_path, config, mock, {}, {name: free_port() for name in NODES}, {})
    try:
        fleet.start_replica("a", f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}")
        fleet.start_replica("b", f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}")
        replicas = ",".join(replica.grpc for replica in fleet.replicas.values())
        for name in NODES:
            fleet.nodes[name] = node_process(name, replicas, fleet.ports[name], tmp_path)
        for name, node in fleet.nodes.items():
            node.wait_for_log(f"Switchyard node {name} is up", 40)
        yield fleet
    finally:
        for node in fleet.nodes.values():
            node.stop()
        for replica in fleet.replicas.values():
            replica.process.stop()
        mock.stop()


def test_both_nodes_get_the_same_version_from_the_first_replica_and_the_standby_hears_them(fleet: Fleet) -> None:
    a, b = fleet.replicas["a"], fleet.replicas["b"]
    for name in NODES:
        response = fleet.chat(name, "live")
        assert response.status_code == 200, response.text
        assert response.headers["x-switchyard-target"] == "only"
    assert len(fleet.mock.requests("plain-v1")) == 2

    wait_for(a.serves_both_nodes, 15, "both nodes to be current on replica A")
    assert a.version() == b.version(), "two replicas on one YAML serve one version"
    assert {node["version"] for node in a.nodes().values()} == {a.version()}
    # B configures nobody but hears every node's attempts: it lists them as configured elsewhere.
    wait_for(
        lambda: {name: node["state"] for name, node in b.nodes().items()} == {"n1": "elsewhere", "n2": "elsewhere"},
        10,
        "replica B to list both nodes from their attempt logs",
    )
    wait_for(lambda: a.targets() == b.targets(), 10, "both replicas to count the same attempts")


def test_a_second_node_under_a_taken_name_shows_as_a_conflict(fleet: Fleet) -> None:
    a = fleet.replicas["a"]
    (fleet.tmp_path / "dup").mkdir()
    impostor = node_process(
        "n1", ",".join(r.grpc for r in fleet.replicas.values()), free_port(), fleet.tmp_path / "dup"
    )
    try:

        def n1_states() -> list[str]:
            return sorted(node["state"] for node in a.status()["nodes"] if node["name"] == "n1")

        wait_for(lambda: n1_states() == ["conflict", "conflict"], 40, "replica A to list both n1 as a conflict")
        conflicts = [node for node in a.status()["nodes"] if node["name"] == "n1"]
        assert len({node["listen"] for node in conflicts}) == 2 and all(node["conflict"] for node in conflicts)
        assert 'switchyard_node_connected{node="n1"} 2.0' in httpx.get(f"http://{a.api}/metrics", timeout=5).text
    finally:
        impostor.stop()
    wait_for(lambda: n1_states() == ["current", "gone"], 15, "the conflict to end with the second n1 gone")


def test_a_429_through_node_1_parks_the_target_on_node_2_and_both_replicas_agree(fleet: Fleet) -> None:
    a, b = fleet.replicas["a"], fleet.replicas["b"]
    fleet.mock.set_rules([{"match": {"model": "parked-primary"}, "status": 429, "retry_after": "60", "times": 1}])

    first = fleet.chat("n1", "parked")
    seen = time.monotonic()
    assert first.status_code == 200
    assert (first.headers["x-switchyard-target"], first.headers["x-switchyard-attempts"]) == ("backup", "2")

    wait_for(lambda: fleet.parked_in_envoy("n2"), 10, "node 2's Envoy to take the primary out")
    took = time.monotonic() - seen
    print(f"\n429 through n1 → primary parked on n2 after {took:.2f}s")
    assert took < 3.0, f"fleet-wide parking took {took:.2f}s (expected about a second)"

    second = fleet.chat("n2", "parked")
    assert (second.headers["x-switchyard-target"], second.headers["x-switchyard-attempts"]) == ("backup", "1")
    assert len(fleet.mock.requests("parked-primary")) == 1, "node 2 never asked the parked target"
    assert len(fleet.mock.requests("parked-backup")) == 2

    # Both replicas saw every attempt of both nodes and took the same decision.
    wait_for(lambda: a.targets() == b.targets(), 10, "both replicas to agree on every target")
    assert a.targets()[("parked", "primary")][0] == "rate_limited"
    wait_for(lambda: a.version() == b.version(), 5, "the same live state to give the same version on both")
    assert "." in a.version(), "the version names the live state"


def test_the_standby_takes_over_when_the_first_replica_is_killed(fleet: Fleet) -> None:
    a, b = fleet.replicas["a"], fleet.replicas["b"]
    load = RequestLoop([fleet.url(name) for name in NODES], model="live", max_seconds=45)
    try:
        wait_for(lambda: len(load.results) >= 20, 15, "traffic through both nodes")
        a.process.stop(signal.SIGKILL)
        killed = time.monotonic()
        wait_for(b.serves_both_nodes, 15, "both nodes to move to replica B")
        print(f"\nreplica A SIGKILLed → both nodes current on B after {time.monotonic() - killed:.2f}s")
        assert b.targets()[("parked", "primary")][0] == "rate_limited", "B kept the health it had heard"
        assert fleet.parked_in_envoy("n1") and fleet.parked_in_envoy("n2")

        # A reload on B reaches both nodes.
        before = b.version()
        fleet.mock.clear()
        fleet.write_config(_config(fleet.mock, plain_model="plain-v2"))
        wait_for(lambda: b.version() != before and b.serves_both_nodes(), 15, "the edit to reach both nodes via B")
        served = len(load.results)
        wait_for(lambda: len(load.results) >= served + 10, 15, "more requests after the reload")
    finally:
        results = load.stop()
    failures = [result for result in results if result[0] != 200]
    assert failures == [], f"{len(failures)} of {len(results)} requests failed: {failures[:5]}"
    recent = {request["body"]["model"] for request in fleet.mock.requests()[-10:]}
    assert recent == {"plain-v2"}, "the edit is in force on both nodes"


def test_with_no_control_plane_the_nodes_serve_on_and_resync_when_one_returns(fleet: Fleet) -> None:
    b = fleet.replicas["b"]
    version_b = b.version()
    load = RequestLoop([fleet.url(name) for name in NODES], model="live", max_seconds=45)
    try:
        wait_for(lambda: len(load.results) >= 10, 15, "traffic through both nodes")
        b.process.stop(signal.SIGKILL)  # A is gone already: no control plane at all
        served = len(load.results)
        wait_for(lambda: len(load.results) >= served + 40, 20, "requests with no control plane")

        # A returns on its address, on the YAML as B last had it: the nodes come back to it, at its version.
        old = fleet.replicas["a"]
        a = fleet.start_replica("a-again", old.grpc, old.api)
        returned = time.monotonic()
        wait_for(a.serves_both_nodes, 20, "both nodes to resync with the returning replica A")
        print(f"\nreplica A back → both nodes current on it after {time.monotonic() - returned:.2f}s")
        # The config version is the YAML's content, so the returning replica agrees with the one that died;
        # its health starts empty, so the live part may differ (the park it never saw).
        assert a.status()["config"]["version"] == version_b.partition(".")[0]
        assert {node["version"] for node in a.nodes().values()} == {a.version()}
    finally:
        results = load.stop()
    failures = [result for result in results if result[0] != 200]
    assert failures == [], f"{len(failures)} of {len(results)} requests failed: {failures[:5]}"
    assert {target for _, target in results} == {"only"}
