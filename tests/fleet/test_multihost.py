"""A fleet across hosts: the control plane on one host, two gateway nodes on two others, a client and the
provider (a mock) on a fourth, each host a network namespace of its own (tests/fleet/netns.py), 10.213.0.x
addresses that exist only between them. ADS and the attempt log cross the test network over mTLS with
certificates from `switchyard certs`; the client gets its answers through both nodes; plain TCP between hosts
is refused unless --insecure. Skipped, with the reason, where namespaces cannot be made."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from switchyard.cli.certs import make_certs
from tests.fleet.netns import Host, NamespacesUnavailableError, namespace_hosts
from tests.support.harness import PYTHON, MockProvider, SwitchyardProcess, wait_for

pytestmark = pytest.mark.e2e

GRPC_PORT, API_PORT, GATEWAY_PORT, PROVIDER_PORT = 18000, 18002, 8080, 18081
ROLES = ("controlplane", "n1", "n2", "client")


@pytest.fixture
def hosts() -> Iterator[dict[str, Host]]:
    try:
        with namespace_hosts(*ROLES) as made:
            yield made
    except NamespacesUnavailableError as error:
        pytest.skip(f"no test hosts: {error}")


def _on(host: Host, code: str, *args: str, timeout: float = 60) -> Any:
    """Run Python `code` on `host` (it prints one JSON document) and return what it printed."""
    result = subprocess.run(
        [*host.exec_prefix, PYTHON, "-c", code, *args], capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


_CHAT = """
import json, sys, httpx
body = {"model": "shared", "messages": [{"role": "user", "content": "hello"}]}
answers = []
for url in sys.argv[1:]:
    r = httpx.post(url + "/v1/chat/completions", json=body, timeout=10)
    answers.append({"status": r.status_code, "target": r.headers.get("x-switchyard-target"),
                    "served_by": r.headers.get("x-mock-provider")})
print(json.dumps(answers))
"""

_STATUS = """
import json, sys, httpx
print(json.dumps(httpx.get(sys.argv[1] + "/status", timeout=5).json()))
"""

# Subscribes to ADS the way anyone on the network could: plain, TLS without a client certificate, and (the
# control that the probe works) with a certificate of the fleet. Prints what each got.
_ADS_PROBE = """
import json, sys, grpc
from pathlib import Path
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
target, certs = sys.argv[1], Path(sys.argv[2])
ca = (certs / "ca.crt").read_bytes()
channels = {
    "plain": lambda: grpc.insecure_channel(target),
    "tls without a client certificate": lambda: grpc.secure_channel(target, grpc.ssl_channel_credentials(ca)),
    "tls with the fleet's certificate": lambda: grpc.secure_channel(target, grpc.ssl_channel_credentials(
        ca, (certs / "n1.key").read_bytes(), (certs / "n1.crt").read_bytes())),
}
results = {}
for how, channel in channels.items():
    stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel())
    request = discovery_pb2.DiscoveryRequest(
        type_url="type.googleapis.com/envoy.config.cluster.v3.Cluster", node={"id": "probe"})
    try:
        first = next(iter(stub.StreamAggregatedResources(iter([request]), timeout=10)))
        results[how] = f"{len(first.resources)} clusters"
    except grpc.RpcError as error:
        results[how] = error.code().name
print(json.dumps(results))
"""


def _tls(certs: Path, name: str) -> list[str]:
    return ["--tls-cert", str(certs / f"{name}.crt"), "--tls-key", str(certs / f"{name}.key"),
            "--tls-ca", str(certs / "ca.crt")]  # fmt: skip


def _config(provider: str) -> str:
    return f"""
listen: 127.0.0.1:{GATEWAY_PORT}
providers:
  oa: {{kind: openai, base_url: "http://{provider}:{PROVIDER_PORT}", api_key: sk-multihost}}
routes:
  - model: shared
    targets: [{{name: only, provider: oa, model: m}}]
