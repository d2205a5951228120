"""`switchyard certs`: a private CA and one certificate per host, for mTLS between a fleet's hosts.

ADS and the attempt log carry provider API keys and health; between hosts they run over mutual TLS, and both
ends need certificates from a CA they trust. Real deployments bring their own PEM files; this makes a working
set for a demo, compose or a small fleet without an openssl recipe. Every host certificate is both a server
and a client certificate (EKU serverAuth + clientAuth): the same files serve a control plane and a node.

Re-running keeps the CA (so certificates issued before stay valid) and (re)issues the certificates of the
hosts named; --force makes a new CA as well. Every file is replaced by a rename, so a process that re-reads
certificates when they change (the control plane, Envoy) never reads half a file.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
CA_DAYS = 3650
PRIVATE = 0o600  # keys
PUBLIC = 0o644  # certificates
# A host name as it goes into a DNS SAN and a file name: letters, digits, '-', '.', no leading dot or dash.
_HOST_NAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})$")


class CertsError(ValueError):
    """A host name that cannot be a certificate's name, or a directory with half a CA."""


@dataclass(frozen=True)
class Issued:
    """What one run wrote: whether the CA is new, and each host's certificate and key."""

    ca_created: bool
    ca_cert: Path
    hosts: tuple[tuple[str, Path, Path], ...]


def subject_alt_name(host: str) -> x509.GeneralName:
    """An IP address SAN when the name parses as one, else a DNS name SAN."""
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def check_host(host: str) -> str:
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if not _HOST_NAME.match(host) or ".." in host:
        raise CertsError(f"{host!r}: a host is a DNS name (letters, digits, '-', '.') or an IP address")
    if host in ("ca",):
        raise CertsError(f"{host!r}: its files would overwrite the CA's ({CA_CERT}, {CA_KEY})")
    return host


def _new_key() -> ec.EllipticCurvePrivateKey:
    # P-256: accepted by Envoy (BoringSSL) and gRPC, and made in a millisecond where RSA takes a second.
    return ec.generate_private_key(ec.SECP256R1())


def _validity(days: int) -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC)
    # Back-dated a little: a host whose clock is a minute behind must not see a certificate "not yet valid".
    return now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write by rename, created with its final mode: no moment where a key is readable or a file half written."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.chmod(temporary, mode)  # the umask may have taken bits away from a certificate's 0644
    temporary.replace(path)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _make_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Switchyard"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Switchyard CA {datetime.date.today().isoformat()}"),
        ]
    )
    not_before, not_after = _validity(CA_DAYS)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(directory / CA_KEY, _pem_key(key), PRIVATE)
    _write(directory / CA_CERT, certificate.public_bytes(serialization.Encoding.PEM), PUBLIC)
    return certificate, key


def _key_usage(ca: bool) -> x509.KeyUsage:
    """A CA only signs certificates (and CRLs); a host key only signs TLS handshakes (ECDHE with ECDSA)."""
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    certificate = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
    key = serialization.load_pem_private_key((directory / CA_KEY).read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != certificate.public_key():
        raise CertsError(f"{directory / CA_KEY} is not the key of {directory / CA_CERT}: use --force for a new CA")
    return certificate, key


def issue_host(
    host: str, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, days: int
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate for `host` signed by the CA: SAN = the host, EKU serverAuth + clientAuth."""
    key = _new_key()
    not_before, not_after = _validity(days)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(min(not_after, ca.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([subject_alt_name(host)]), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return certificate, key


def make_certs(directory: Path, hosts: Sequence[str], days: int = 365, force: bool = False) -> Issued:
    names = [check_host(host) for host in hosts]
    if not names:
        raise CertsError("name at least one host (--host NAME)")
    if days < 1:
        raise CertsError(f"--days must be at least 1, not {days}")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    have_cert, have_key = (directory / CA_CERT).exists(), (directory / CA_KEY).exists()
    if force or not (have_cert or have_key):
        ca, ca_key = _make_ca(directory)
        created = True
    elif have_cert and have_key:
        ca, ca_key = _load_ca(directory)
        created = False
    else:
        present, absent = (CA_CERT, CA_KEY) if have_cert else (CA_KEY, CA_CERT)
        raise CertsError(f"{directory} has {present} but no {absent}: restore it, or use --force for a new CA")
    written = []
    for host in names:
        certificate, key = issue_host(host, ca, ca_key, days)
        cert_path, key_path = directory / f"{host}.crt", directory / f"{host}.key"
        # The key first: a reader that sees the new certificate then finds its key in place.
        _write(key_path, _pem_key(key), PRIVATE)
        _write(cert_path, certificate.public_bytes(serialization.Encoding.PEM), PUBLIC)
        written.append((host, cert_path, key_path))
    return Issued(created, directory / CA_CERT, tuple(written))


def run(directory: Path, hosts: Sequence[str], days: int, force: bool) -> int:
    try:
        issued = make_certs(directory, hosts, days, force)
    except (CertsError, OSError, ValueError) as error:
        print(f"switchyard certs: {error}", file=sys.stderr)
        return 2
    print(f"{'new CA' if issued.ca_created else 'kept the CA'}: {issued.ca_cert} (its key {directory / CA_KEY}, 0600)")
    for host, cert, key in issued.hosts:
        print(f"{host}: {cert}, {key} (0600)")
    print(
        "Copy ca.crt and a host's NAME.crt/NAME.key to that host, then e.g.\n"
        "  switchyard controlplane CONFIG --listen 0.0.0.0:18000 \\\n"
        f"      --tls-cert CP.crt --tls-key CP.key --tls-ca {CA_CERT}\n"
        "  switchyard node --controlplane CP:18000 \\\n"
        f"      --tls-cert NODE.crt --tls-key NODE.key --tls-ca {CA_CERT}\n"
        f"Keep {CA_KEY} off the fleet's hosts: whoever has it can make certificates they all trust."
    )
    return 0
