"""docker-compose.yml without a Docker engine: its services agree with each other and with the CLI (flags,
ports, the certificates `certs` makes and the names the others use, the drain against the stop grace period,
the routing YAML it mounts, the base image it builds on). Compose v2 (`docker compose config`) and v1
(`docker-compose config`) each parse it where installed. The fleet itself runs in tests/containers/test_compose.py
wherever an engine answers."""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from switchyard.config import load_config_text
from switchyard.supervisor.processes import Child
from tests.deploy.cli_flags import check_command_lines, default_of, option_value, option_values

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
TLS_DIR = "/etc/switchyard/tls"
NODES = ("node1", "node2")


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load(COMPOSE.read_text())  # anchors and `<<` merges as compose reads them
    services: dict[str, dict[str, Any]] = document["services"]
    return services


def _argv(service: dict[str, Any]) -> list[str]:
    return [str(word) for word in service["command"]]


def _volume_targets(service: dict[str, Any]) -> dict[str, str]:
    """container path → source, from short-syntax volumes."""
    targets = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        targets[target] = source
    return targets


def _defaults(text: str) -> str:
    """Compose's interpolation with nothing set: ${VAR:-default} → default."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", r"\1", text)


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m)?", text)
    assert match, text
    return float(match.group(1)) * (60 if match.group(2) == "m" else 1)


def test_the_fleet_has_a_control_plane_two_nodes_a_mock_and_the_certificates(
    services: dict[str, dict[str, Any]],
) -> None:
    commands = {name: _argv(s)[1] for name, s in services.items()}
    assert commands == {
        "certs": "certs",
        "controlplane": "controlplane",
        "node1": "node",
        "node2": "node",
        "mock-openai": "mock-provider",
    }
    assert {s["image"] for s in services.values()} == {"switchyard:local"}


def test_every_service_runs_a_command_line_switchyard_takes(services: dict[str, dict[str, Any]]) -> None:
    """xfails (naming the flags) while the fleet flags are not built in this tree; passes once they are."""
    check_command_lines([(f"compose service {name}", _argv(s)) for name, s in services.items()])


def test_only_the_listeners_and_the_status_api_are_published_on_loopback(
    services: dict[str, dict[str, Any]],
) -> None:
    published: dict[str, list[str]] = {name: s.get("ports", []) for name, s in services.items() if s.get("ports")}
    assert set(published) == {"controlplane", *NODES}
    host_ports = []
    for name, ports in published.items():
        for mapping in ports:
            host_ip, host_port, container_port = _defaults(mapping).split(":")
            assert host_ip == "127.0.0.1", f"{name} publishes beyond loopback: {mapping}"
            host_ports.append(host_port)
            if name == "controlplane":
                assert option_value(_argv(services[name]), "--api") == f"0.0.0.0:{container_port}"
            else:
                assert option_value(_argv(services[name]), "--listen") == f"0.0.0.0:{container_port}"
    assert len(set(host_ports)) == len(host_ports), f"two services on one host port: {host_ports}"
    grpc = option_value(_argv(services["controlplane"]), "--listen") or ""
    assert not any(m.endswith(":" + grpc.rsplit(":", 1)[1]) for m in published["controlplane"]), "ADS is published"


def test_the_nodes_dial_the_control_plane_service_on_its_grpc_port(services: dict[str, dict[str, Any]]) -> None:
    grpc_port = (option_value(_argv(services["controlplane"]), "--listen") or "").rsplit(":", 1)[1]
    for node in NODES:
        argv = _argv(services[node])
        assert option_value(argv, "--controlplane") == f"controlplane:{grpc_port}"
        assert option_value(argv, "--name") == node
        assert services[node]["depends_on"]["controlplane"]["condition"] == "service_healthy"


def test_every_tls_file_is_one_certs_makes_in_the_volume_it_writes(services: dict[str, dict[str, Any]]) -> None:
    certs = _argv(services["certs"])
    out_dir = certs[2]
    hosts = option_values(certs, "--host")
    assert out_dir == TLS_DIR
    assert hosts == ["controlplane", *NODES]
    volume = _volume_targets(services["certs"])[TLS_DIR]
    for name in ("controlplane", *NODES):
        argv = _argv(services[name])
        assert option_value(argv, "--tls-cert") == f"{TLS_DIR}/{name}.crt", name
        assert option_value(argv, "--tls-key") == f"{TLS_DIR}/{name}.key", name
        assert option_value(argv, "--tls-ca") == f"{TLS_DIR}/ca.crt", name
        assert _volume_targets(services[name])[TLS_DIR] == volume, f"{name} does not mount the certs' volume"
    condition = services["controlplane"]["depends_on"]["certs"]["condition"]
    assert condition == "service_completed_successfully"  # and the nodes wait for the control plane


def test_the_stop_grace_period_outlasts_a_nodes_drain(services: dict[str, dict[str, Any]]) -> None:
    child_stop = inspect.signature(Child.stop).parameters["grace"].default
    for node in NODES:
        argv = _argv(services[node])
        notice = float(option_value(argv, "--drain-notice") or default_of("node", "drain_notice"))
        timeout = float(option_value(argv, "--drain-timeout") or default_of("node", "drain_timeout"))
        workers = int(option_value(argv, "--extproc-workers") or default_of("node", "extproc_workers"))
        grace = _seconds(services[node].get("stop_grace_period", "10s"))
        assert grace > notice + timeout + child_stop * (1 + workers), node


def test_the_node_healthchecks_ask_healthz_on_the_listener(services: dict[str, dict[str, Any]]) -> None:
    for node in NODES:
        port = (option_value(_argv(services[node]), "--listen") or "").rsplit(":", 1)[1]
        check = " ".join(services[node]["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/healthz" in check


def test_the_routing_yaml_it_mounts_is_valid_and_names_compose_services(services: dict[str, dict[str, Any]]) -> None:
    controlplane = services["controlplane"]
    config_path = _argv(controlplane)[2]
    source = _volume_targets(controlplane)[config_path]
    environ = {name: "value" for name in controlplane.get("environment", [])}
    config = load_config_text((ROOT / source).read_text(), source=source, environ=environ)
    for provider in config.providers.values():
        host, port = urlsplit(str(provider.base_url)).hostname, urlsplit(str(provider.base_url)).port
        assert host in services, f"provider at {provider.base_url}: no compose service {host}"
        assert option_value(_argv(services[host]), "--port") == str(port)


def test_the_image_builds_on_the_dockerfiles_default_base_unless_told_otherwise(
    services: dict[str, dict[str, Any]],
) -> None:
    dockerfile_default = re.search(r"^ARG BASE_IMAGE=(\S+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert dockerfile_default, "the Dockerfile takes its base as ARG BASE_IMAGE"
    for name, service in services.items():
        base = service["build"]["args"]["BASE_IMAGE"]
        assert base == "${SWITCHYARD_BASE_IMAGE:-" + dockerfile_default.group(1) + "}", name


@pytest.mark.parametrize("command", [["docker", "compose"], ["docker-compose"]], ids=["v2", "v1"])
def test_docker_compose_parses_the_file(command: list[str]) -> None:
    if shutil.which(command[0]) is None:
        pytest.skip(f"no {command[0]}")
    probe = subprocess.run([*command, "version"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        first_line = (probe.stderr.strip().splitlines() or ["no output"])[0]
        pytest.skip(f"{' '.join(command)} is not usable here: {first_line[:200]}")
    result = subprocess.run(
        [*command, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
