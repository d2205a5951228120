"""The sample workflow against the docker-compose stack: the images built from the Dockerfile, Envoy,
control plane, ext_proc and mock provider each in its own container, talking over the compose network.

Skips (in well under a second) where no Docker engine answers, e.g. on a machine with only the docker CLI.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from testcontainers.compose import DockerCompose

from switchyard.processes import free_port

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = "docker-compose.yml"
MOCK_SERVICE = "mock-openai"
MOCK_ADMIN_URL = "http://127.0.0.1:18081/_mock/requests"  # inside the mock's container
# The first run builds the image (pip installs Envoy's wheel): far beyond the suite's default timeout.
STACK_TIMEOUT_S = 900
READY_TIMEOUT_S = 60.0


def _docker_unavailable() -> str | None:
    """Why this machine cannot run the stack, or None when it can. Fails fast: no engine, no wait."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"no Docker engine answers: {exc}"
    try:
        subprocess.run(["docker", "compose", "version"], check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"docker compose (v2 CLI plugin) is not usable: {exc}"
    return None


@pytest.fixture(scope="module", autouse=True)
def docker_engine() -> None:
    reason = _docker_unavailable()
    if reason is not None:
        pytest.skip(reason)


@dataclass(frozen=True)
class Stack:
    compose: DockerCompose
    url: str
    openai_key: str

    def logs(self) -> str:
        try:
            out, err = self.compose.get_logs()
        except subprocess.CalledProcessError as exc:
            return f"(no logs: {exc})"
        return "\n".join((out + err).splitlines()[-200:])

    def mock_requests(self) -> list[dict[str, Any]]:
        """What the mock provider received, read from its admin API inside its container."""
        script = f"import sys, urllib.request as u; sys.stdout.write(u.urlopen({MOCK_ADMIN_URL!r}).read().decode())"
        out, err, code = self.compose.exec_in_container(["python", "-c", script], service_name=MOCK_SERVICE)
        assert code == 0, err
        requests: list[dict[str, Any]] = json.loads(out)["requests"]
        return requests


@pytest.fixture(scope="module")
def stack(docker_engine: None) -> Iterator[Stack]:
    # A project name of its own keeps a developer's running `docker compose up` out of the way (and out
    # of our `down`); a free host port avoids clashing with one on 8080. Both reach compose through the
    # environment, as does the provider key, which lets the test see it delivered to the provider.
    openai_key = f"sk-compose-test-{uuid.uuid4().hex[:12]}"
    port = free_port()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("COMPOSE_PROJECT_NAME", f"switchyard-test-{os.getpid()}")
        env.setenv("SWITCHYARD_PORT", str(port))
        env.setenv("OPENAI_API_KEY", openai_key)
        compose = DockerCompose(ROOT, compose_file_name=COMPOSE_FILE, build=True, wait=True)
        running = Stack(compose, f"http://127.0.0.1:{port}", openai_key)
        try:
            compose.start()  # `up --build --wait`: returns once every healthcheck passes
        except subprocess.CalledProcessError as exc:
            logs = running.logs()
            with contextlib.suppress(subprocess.CalledProcessError):
                compose.stop()
            stderr = exc.stderr.decode(errors="replace") if exc.stderr else ""
            pytest.fail(f"docker compose up failed:\n{stderr}\n--- logs ---\n{logs}")
        try:
            yield running
        finally:
            compose.stop()


def _wait_for_gateway(stack: Stack) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last: str = "no attempt"
    with httpx.Client(base_url=stack.url, timeout=5.0) as client:
        while time.monotonic() < deadline:
            try:
                response = client.get("/v1/models")
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
    pytest.fail(f"gateway at {stack.url} not ready after {READY_TIMEOUT_S:.0f}s ({last})\n{stack.logs()}")


@pytest.mark.timeout(STACK_TIMEOUT_S)
def test_failing_primary_is_served_by_backup(stack: Stack) -> None:
    _wait_for_gateway(stack)

    response = httpx.post(
        f"{stack.url}/v1/chat/completions",
        json={"model": "chatgpt-4", "messages": [{"role": "user", "content": "hello"}]},
        timeout=30.0,
    )

    assert response.status_code == 200, f"{response.text}\n{stack.logs()}"
    assert response.headers["x-switchyard-target"] == "backup"
    assert response.headers["x-switchyard-attempts"] == "2"

    received = stack.mock_requests()
    primary = [r for r in received if isinstance(r["body"], dict) and r["body"].get("model") == "chatgpt-4"]
    backup = [r for r in received if isinstance(r["body"], dict) and r["body"].get("model") == "gpt-3.5"]
    assert [r["path"] for r in primary] == ["/v1/engines/gpt-4/completions"], received
    assert [r["path"] for r in backup] == ["/v1/engines/gpt-3.5/completions"], received
    assert primary[0]["action"] == "status:502"
    assert backup[0]["action"] == "ok"
    assert backup[0]["headers"]["authorization"] == f"Bearer {stack.openai_key}"
    assert backup[0]["body"]["messages"] == [{"role": "user", "content": "hello"}]
