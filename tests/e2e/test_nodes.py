"""Several gateway nodes on one control plane: `switchyard controlplane` plus two `switchyard node`s on their own
listener ports. Both serve, /status lists both with the version they applied, an edit of the YAML reaches
both, and a node stopped with SIGTERM shows as gone while the other serves on. Every wait polls with a
deadline."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchyard.supervisor.processes import free_port
from tests.support.harness import MockProvider, SwitchyardProcess, node_process, wait_for

pytestmark = pytest.mark.e2e


def _config(mock: MockProvider, model: str) -> str:
    # The YAML's own listen is taken by neither node: each names its own with --listen.
    return f"""
listen: 127.0.0.1:{free_port()}
providers:
  oa: {{kind: openai, base_url: "{mock.url}", api_key: sk-nodes}}
routes:
  - model: shared
    targets: [{{name: only, provider: oa, model: {model}}}]
"""


def _write(path: Path, text: str) -> None:
    """The way editors save: write elsewhere, rename over the file."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    temporary.replace(path)


def _chat(port: int) -> httpx.Response:
    body = {"model": "shared", "messages": [{"role": "user", "content": "hello"}]}
    return httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=10)


def test_two_nodes_share_one_control_plane(tmp_path: Path) -> None:
    mock = MockProvider("nodes", tmp_path)
    config = tmp_path / "switchyard.yaml"
    config.write_text(_config(mock, "first-model"))
    xds = f"unix:{tmp_path / 'xds.sock'}"
    api = f"http://127.0.0.1:{free_port()}"
    ports = {"n1": free_port(), "n2": free_port()}
    processes: list[SwitchyardProcess] = []
    try:
        controlplane = SwitchyardProcess(
            "controlplane", ["controlplane", str(config), "--listen", xds, "--api", api[len("http://") :]], tmp_path
        )
        processes.append(controlplane)
        controlplane.wait_for_log("control plane serving ADS", 15)
        nodes = {name: node_process(name, xds, port, tmp_path) for name, port in ports.items()}
        processes.extend(nodes.values())
        for name, node in nodes.items():
            node.wait_for_log(f"Switchyard node {name} is up", 25)

        def status() -> dict[str, Any]:
            document: dict[str, Any] = httpx.get(f"{api}/status", timeout=5).json()
            return document

        def nodes_by_name() -> dict[str, dict[str, Any]]:
            return {node["name"]: node for node in status()["nodes"]}

        # Each node serves on its own port, with the same routes.
        for port in ports.values():
            response = _chat(port)
            assert response.status_code == 200, response.text
            assert response.headers["x-switchyard-target"] == "only"
        assert len(mock.requests("first-model")) == 2

        # /status knows both: where each listens, the version each applied, and the attempts each logged.
        listed = nodes_by_name()
        assert set(listed) == {"n1", "n2"}
        first_version = status()["config"]["version"]
        for name, port in ports.items():
            node = listed[name]
            assert (node["listen"], node["listen_from"], node["state"]) == (f"127.0.0.1:{port}", "node", "current")
            assert node["version"] == node["current_version"] == first_version
        wait_for(
            lambda: all((nodes_by_name()[name]["attempts"] or 0) >= 1 for name in ports),
            10,
            "each node's attempts in the attempt log",
        )

        # An edit reaches both nodes: what the provider receives changes on each.
        mock.clear()
        _write(config, _config(mock, "second-model"))
        wait_for(
            lambda: (
                status()["config"]["version"] != first_version
                and all(node["state"] == "current" for node in status()["nodes"])
            ),
            15,
            "both nodes to apply the new config version",
        )
        second_version = status()["config"]["version"]
        assert {node["config_version"] for node in status()["nodes"]} == {second_version}
        for port in ports.values():
            assert _chat(port).status_code == 200
        assert len(mock.requests("second-model")) == 2 and mock.requests("first-model") == []

        # A planned stop of n1: it drains and exits, /status shows it gone, n2 serves on.
        assert nodes["n1"].stop(signal.SIGTERM) == 0
        wait_for(lambda: nodes_by_name()["n1"]["state"] == "gone", 10, "n1 to show as gone")
        after = nodes_by_name()
        assert after["n1"]["gone_since"] is not None and after["n2"]["state"] == "current"
        assert _chat(ports["n2"]).status_code == 200
        with pytest.raises(httpx.ConnectError):
            _chat(ports["n1"])
        metrics = httpx.get(f"{api}/metrics", timeout=5).text
        assert 'switchyard_node_connected{node="n1"} 0.0' in metrics
        assert 'switchyard_node_connected{node="n2"} 1.0' in metrics
        assert f'switchyard_node_config_version_info{{node="n2",version="{second_version}"}} 1.0' in metrics
        assert 'switchyard_node_current{node="n2"} 1.0' in metrics
    finally:
        for process in reversed(processes):
            process.stop()
        mock.stop()
