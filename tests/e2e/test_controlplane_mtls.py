"""mTLS between nodes and the control plane, on loopback, with real processes and certificates from
`switchyard certs`: a node with a certificate of the fleet's CA is configured and serves; a node with another
CA's certificate, or with none, gets no config; renewed certificate files are used for new connections by the
control plane and by Envoy, without a restart. Every wait polls with a deadline."""

from __future__ import annotations

import json
import re
import socket
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from switchyard.cli.certs import make_certs
from switchyard.supervisor.processes import free_port
from tests.support.harness import MockProvider, SwitchyardProcess, wait_for

pytestmark = pytest.mark.e2e

CP_HOST = "127.0.0.1"  # the control plane's certificate names the address the nodes dial


def _config(mock: MockProvider) -> str:
    return f"""
listen: 127.0.0.1:{free_port()}
providers:
  oa: {{kind: openai, base_url: "{mock.url}", api_key: sk-mtls}}
routes:
  - model: shared
    targets: [{{name: only, provider: oa, model: m}}]
"""


def _tls_args(directory: Path, host: str) -> list[str]:
    return ["--tls-cert", str(directory / f"{host}.crt"), "--tls-key", str(directory / f"{host}.key"),
            "--tls-ca", str(directory / "ca.crt")]  # fmt: skip


def _node(name: str, xds: str, port: int, tmp_path: Path, tls: list[str]) -> SwitchyardProcess:
    log_dir = tmp_path / f"{name}-logs"
    log_dir.mkdir()
    return SwitchyardProcess(
        name,
        ["node", "--controlplane", xds, "--name", name, "--listen", f"127.0.0.1:{port}", *tls,
         "--work-dir", str(tmp_path / name), "--log-dir", str(log_dir), "--extproc-workers", "1",
         "--envoy-log-level", "info", "--drain-notice", "0", "--drain-timeout", "5"],
        tmp_path,
        extra_logs=((f"{name} envoy", log_dir / "envoy.log"),),
    )  # fmt: skip


def _admin(tmp_path: Path, node: str, path: str) -> str:
    transport = httpx.HTTPTransport(uds=str(tmp_path / node / "envoy-admin.sock"))
    with httpx.Client(transport=transport, base_url="http://envoy", timeout=5) as admin:
        return admin.get(path).text


def _stat(tmp_path: Path, node: str, name: str) -> int:
    match = re.search(rf"^{re.escape(name)}: (\d+)$", _admin(tmp_path, node, "/stats"), re.MULTILINE)
    assert match is not None, f"{node}'s Envoy has no stat {name}"
    return int(match.group(1))


def _envoy_serials(tmp_path: Path, node: str) -> set[int]:
    """The serial numbers of the certificates Envoy holds now (admin /certs)."""
    found = re.findall(r'"serial_number": "([0-9a-fA-F]+)"', _admin(tmp_path, node, "/certs"))
    return {int(serial, 16) for serial in found}


def _chat(port: int) -> httpx.Response:
    body = {"model": "shared", "messages": [{"role": "user", "content": "hello"}]}
    return httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=10)


def _serial(pem_path: Path) -> int:
    return x509.load_pem_x509_certificate(pem_path.read_bytes()).serial_number


