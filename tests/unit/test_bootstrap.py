"""The rendered Envoy bootstrap: pipes or socket addresses, the cluster type they need, the admin's mode."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from switchyard.cli.main import main
from switchyard.supervisor.bootstrap import BootstrapParams, render_bootstrap
from switchyard.supervisor.processes import envoy_binary


def _render(admin: str, xds: str, *extprocs: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(render_bootstrap(BootstrapParams("node-1", admin, xds, extprocs)))
    return document


def _cluster(document: dict[str, Any], name: str) -> dict[str, Any]:
    clusters: list[dict[str, Any]] = [c for c in document["static_resources"]["clusters"] if c["name"] == name]
    (cluster,) = clusters
    return cluster


def _endpoints(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["endpoint"]["address"] for e in cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]]


def test_unix_sockets_render_as_pipes_in_static_clusters_and_an_owner_only_admin() -> None:
    document = _render(
        "unix:/w/envoy-admin.sock", "unix:/w/xds.sock", "unix:/w/extproc-1.sock", "unix:/w/extproc-2.sock"
    )

    assert document["node"]["id"] == "node-1"
    assert document["admin"]["address"] == {"pipe": {"path": "/w/envoy-admin.sock", "mode": 0o600}}
    xds, extproc = _cluster(document, "switchyard_xds"), _cluster(document, "switchyard_extproc")
    assert xds["type"] == "STATIC"
    assert _endpoints(xds) == [{"pipe": {"path": "/w/xds.sock"}}]
    assert extproc["type"] == "STATIC"
    assert _endpoints(extproc) == [{"pipe": {"path": "/w/extproc-1.sock"}}, {"pipe": {"path": "/w/extproc-2.sock"}}]


def test_tcp_addresses_render_as_socket_addresses_in_strict_dns_clusters() -> None:
    document = _render("127.0.0.1:9901", "controlplane:18000", "extproc:18001")

    assert document["admin"]["address"] == {"socket_address": {"address": "127.0.0.1", "port_value": 9901}}
    xds, extproc = _cluster(document, "switchyard_xds"), _cluster(document, "switchyard_extproc")
    assert xds["type"] == "STRICT_DNS"
    assert _endpoints(xds) == [{"socket_address": {"address": "controlplane", "port_value": 18000}}]
    assert extproc["type"] == "STRICT_DNS"
    assert _endpoints(extproc) == [{"socket_address": {"address": "extproc", "port_value": 18001}}]


def test_mixed_admin_and_clusters() -> None:
    document = _render("unix:/w/envoy-admin.sock", "controlplane:18000", "unix:/w/extproc.sock")

    assert "pipe" in document["admin"]["address"]
    assert _cluster(document, "switchyard_xds")["type"] == "STRICT_DNS"
    assert _cluster(document, "switchyard_extproc")["type"] == "STATIC"


def test_a_pipe_and_a_host_name_cannot_share_a_cluster() -> None:
    with pytest.raises(ValueError, match="host names"):
        _render("unix:/w/a.sock", "unix:/w/x.sock", "unix:/w/e.sock", "extproc:18001")


@pytest.mark.parametrize(
    "addresses",
    [
        ("unix:{d}/envoy-admin.sock", "unix:{d}/xds.sock", "unix:{d}/extproc-1.sock", "unix:{d}/extproc-2.sock"),
        ("127.0.0.1:9901", "localhost:18000", "127.0.0.1:18001"),
    ],
)
def test_envoy_accepts_the_rendered_bootstrap(tmp_path: Path, addresses: tuple[str, ...]) -> None:
    admin, xds, *extprocs = (a.format(d=tmp_path) for a in addresses)
    assert_envoy_accepts(BootstrapParams("node-1", admin, xds, tuple(extprocs)), tmp_path)


def assert_envoy_accepts(params: BootstrapParams, tmp_path: Path) -> None:
    """The real Envoy binary validates the rendered bootstrap (`--mode validate`)."""
    path = tmp_path / "bootstrap.yaml"
    path.write_text(render_bootstrap(params))
    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(path), "--log-level", "error"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_envoy_bootstrap_command(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["envoy-bootstrap", "--admin", "unix:/w/a.sock", "--xds", "controlplane:18000", "--insecure"]
    assert main([*argv, "--extproc", "extproc:18001", "--extproc", "extproc:18002"]) == 0
    document = yaml.safe_load(capsys.readouterr().out)
    assert document["admin"]["address"] == {"pipe": {"path": "/w/a.sock", "mode": 384}}
    assert len(_endpoints(_cluster(document, "switchyard_extproc"))) == 2

    assert main([*argv, "--extproc", "unix:/w/e.sock", "--extproc", "extproc:18002"]) == 2
    assert "host names" in capsys.readouterr().err
