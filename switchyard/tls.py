"""mTLS between a node's Envoy and the control plane: the flags, the plaintext refusal, and Envoy's side.

ADS carries provider API keys and the attempt log carries health: between hosts both must be encrypted and
both ends authenticated. The control plane (controlplane/tls_server.py) requires a client certificate from
--tls-ca; Envoy presents its own and verifies the control plane's against the same CA, with the control
plane's host name (or IP) as the expected SAN.

Envoy takes its certificates through file-based SDS (two small files that name the PEM files): Envoy then
watches the PEM files and uses new ones for new connections without a restart, which static `filename`
certificates would not do. The watched directory is the certificates' own, so a Kubernetes secret mount
(files are symlinks into a `..data` directory swapped by rename) is seen too.

Plain TCP stays allowed where nothing crosses a network: Unix sockets and loopback addresses. Anything else
without TLS is refused unless --insecure says so.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from switchyard.addresses import Address, TcpAddress, UnixAddress, parse_address

CLIENT_CERT_SECRET = "switchyard_controlplane_client_cert"
CA_SECRET = "switchyard_controlplane_ca"
SDS_CERT_FILE = "sds-controlplane-client-cert.json"
SDS_CA_FILE = "sds-controlplane-ca.json"
_TLS_SOCKET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
_SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
_RAW = {
    "name": "envoy.transport_sockets.raw_buffer",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"},
}


class TlsFlagError(ValueError):
    """TLS flags given in part, or plain TCP where it is refused."""


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: this process's certificate and key, and the CA that signs its peers' certificates."""

    cert: Path
    key: Path
    ca: Path

    def missing(self) -> list[str]:
        return [f"{flag} {path}" for flag, path in self._flags() if not path.is_file()]

    def _flags(self) -> tuple[tuple[str, Path], ...]:
        return (("--tls-cert", self.cert), ("--tls-key", self.key), ("--tls-ca", self.ca))


def add_tls_arguments(parser: argparse.ArgumentParser, peer: str) -> None:
    """--tls-cert/--tls-key/--tls-ca/--insecure, the same on the control plane, `node` and `envoy-bootstrap`."""
    group = parser.add_argument_group(
        "mTLS with the control plane",
        "ADS carries provider API keys; between hosts it runs over mutual TLS: give all three files (PEM; "
        "`switchyard certs` makes a set). Files are re-read when they change: new connections use the new ones. "
        f"Without them, {peer} over TCP is refused unless the address is loopback or --insecure is given.",
    )
    group.add_argument("--tls-cert", type=Path, metavar="FILE", help="this host's certificate (PEM)")
    group.add_argument("--tls-key", type=Path, metavar="FILE", help="its private key (PEM)")
    group.add_argument("--tls-ca", type=Path, metavar="FILE", help="the CA that signs every host's certificate (PEM)")
    group.add_argument(
        "--insecure",
        action="store_true",
        help="allow plain TCP to a non-loopback address: provider API keys cross the network unencrypted and "
        "anyone who reaches the port can read them. Only for a network that only the gateway's hosts can reach",
    )


def tls_files_from(args: argparse.Namespace) -> TlsFiles | None:
    """The three files as absolute paths (Envoy resolves relative ones from its own directory), or None."""
    given = {flag: getattr(args, flag) for flag in ("tls_cert", "tls_key", "tls_ca")}
    if not any(given.values()):
        return None
    absent = [f"--{flag.replace('_', '-')}" for flag, value in given.items() if value is None]
    if absent:
        raise TlsFlagError(f"TLS needs --tls-cert, --tls-key and --tls-ca together; missing {', '.join(absent)}")
    files = TlsFiles(args.tls_cert.absolute(), args.tls_key.absolute(), args.tls_ca.absolute())
    if missing := files.missing():
        raise TlsFlagError(f"no such file: {', '.join(missing)}")
    return files


def is_local(address: Address) -> bool:
    """Nothing crosses a network: a Unix socket, `localhost`, or a loopback IP (127.0.0.0/8, ::1)."""
    if isinstance(address, UnixAddress):
        return True
    if address.host == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.host).is_loopback
    except ValueError:
        return False