def _served_serial(port: int, certs: Path, client: str) -> int:
    """The serial of the certificate the control plane presents to a new connection (a client with a valid
    certificate, ALPN h2, verified against the CA and the IP SAN, as Envoy does)."""
    context = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    context.load_cert_chain(str(certs / f"{client}.crt"), str(certs / f"{client}.key"))
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection((CP_HOST, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=CP_HOST) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_nodes_need_a_certificate_of_the_fleets_ca_and_renewed_files_are_used(tmp_path: Path) -> None:
    fleet, rogue = tmp_path / "fleet-ca", tmp_path / "rogue-ca"
    make_certs(fleet, [CP_HOST, "n1"])
    make_certs(rogue, ["n2"])
    # The rogue node trusts the fleet's CA for the server: only its own certificate is wrong.
    (rogue / "ca.crt").write_bytes((fleet / "ca.crt").read_bytes())
    mock = MockProvider("mtls", tmp_path)
    config = tmp_path / "switchyard.yaml"
    config.write_text(_config(mock))
    grpc_port, api = free_port(), f"127.0.0.1:{free_port()}"
    xds = f"{CP_HOST}:{grpc_port}"
    ports = {"n1": free_port(), "n2": free_port(), "n3": free_port()}
    processes: list[SwitchyardProcess] = []
    try:
        controlplane = SwitchyardProcess(
            "controlplane",
            ["controlplane", str(config), "--listen", xds, "--api", api, *_tls_args(fleet, CP_HOST)],
            tmp_path,
        )
        processes.append(controlplane)
        controlplane.wait_for_log("control plane serving ADS and the attempt log on 127.0.0.1", 15)
        assert "over mTLS" in controlplane.log()

        # A node with the fleet's certificate is configured over mTLS and serves through the real provider mock.
        n1 = _node("n1", xds, ports["n1"], tmp_path, _tls_args(fleet, "n1"))
        processes.append(n1)
        n1.wait_for_log("Switchyard node n1 is up, configured by the control plane at 127.0.0.1", 40)
        assert "over mTLS" in n1.log()
        response = _chat(ports["n1"])
        assert response.status_code == 200, response.text
        assert response.headers["x-switchyard-target"] == "only"
        assert len(mock.requests("m")) == 1

        def nodes() -> dict[str, dict[str, Any]]:
            listed: list[dict[str, Any]] = httpx.get(f"http://{api}/status", timeout=5).json()["nodes"]
            return {node["name"]: node for node in listed}

        # The attempt log rides the same mTLS cluster: the control plane counts n1's attempt.
        wait_for(lambda: (nodes()["n1"]["attempts"] or 0) >= 1, 15, "n1's attempt in the attempt log")

        # A certificate from another CA (n2), or none at all (n3, plain TCP on loopback), gets no config: each
        # Envoy keeps trying (its connection count grows), never applies a cluster or listener update, has no
        # listener, and the control plane lists neither.
        n2 = _node("n2", xds, ports["n2"], tmp_path, _tls_args(rogue, "n2"))
        n3 = _node("n3", xds, ports["n3"], tmp_path, [])
        processes.extend((n2, n3))
        for name in ("n2", "n3"):
            wait_for(
                lambda name=name: _stat(tmp_path, name, "cluster.switchyard_xds.upstream_cx_total") >= 3,
                40,
                f"{name}'s Envoy to have tried the control plane three times",
            )
            # (control_plane.connected_state flickers to 1: under TLS 1.3 the client finishes its handshake
            # before the server has checked the client's certificate and hangs up.)
            assert _stat(tmp_path, name, "cluster_manager.cds.update_success") == 0
            assert _stat(tmp_path, name, "listener_manager.lds.update_success") == 0
            assert json.loads(_admin(tmp_path, name, "/listeners?format=json")).get("listener_statuses", []) == []
            with pytest.raises(httpx.ConnectError):
                _chat(ports[name])
        assert set(nodes()) == {"n1"}
        assert _stat(tmp_path, "n1", "cluster_manager.cds.update_success") >= 1  # the same stat, where it counts

        # Renewal: `switchyard certs` again issues new certificates from the same CA, written by rename.
        old_cp, old_n1 = _serial(fleet / f"{CP_HOST}.crt"), _serial(fleet / "n1.crt")
        assert _served_serial(grpc_port, fleet, "n1") == old_cp
        assert old_n1 in _envoy_serials(tmp_path, "n1")
        make_certs(fleet, [CP_HOST, "n1"])
        new_cp, new_n1 = _serial(fleet / f"{CP_HOST}.crt"), _serial(fleet / "n1.crt")
        assert (new_cp, new_n1) != (old_cp, old_n1)
        # The control plane presents the new certificate on the next connection...
        assert _served_serial(grpc_port, fleet, "n1") == new_cp
        controlplane.wait_for_log("TLS files changed; new connections use", 10)
        # ...and n1's Envoy loaded its new client certificate (file-based SDS watches the files).
        wait_for(
            lambda: new_n1 in _envoy_serials(tmp_path, "n1"),
            15,
            "n1's Envoy to load its renewed certificate",
        )
        # The node still serves; its ADS stream, opened with the old certificates, carries on.
        assert _chat(ports["n1"]).status_code == 200
        assert nodes()["n1"]["state"] == "current"
    finally:
        for process in reversed(processes):
            process.stop()
        mock.stop()
