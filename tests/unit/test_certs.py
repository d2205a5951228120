"""`switchyard certs`: a CA and host certificates that a TLS server and client of the fleet would accept."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import DNSName, IPAddress, PolicyBuilder, Store, VerificationError

from switchyard.cli.certs import CertsError, make_certs
from switchyard.cli.main import main


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_host_certificates_verify_against_the_ca_as_server_and_as_client(tmp_path: Path) -> None:
    make_certs(tmp_path, ["cp.example", "10.0.0.5", "node-1"])
    store = Store([_cert(tmp_path / "ca.crt")])

    for host, subject in (
        ("cp.example", DNSName("cp.example")),
        ("10.0.0.5", IPAddress(ipaddress.ip_address("10.0.0.5"))),
    ):
        leaf = _cert(tmp_path / f"{host}.crt")
        chain = PolicyBuilder().store(store).build_server_verifier(subject).verify(leaf, [])
        assert chain[-1] == _cert(tmp_path / "ca.crt")
        client = PolicyBuilder().store(store).build_client_verifier().verify(leaf, [])
        assert client.subjects is not None
    # A server verifier for another name refuses the certificate: the SAN is what binds it to its host.
    with pytest.raises(VerificationError):
        PolicyBuilder().store(store).build_server_verifier(DNSName("other.example")).verify(
            _cert(tmp_path / "cp.example.crt"), []
        )


def test_sans_and_key_usages(tmp_path: Path) -> None:
    make_certs(tmp_path, ["cp.example", "127.0.0.1"])
    by_name = _cert(tmp_path / "cp.example.crt")
    by_ip = _cert(tmp_path / "127.0.0.1.crt")

    assert by_name.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    ) == ["cp.example"]
    san = by_ip.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == []  # no `localhost` unless asked for
    for certificate in (by_name, by_ip):
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    ca = _cert(tmp_path / "ca.crt").extensions.get_extension_for_class(x509.BasicConstraints).value
    assert ca.ca is True


def test_keys_are_owner_only_and_certificates_readable(tmp_path: Path) -> None:
    make_certs(tmp_path / "tls", ["n1"])
    directory = tmp_path / "tls"
    assert _mode(directory) == 0o700
    assert _mode(directory / "ca.key") == _mode(directory / "n1.key") == 0o600
    assert _mode(directory / "ca.crt") == _mode(directory / "n1.crt") == 0o644
    assert sorted(p.name for p in directory.iterdir()) == ["ca.crt", "ca.key", "n1.crt", "n1.key"]  # no leftovers


def test_a_rerun_keeps_the_ca_renews_the_named_hosts_and_force_makes_a_new_ca(tmp_path: Path) -> None:
    first = make_certs(tmp_path, ["n1", "n2"])
    ca = (tmp_path / "ca.crt").read_bytes()
    n1, n2 = (tmp_path / "n1.crt").read_bytes(), (tmp_path / "n2.crt").read_bytes()

    second = make_certs(tmp_path, ["n1", "n3"])
    assert first.ca_created and not second.ca_created
    assert (tmp_path / "ca.crt").read_bytes() == ca
    assert (tmp_path / "n1.crt").read_bytes() != n1  # renewed
    assert (tmp_path / "n2.crt").read_bytes() == n2  # not named: untouched
    store = Store([_cert(tmp_path / "ca.crt")])
    for host in ("n1", "n2", "n3"):  # all still verify against the kept CA
        PolicyBuilder().store(store).build_server_verifier(DNSName(host)).verify(_cert(tmp_path / f"{host}.crt"), [])

    assert make_certs(tmp_path, ["n1"], force=True).ca_created
    assert (tmp_path / "ca.crt").read_bytes() != ca


def test_bad_names_and_half_a_ca_are_refused(tmp_path: Path) -> None:
    for bad in ("ca", "../etc", "a b", "", "-x"):
        with pytest.raises(CertsError):
            make_certs(tmp_path / "x", [bad])
    make_certs(tmp_path, ["n1"])
    (tmp_path / "ca.key").unlink()
    with pytest.raises(CertsError, match=r"ca\.crt but no ca\.key"):
        make_certs(tmp_path, ["n2"])


def test_certs_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", str(tmp_path), "--host", "cp", "--host", "n1", "--days", "30"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("new CA: ") and "--tls-cert" in out
    days = _cert(tmp_path / "n1.crt").not_valid_after_utc - _cert(tmp_path / "n1.crt").not_valid_before_utc
    assert 30 <= days.days <= 31
    assert main(["certs", str(tmp_path), "--host", "cp"]) == 0
    assert capsys.readouterr().out.startswith("kept the CA: ")
    assert main(["certs", str(tmp_path), "--host", "a/b"]) == 2
    assert "a DNS name" in capsys.readouterr().err