"""


def _run_refused(host: Host, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*host.exec_prefix, PYTHON, "-m", "switchyard", *args], capture_output=True, text=True, timeout=60
    )


def _node(name: str, host: Host, xds: str, certs: Path, tmp_path: Path) -> SwitchyardProcess:
    log_dir = tmp_path / f"{name}-logs"
    log_dir.mkdir()
    args = ["node", "--controlplane", xds, "--name", name, "--listen", f"{host.address}:{GATEWAY_PORT}",
            *_tls(certs, name), "--work-dir", str(tmp_path / name), "--log-dir", str(log_dir),
            "--extproc-workers", "1", "--drain-notice", "0", "--drain-timeout", "5"]  # fmt: skip
    return SwitchyardProcess(
        name, args, tmp_path, extra_logs=((f"{name} envoy", log_dir / "envoy.log"),), prefix=host.exec_prefix
    )


def test_two_nodes_on_their_own_hosts_serve_over_mtls(hosts: dict[str, Host], tmp_path: Path) -> None:
    cp, client = hosts["controlplane"], hosts["client"]
    certs = tmp_path / "tls"
    # The control plane's certificate names the address the nodes dial (an IP address SAN).
    make_certs(certs, [cp.address, "n1", "n2"])
    config = tmp_path / "switchyard.yaml"
    config.write_text(_config(client.address))
    xds = f"{cp.address}:{GRPC_PORT}"

    # Without TLS, neither end talks across hosts unless told --insecure.
    refused = _run_refused(cp, ["controlplane", str(config), "--listen", f"{cp.address}:{GRPC_PORT + 1}"])
    assert refused.returncode == 2 and "--insecure" in refused.stderr, refused.stderr
    refused = _run_refused(hosts["n1"], ["node", "--controlplane", xds, "--work-dir", str(tmp_path / "refused")])
    assert refused.returncode == 2 and "--tls-cert" in refused.stderr, refused.stderr

    processes: list[SwitchyardProcess] = []
    mock = MockProvider(
        "provider", tmp_path, ("--host", client.address, "--port", str(PROVIDER_PORT)), prefix=client.exec_prefix
    )
    try:
        controlplane = SwitchyardProcess(
            "controlplane",
            [
                "controlplane",
                str(config),
                "--listen",
                xds,
                "--api",
                f"{cp.address}:{API_PORT}",
                *_tls(certs, cp.address),
            ],
            tmp_path,
            prefix=cp.exec_prefix,
        )
        processes.append(controlplane)
        controlplane.wait_for_log(f"serving ADS and the attempt log on {xds} over mTLS", 20)
        processes.extend(_node(name, hosts[name], xds, certs, tmp_path) for name in ("n1", "n2"))
        for process in processes[1:]:
            process.wait_for_log(f"Switchyard node {process.name} is up", 60)
            assert "over mTLS" in process.log()

        # The client, on its own host, gets 200 through each node; the provider answered each.
        urls = [f"http://{hosts[name].address}:{GATEWAY_PORT}" for name in ("n1", "n2")]
        answers = _on(client, _CHAT, *urls)
        assert answers == [{"status": 200, "target": "only", "served_by": "provider"}] * 2, answers

        # The control plane, across the network, knows both nodes and their attempts (attempt log over mTLS).
        api = f"http://{cp.address}:{API_PORT}"

        def both_nodes_seen() -> bool:
            nodes = {node["name"]: node for node in _on(client, _STATUS, api)["nodes"]}
            return set(nodes) == {"n1", "n2"} and all(
                node["state"] == "current" and (node["attempts"] or 0) >= 1 for node in nodes.values()
            )

        wait_for(both_nodes_seen, 20, "both nodes current, with their attempts, in the control plane's /status")

        # Someone on the client's host, without a certificate of the fleet, cannot subscribe to ADS (which
        # carries the provider keys); with one, the same probe gets the clusters.
        probe = _on(client, _ADS_PROBE, xds, str(certs))
        assert probe["plain"] == probe["tls without a client certificate"] == "UNAVAILABLE", probe
        assert probe["tls with the fleet's certificate"].endswith(" clusters"), probe
    finally:
        for process in reversed(processes):
            process.stop()
        mock.stop()