def check_plaintext(addresses: Sequence[str], tls: TlsFiles | None, insecure: bool, flag: str, what: str) -> None:
    """Refuse plain TCP to or on a non-loopback address unless --insecure: `what` says what would be exposed."""
    if tls is not None or insecure:
        return
    remote = [text for text in addresses if not is_local(parse_address(text))]
    if remote:
        raise TlsFlagError(
            f"{flag} {', '.join(remote)} is not a loopback address, and without TLS {what}. Give "
            "--tls-cert, --tls-key and --tls-ca (`switchyard certs` makes them), or --insecure if only the "
            "gateway's hosts can reach this network"
        )


@dataclass(frozen=True)
class EnvoyTls:
    """Envoy's client side: the PEM files, and the directory where the two SDS files that name them go."""

    files: TlsFiles
    sds_dir: Path

    @property
    def cert_sds(self) -> Path:
        return self.sds_dir / SDS_CERT_FILE

    @property
    def ca_sds(self) -> Path:
        return self.sds_dir / SDS_CA_FILE


def sds_documents(tls: EnvoyTls) -> dict[Path, str]:
    """The SDS files' text (JSON, which Envoy reads as YAML), by path. Each holds exactly one Secret."""
    files = tls.files
    certificate: dict[str, Any] = {
        "certificate_chain": {"filename": str(files.cert)},
        "private_key": {"filename": str(files.key)},
    }
    if files.cert.parent == files.key.parent:
        certificate["watched_directory"] = {"path": str(files.cert.parent)}
    validation = {"trusted_ca": {"filename": str(files.ca)}, "watched_directory": {"path": str(files.ca.parent)}}
    return {
        tls.cert_sds: _secrets({"name": CLIENT_CERT_SECRET, "tls_certificate": certificate}),
        tls.ca_sds: _secrets({"name": CA_SECRET, "validation_context": validation}),
    }


def _secrets(secret: dict[str, Any]) -> str:
    return json.dumps({"resources": [{"@type": _SECRET, **secret}]}, indent=2) + "\n"


def write_sds_files(tls: EnvoyTls) -> None:
    """Write the SDS files before Envoy starts (they name the PEM files; their own content never changes)."""
    tls.sds_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for path, text in sds_documents(tls).items():
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(text)
        temporary.replace(path)


def _ip(host: str) -> str | None:
    """The host in the form Envoy prints an IP SAN in, or None for a DNS name."""
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return None


def _san_matcher(host: str) -> dict[str, Any]:
    ip = _ip(host)
    if ip is not None:
        return {"san_type": "IP_ADDRESS", "matcher": {"exact": ip}}
    return {"san_type": "DNS", "matcher": {"exact": host}}


def control_plane_transport_socket(addresses: Sequence[str], tls: EnvoyTls | None) -> dict[str, Any]:
    """The transport socket of a cluster whose endpoints are control planes at `addresses`.

    With TLS: Envoy presents its certificate, trusts only --tls-ca, and accepts a server certificate only if a
    SAN names one of the addresses' hosts (a CA-signed certificate of another host does not pass). SNI is the
    host when the cluster reaches one host and it is a name (TLS does not send IP addresses as SNI). Without
    TLS: plain bytes, said explicitly.
    """
    if tls is None:
        return _RAW
    hosts = [a.host for a in (parse_address(text) for text in addresses) if isinstance(a, TcpAddress)]
    context: dict[str, Any] = {
        "@type": _TLS_SOCKET,
        "common_tls_context": {
            "alpn_protocols": ["h2"],
            "tls_certificate_sds_secret_configs": [_sds_config(CLIENT_CERT_SECRET, tls.cert_sds)],
            "combined_validation_context": {
                "default_validation_context": {
                    "match_typed_subject_alt_names": [_san_matcher(host) for host in dict.fromkeys(hosts)],
                },
                "validation_context_sds_secret_config": _sds_config(CA_SECRET, tls.ca_sds),
            },
        },
    }
    # SNI names the one server this cluster reaches; a cluster of several replicas (ADS) sends none.
    if len(set(hosts)) == 1 and _ip(hosts[0]) is None:
        context["sni"] = hosts[0]
    return {"name": "envoy.transport_sockets.tls", "typed_config": context}


def _sds_config(name: str, path: Path) -> dict[str, Any]:
    return {"name": name, "sds_config": {"path_config_source": {"path": str(path)}, "resource_api_version": "V3"}}
