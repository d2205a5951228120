"""mTLS flags and refusals, Envoy's side of the TLS (bootstrap + SDS files, checked by the real Envoy), and the
control plane's credentials that follow the certificate files."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.tls_server import ReloadingCredentials, TlsFilesError
from switchyard.addresses import parse_address
from switchyard.cli.certs import make_certs
from switchyard.cli.main import main
from switchyard.supervisor.bootstrap import BootstrapParams, render_bootstrap
from switchyard.supervisor.gateway import Node
from switchyard.supervisor.options import NodeOptions
from switchyard.tls import (
    CA_SECRET,
    CLIENT_CERT_SECRET,
    EnvoyTls,
    TlsFiles,
    TlsFlagError,
    check_plaintext,
    is_local,
    sds_documents,
    write_sds_files,
)
from tests.unit.test_bootstrap import assert_envoy_accepts


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    make_certs(tmp_path / "tls", ["cp.example", "10.0.0.5", "n1"])
    return tmp_path / "tls"


def _files(certs: Path, host: str = "n1") -> TlsFiles:
    return TlsFiles(certs / f"{host}.crt", certs / f"{host}.key", certs / "ca.crt")


def _tls_flags(certs: Path, host: str) -> list[str]:
    return ["--tls-cert", str(certs / f"{host}.crt"), "--tls-key", str(certs / f"{host}.key"),
            "--tls-ca", str(certs / "ca.crt")]  # fmt: skip


# --- where plain TCP is refused ---


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("unix:/w/x.sock", True),
        ("127.0.0.1:1", True),
        ("127.9.9.9:1", True),
        ("[::1]:1", True),
        ("localhost:1", True),
        ("0.0.0.0:1", False),
        ("10.213.0.1:1", False),
        ("[::]:1", False),
        ("controlplane:18000", False),
    ],
)
def test_only_unix_sockets_and_loopback_count_as_local(address: str, local: bool) -> None:
    assert is_local(parse_address(address)) is local


def test_plain_tcp_off_loopback_is_refused_unless_tls_or_insecure(certs: Path) -> None:
    with pytest.raises(TlsFlagError, match=r"--listen 0\.0\.0\.0:18000 is not a loopback address.*--insecure"):
        check_plaintext(["0.0.0.0:18000"], None, False, "--listen", "keys leak")
    check_plaintext(["0.0.0.0:18000"], None, True, "--listen", "keys leak")
    check_plaintext(["0.0.0.0:18000"], _files(certs), False, "--listen", "keys leak")
    check_plaintext(["127.0.0.1:18000", "unix:/w/x.sock"], None, False, "--listen", "keys leak")


def test_the_commands_refuse_before_starting_anything(
    tmp_path: Path, certs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("routes: []\n")
    assert main(["controlplane", str(config), "--listen", "0.0.0.0:18000"]) == 2
    assert "--insecure" in capsys.readouterr().err
    assert main(["node", "--controlplane", "cp.example:18000", "--work-dir", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert "--controlplane cp.example:18000 is not a loopback address" in err and "--tls-cert" in err
    assert not (tmp_path / "w").exists()
    assert main(["up", str(config), "--xds", "0.0.0.0:18000"]) == 2
    assert "--xds 0.0.0.0:18000" in capsys.readouterr().err
    # All three files or none; files that are there.
    assert main(["node", "--controlplane", "cp.example:18000", "--tls-cert", str(certs / "n1.crt")]) == 2
    assert "missing --tls-key, --tls-ca" in capsys.readouterr().err
    missing = [
        "--tls-cert",
        str(tmp_path / "no.crt"),
        "--tls-key",
        str(certs / "n1.key"),
        "--tls-ca",
        str(certs / "ca.crt"),
    ]
    assert main(["controlplane", str(config), "--listen", "0.0.0.0:18000", *missing]) == 2
    assert "no such file: --tls-cert" in capsys.readouterr().err


# --- Envoy's side ---


def _cluster(document: dict[str, Any], name: str = "switchyard_xds") -> dict[str, Any]:
    clusters: list[dict[str, Any]] = [c for c in document["static_resources"]["clusters"] if c["name"] == name]
    return clusters[0]


def test_the_control_plane_cluster_presents_the_node_certificate_and_verifies_the_control_planes(
    tmp_path: Path, certs: Path
) -> None:
    tls = EnvoyTls(_files(certs), tmp_path / "sds")
    document = yaml.safe_load(
        render_bootstrap(BootstrapParams("n1", "unix:/w/a.sock", "cp.example:18000", ("unix:/w/e.sock",), tls=tls))
    )
    socket = _cluster(document)["transport_socket"]
    assert socket["name"] == "envoy.transport_sockets.tls"
    context = socket["typed_config"]
    assert context["sni"] == "cp.example"
    common = context["common_tls_context"]
    (certificate,) = common["tls_certificate_sds_secret_configs"]
    assert certificate["name"] == CLIENT_CERT_SECRET
    assert certificate["sds_config"]["path_config_source"]["path"] == str(tls.cert_sds)
    validation = common["combined_validation_context"]
    assert validation["default_validation_context"]["match_typed_subject_alt_names"] == [
        {"san_type": "DNS", "matcher": {"exact": "cp.example"}}
    ]
    assert validation["validation_context_sds_secret_config"]["name"] == CA_SECRET
    # The extproc cluster stays as it was: TLS is for the control plane only.
    assert "transport_socket" not in _cluster(document, "switchyard_extproc")

    by_ip = yaml.safe_load(
        render_bootstrap(BootstrapParams("n1", "unix:/w/a.sock", "10.0.0.5:18000", ("unix:/w/e.sock",), tls=tls))
    )
    context = _cluster(by_ip)["transport_socket"]["typed_config"]
    assert "sni" not in context  # TLS sends no IP address as SNI; the IP SAN is what is checked
    assert context["common_tls_context"]["combined_validation_context"]["default_validation_context"][
        "match_typed_subject_alt_names"
    ] == [{"san_type": "IP_ADDRESS", "matcher": {"exact": "10.0.0.5"}}]

    plain = yaml.safe_load(
        render_bootstrap(BootstrapParams("n1", "unix:/w/a.sock", "127.0.0.1:18000", ("unix:/w/e.sock",)))
    )
    assert _cluster(plain)["transport_socket"]["name"] == "envoy.transport_sockets.raw_buffer"


def test_the_sds_files_name_the_pem_files_and_watch_their_directory(tmp_path: Path, certs: Path) -> None:
    tls = EnvoyTls(_files(certs), tmp_path / "sds")
    write_sds_files(tls)
    (secret,) = json.loads(tls.cert_sds.read_text())["resources"]
    assert secret["name"] == CLIENT_CERT_SECRET
    assert secret["tls_certificate"] == {
        "certificate_chain": {"filename": str(certs / "n1.crt")},
        "private_key": {"filename": str(certs / "n1.key")},
        "watched_directory": {"path": str(certs)},
    }
    (ca,) = json.loads(tls.ca_sds.read_text())["resources"]
    assert ca["validation_context"]["trusted_ca"] == {"filename": str(certs / "ca.crt")}
    assert set(sds_documents(tls)) == {tls.cert_sds, tls.ca_sds}


@pytest.mark.parametrize("xds", ["cp.example:18000", "10.0.0.5:18000", "unix:{d}/xds.sock"])
def test_envoy_accepts_the_bootstrap_with_tls(tmp_path: Path, certs: Path, xds: str) -> None:
    tls = EnvoyTls(_files(certs), tmp_path / "sds")
    write_sds_files(tls)
    params = BootstrapParams(
        "n1", f"unix:{tmp_path}/a.sock", xds.format(d=tmp_path), (f"unix:{tmp_path}/e.sock",), tls=tls
    )
    assert_envoy_accepts(params, tmp_path)


def test_envoy_bootstrap_command_writes_the_sds_files(
    tmp_path: Path, certs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["envoy-bootstrap", "--admin", "unix:/w/a.sock", "--xds", "cp.example:18000", "--extproc", "e:18001"]
    assert main([*argv, *_tls_flags(certs, "n1")]) == 2
    assert "--sds-dir" in capsys.readouterr().err
    assert main([*argv, *_tls_flags(certs, "n1"), "--sds-dir", str(tmp_path / "sds")]) == 0
    document = yaml.safe_load(capsys.readouterr().out)
    assert _cluster(document)["transport_socket"]["name"] == "envoy.transport_sockets.tls"
    assert sorted(p.name for p in (tmp_path / "sds").iterdir()) == [
        "sds-controlplane-ca.json",
        "sds-controlplane-client-cert.json",
    ]


def test_a_node_with_tls_writes_the_sds_files_into_its_work_dir(tmp_path: Path, certs: Path) -> None:
    options = NodeOptions(xds="cp.example:18000", name="n1", work_dir=tmp_path / "w", tls=_files(certs))
    Node(options)
    bootstrap = yaml.safe_load((tmp_path / "w" / "envoy-bootstrap.yaml").read_text())
    assert _cluster(bootstrap)["transport_socket"]["typed_config"]["sni"] == "cp.example"
    assert (tmp_path / "w" / "sds-controlplane-client-cert.json").is_file()


# --- the control plane's side ---


def test_credentials_follow_the_files_and_keep_the_last_good_set(certs: Path, caplog: pytest.LogCaptureFixture) -> None:
    files = _files(certs, "cp.example")
    credentials = ReloadingCredentials(files)
    assert credentials.credentials() is not None
    assert credentials.fetch() is None  # unchanged: gRPC keeps what it has

    make_certs(certs, ["cp.example"])  # renewed by rename
    assert credentials.fetch() is not None
    assert credentials.fetch() is None

    # Half a rotation: a new certificate whose key is not there yet. The old set stays, with one warning.
    key = files.key.read_bytes()
    make_certs(certs, ["cp.example"])
    files.key.write_bytes(key)
    with caplog.at_level(logging.WARNING, "switchyard.controlplane.tls"):
        assert credentials.fetch() is None
        assert credentials.fetch() is None
    assert [r.getMessage() for r in caplog.records].count(caplog.records[0].getMessage()) == 1
    assert "is not the key of" in caplog.records[0].getMessage()
    make_certs(certs, ["cp.example"])  # the rotation completes
    assert credentials.fetch() is not None


def test_unusable_files_at_start_are_an_error(certs: Path, tmp_path: Path) -> None:
    with pytest.raises(TlsFilesError, match="is not the key of"):
        ReloadingCredentials(TlsFiles(certs / "n1.crt", certs / "cp.example.key", certs / "ca.crt"))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not pem")
    with pytest.raises(TlsFilesError):
        ReloadingCredentials(TlsFiles(garbage, certs / "n1.key", certs / "ca.crt"))
    with pytest.raises(OSError):
        ReloadingCredentials(TlsFiles(tmp_path / "absent.crt", certs / "n1.key", certs / "ca.crt"))


def test_with_several_control_planes_each_attempt_log_cluster_verifies_its_own_replica(
    tmp_path: Path, certs: Path
) -> None:
    """ADS may go to either replica, so its cluster accepts both names (and sends no SNI); the attempt log to a
    replica goes to that one alone, so its cluster accepts only that replica's certificate and sends its name."""
    tls = EnvoyTls(_files(certs), tmp_path / "sds")
    write_sds_files(tls)
    params = BootstrapParams(
        "n1", f"unix:{tmp_path}/a.sock", "cp.example:18000,10.0.0.5:18000", (f"unix:{tmp_path}/e.sock",), tls=tls
    )
    clusters = {c["name"]: c for c in yaml.safe_load(render_bootstrap(params))["static_resources"]["clusters"]}

    def names(cluster: str) -> tuple[list[str], str | None]:
        context = clusters[cluster]["transport_socket"]["typed_config"]
        matchers = context["common_tls_context"]["combined_validation_context"]["default_validation_context"]
        sans = [next(iter(m["matcher"].values())) for m in matchers["match_typed_subject_alt_names"]]
        return sans, context.get("sni")

    assert names("switchyard_xds") == (["cp.example", "10.0.0.5"], None)
    assert names("switchyard_xds_1") == (["cp.example"], "cp.example")
    assert names("switchyard_xds_2") == (["10.0.0.5"], None)  # TLS sends no IP address as SNI
    assert_envoy_accepts(params, tmp_path)


def test_a_flag_is_taken_only_as_spelled(capsys: pytest.CaptureFixture[str]) -> None:
    """`up` has `--tls-ca-file` (the providers' CA bundle) and no `--tls-ca`: a fleet flag given to `up` must
    be refused, not read as a prefix of the other."""
    with pytest.raises(SystemExit):
        main(["up", "x.yaml", "--tls-ca", "ca.crt"])
    assert "unrecognized arguments: --tls-ca" in capsys.readouterr().err
