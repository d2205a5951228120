"""Real providers are HTTPS: Envoy must verify them against the CA bundle, with SNI and SAN from the host."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchyard.supervisor.processes import free_port
from tests.support.harness import MockProvider, running_stack

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("openssl") is None, reason="the openssl command is needed to make test certificates"
    ),
]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def certificates(tmp_path: Path) -> Path:
    """A throwaway CA and a server certificate for `localhost`, signed by it."""
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=switchyard-test-ca",
        cwd=tmp_path,
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
        cwd=tmp_path,
    )
    (tmp_path / "san.cnf").write_text("subjectAltName=DNS:localhost\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "1",
        "-extfile",
        "san.cnf",
        cwd=tmp_path,
    )
    return tmp_path


@pytest.fixture
def tls_mock(certificates: Path) -> Iterator[MockProvider]:
    tls = ("--tls-cert", str(certificates / "server.pem"), "--tls-key", str(certificates / "server.key"))
    provider = MockProvider("tls", certificates, tls)
    provider.set_rules([{"match": {"model": "tls-primary"}, "status": 502}])
    yield provider
    provider.stop()


def _config(port: int, mock_port: int) -> str:
    return f"""
listen: 127.0.0.1:{port}
providers:
  secure: {{kind: openai, base_url: "https://localhost:{mock_port}", api_key: sk-tls-test}}
routes:
  - model: tls
    targets:
      - {{name: primary, provider: secure, model: tls-primary}}
      - {{name: backup, provider: secure, model: tls-backup}}
"""


def test_https_provider_is_verified_and_fails_over(tmp_path: Path, certificates: Path, tls_mock: MockProvider) -> None:
    with running_stack(
        _config(free_port(), tls_mock.port), tmp_path, up_args=("--tls-ca-file", str(certificates / "ca.pem"))
    ) as stack:
        response = stack.chat("tls")

    assert response.status_code == 200, response.text
    assert response.headers["x-switchyard-target"] == "backup"
    (backup,) = tls_mock.requests("tls-backup")
    assert backup["headers"]["host"] == f"localhost:{tls_mock.port}"
    assert backup["headers"]["authorization"] == "Bearer sk-tls-test"


def test_https_provider_with_untrusted_certificate_is_refused(
    tmp_path: Path, certificates: Path, tls_mock: MockProvider
) -> None:
    # The system bundle does not know the test CA: Envoy must refuse the connection, not send the key.
    with running_stack(_config(free_port(), tls_mock.port), tmp_path) as stack:
        response = stack.chat("tls")

    assert response.status_code == 503
    assert response.json()["error"]["type"] == "server_error"
    assert tls_mock.requests("tls-backup") == []
