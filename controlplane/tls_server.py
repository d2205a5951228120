"""The control plane's TLS: client certificates required, certificate files re-read when they change.

gRPC asks `fetch` before every new TLS handshake (grpc.dynamic_ssl_server_credentials); it compares the files'
signatures (mtime, size, inode) with the last ones loaded and hands gRPC a new configuration only when they
moved. So a renewed certificate, a new key or a new CA bundle applies to the next connection, while streams
already open keep the session they have. A half-done rotation (a new certificate whose key is not in place
yet, an unreadable file) keeps the last good set and is retried on the next handshake.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from switchyard.tls import TlsFiles

log = logging.getLogger("switchyard.controlplane.tls")

_Signature = tuple[tuple[int, int, int], ...]


class TlsFilesError(ValueError):
    """Files that cannot be a server's certificate, key and client CA."""


@dataclass(frozen=True)
class _Loaded:
    signature: _Signature
    configuration: Any  # grpc.ServerCertificateConfiguration
    summary: str


def _signature(files: TlsFiles) -> _Signature:
    """Follows symlinks: a Kubernetes-style swap of the `..data` link changes it."""
    stats = [path.stat() for path in (files.cert, files.key, files.ca)]
    return tuple((s.st_mtime_ns, s.st_size, s.st_ino) for s in stats)


def load(files: TlsFiles) -> _Loaded:
    """Read and check the three files; raises OSError or TlsFilesError."""
    signature = _signature(files)
    cert_pem, key_pem, ca_pem = files.cert.read_bytes(), files.key.read_bytes(), files.ca.read_bytes()
    try:
        certificate = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
        authorities = x509.load_pem_x509_certificates(ca_pem)
    except (ValueError, TypeError) as error:
        raise TlsFilesError(f"not a PEM certificate, unencrypted key and CA bundle: {error}") from None
    if key.public_key() != certificate.public_key():
        raise TlsFilesError(f"{files.key} is not the key of {files.cert}")
    if not authorities:
        raise TlsFilesError(f"{files.ca} holds no certificate")
    configuration = grpc.ssl_server_certificate_configuration([(key_pem, cert_pem)], root_certificates=ca_pem)
    summary = (
        f"{files.cert} ({certificate.subject.rfc4514_string()}, serial {certificate.serial_number:x}, "
        f"valid until {certificate.not_valid_after_utc:%Y-%m-%d}), client CA {files.ca}"
    )
    return _Loaded(signature, configuration, summary)


class ReloadingCredentials:
    """Server credentials that require and verify a client certificate, and follow the files."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self._current = load(files)  # a bad set at start is an error the caller reports
        self._last_problem = ""
        log.info("TLS: %s; client certificates required", self._current.summary)

    def credentials(self) -> Any:
        return grpc.dynamic_ssl_server_credentials(
            self._current.configuration, self.fetch, require_client_authentication=True
        )

    def fetch(self) -> Any:
        """Called by gRPC before each new handshake: a new configuration, or None to keep the current one.

        Never raises: an exception here would fail the handshake instead of serving with the last good set."""
        try:
            if _signature(self.files) == self._current.signature:
                return None
            loaded = load(self.files)
        except (OSError, TlsFilesError) as error:
            problem = str(error)
            if problem != self._last_problem:  # once per distinct problem, not once per handshake
                log.warning("TLS files changed but cannot be used yet (%s); keeping the previous ones", problem)
                self._last_problem = problem
            return None
        self._current = loaded
        self._last_problem = ""
        log.info("TLS files changed; new connections use %s", loaded.summary)
        return loaded.configuration
