"""A client's request limit holds across a fleet (issue 14): two `switchyard node`s on one control plane admit
the configured 60 requests a minute between them, not 60 each.

Each node enforces its share (here 30 a minute: a token every 2 s, a burst of one), so a minute-long test is
not needed: the buckets are emptied first, then both nodes are hammered for a 20 s window. Each node then
admits one request per refill, about 10 in the window (9 to 11: the phase of its refill timer is unknown),
so the fleet admits about the 20 the limit allows, within ±10%. The rate itself, measured between each node's
first and last admitted request, is far more precise and must be within ±10% as well. When a node leaves,
the other one gets the whole rate: the control plane re-divides when the node count changes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from switchyard.supervisor.processes import free_port
from tests.support.harness import MockProvider, SwitchyardProcess, controlplane_process, node_process, wait_for

pytestmark = pytest.mark.e2e

NODES = ("n1", "n2")
KEY = "sk-metered-client-0123456789"
LIMIT_PER_MINUTE = 60
WINDOW_S = 20.0
PACE_S = 0.02  # each hammering thread's pause between requests: bounds CPU use, ±20 ms on an admission time


def _config(mock: MockProvider) -> str:
    return f"""
listen: 127.0.0.1:{free_port()}
providers:
  p: {{kind: openai, base_url: "{mock.url}", api_key: sk-fleet}}
routes:
  - model: live
    targets: [{{name: only, provider: p, model: plain-v1}}]
clients:
  metered: {{keys: ["{KEY}"], limits: {{requests_per_minute: {LIMIT_PER_MINUTE}}}}}
"""


@dataclass
class Fleet:
    tmp_path: Path
    ports: dict[str, int]
    nodes: dict[str, SwitchyardProcess] = field(default_factory=dict)

    def url(self, node: str) -> str:
        return f"http://127.0.0.1:{self.ports[node]}/v1/chat/completions"

    def fill_interval(self, node: str) -> str:
        """The refill interval of the client's bucket in this node's Envoy (its route config)."""
        transport = httpx.HTTPTransport(uds=str(self.tmp_path / node / "envoy-admin.sock"))
        with httpx.Client(transport=transport, base_url="http://envoy", timeout=5) as admin:
            dump = admin.get("/config_dump?resource=dynamic_route_configs").json()
        text = repr(dump)
        start = text.index("'fill_interval': '", text.index("'value': 'metered'")) + len("'fill_interval': '")
        return text[start : text.index("'", start)]


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp_path = tmp_path_factory.mktemp("limits")
    mock = MockProvider("limits", tmp_path)
    config = tmp_path / "switchyard.yaml"
    config.write_text(_config(mock))
    fleet = Fleet(tmp_path, {name: free_port() for name in NODES})
    grpc = f"127.0.0.1:{free_port()}"
    controlplane = controlplane_process("controlplane", config, grpc, f"127.0.0.1:{free_port()}", tmp_path)
    try:
        for name in NODES:
            fleet.nodes[name] = node_process(name, grpc, fleet.ports[name], tmp_path)
        for name, node in fleet.nodes.items():
            node.wait_for_log(f"Switchyard node {name} is up", 40)
        yield fleet
    finally:
        for node in fleet.nodes.values():
            node.stop()
        controlplane.stop()
        mock.stop()


def _post(client: httpx.Client, url: str) -> int:
    body = {"model": "live", "messages": [{"role": "user", "content": "hi"}]}
    return client.post(url, json=body, headers={"authorization": f"Bearer {KEY}"}).status_code


def _drain(fleet: Fleet, node: str) -> None:
    """Until the node refuses: its bucket is empty (bounded: a burst is one request)."""
    with httpx.Client(timeout=10) as client:
        wait_for(lambda: _post(client, fleet.url(node)) == 429, 10, f"{node} to refuse the client")


def _hammer(url: str, until: float, admitted: list[float], statuses: list[int]) -> None:
    with httpx.Client(timeout=10) as client:
        while time.monotonic() < until:
            status = _post(client, url)
            statuses.append(status)
            if status == 200:
                admitted.append(time.monotonic())
            time.sleep(PACE_S)


def test_60_requests_a_minute_hold_within_10_percent_through_two_nodes(fleet: Fleet) -> None:
    wait_for(
        lambda: all(fleet.fill_interval(name) == "2s" for name in NODES),
        20,
        "each node's share to be 30 a minute (a token every 2 s)",
    )
    for name in NODES:
        _drain(fleet, name)
    until = time.monotonic() + WINDOW_S
    admitted: dict[str, list[float]] = {name: [] for name in NODES}
    statuses: dict[str, list[int]] = {name: [] for name in NODES}
    threads = [
        threading.Thread(target=_hammer, args=(fleet.url(name), until, admitted[name], statuses[name]))
        for name in NODES
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WINDOW_S + 30)
    assert {s for name in NODES for s in statuses[name]} <= {200, 429}
    total = sum(len(times) for times in admitted.values())
    allowed = LIMIT_PER_MINUTE * WINDOW_S / 60
    rates = {name: (len(times) - 1) / (times[-1] - times[0]) * 60 for name, times in admitted.items()}
    print(f"\nadmitted {total} in {WINDOW_S:.0f}s (limit allows {allowed:.0f}); per-node rates a minute: {rates}")
    assert allowed * 0.9 <= total <= allowed * 1.1
    assert LIMIT_PER_MINUTE * 0.9 <= sum(rates.values()) <= LIMIT_PER_MINUTE * 1.1
    assert all(len(statuses[name]) > 5 * len(admitted[name]) for name in NODES), "the nodes were hammered"


def test_when_a_node_leaves_the_other_gets_the_whole_rate(fleet: Fleet) -> None:
    fleet.nodes["n2"].stop()
    left = time.monotonic()
    wait_for(lambda: fleet.fill_interval("n1") == "1s", 20, "n1 to get the whole rate (a token a second)")
    print(f"\nnode count change re-pushed after {time.monotonic() - left:.2f}s")
