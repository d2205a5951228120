"""The sample workflow against the docker-compose fleet: the image built from the Dockerfile, certificates made
by a one-shot `switchyard certs`, a control plane and two gateway nodes talking mTLS over the compose network,
and a mock provider. The seed workflow runs through both nodes; the control plane sees both nodes' attempts.

Skips (in well under a second) where no Docker engine answers, e.g. on a machine with only the docker CLI.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from testcontainers.compose import DockerCompose

from switchyard.supervisor.processes import free_port

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = "docker-compose.yml"
MOCK_SERVICE = "mock-openai"
MOCK_ADMIN_URL = "http://127.0.0.1:18081/_mock/requests"  # inside the mock's container
# The first run builds the image (pip installs Envoy's wheel): far beyond the suite's default timeout.
STACK_TIMEOUT_S = 900
READY_TIMEOUT_S = 60.0
HELLO = [{"role": "user", "content": "hello"}]


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
    node_urls: tuple[str, str]
    api_url: str
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
    # of our `down`); free host ports avoid clashing with ones in use. Both reach compose through the
    # environment, as does the provider key, which lets the test see it delivered to the provider.
    openai_key = f"sk-compose-test-{uuid.uuid4().hex[:12]}"
    node1, node2, api = free_port(), free_port(), free_port()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("COMPOSE_PROJECT_NAME", f"switchyard-test-{os.getpid()}")
        env.setenv("SWITCHYARD_NODE1_PORT", str(node1))
        env.setenv("SWITCHYARD_NODE2_PORT", str(node2))
        env.setenv("SWITCHYARD_API_PORT", str(api))
        env.setenv("OPENAI_API_KEY", openai_key)
        compose = DockerCompose(ROOT, compose_file_name=COMPOSE_FILE, build=True, wait=True)
        running = Stack(
            compose, (f"http://127.0.0.1:{node1}", f"http://127.0.0.1:{node2}"), f"http://127.0.0.1:{api}", openai_key
        )
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


def _wait_for_gateway(stack: Stack, url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    last: str = "no attempt"
    with httpx.Client(base_url=url, timeout=5.0) as client:
        while time.monotonic() < deadline:
            try:
                response = client.get("/v1/models")
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.2)
    pytest.fail(f"gateway at {url} not ready after {READY_TIMEOUT_S:.0f}s ({last})\n{stack.logs()}")


def _status(stack: Stack) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{stack.api_url}/status", timeout=5.0).json()
    return document


def _wait_for_status(stack: Stack, settled: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    deadline = time.monotonic() + READY_TIMEOUT_S
    document: dict[str, Any] = {}
    while time.monotonic() < deadline:
        document = _status(stack)
        if settled(document):
            return document
        time.sleep(0.2)
    pytest.fail(f"the control plane never showed {what}:\n{json.dumps(document, indent=1)[:3000]}\n{stack.logs()}")


@pytest.mark.timeout(STACK_TIMEOUT_S)
def test_failing_primary_is_served_by_backup_through_both_nodes(stack: Stack) -> None:
    for url in stack.node_urls:
        _wait_for_gateway(stack, url)

    for url in stack.node_urls:
        response = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "chatgpt-4", "messages": HELLO},
            timeout=30.0,
        )
        assert response.status_code == 200, f"{url}: {response.text}\n{stack.logs()}"
        assert response.headers["x-switchyard-target"] == "backup", url
        assert response.headers["x-switchyard-attempts"] == "2", url

    hello = [r for r in stack.mock_requests() if isinstance(r["body"], dict) and r["body"].get("messages") == HELLO]
    primary = [r for r in hello if r["body"].get("model") == "chatgpt-4"]
    backup = [r for r in hello if r["body"].get("model") == "gpt-3.5"]
    received = hello
    assert [r["path"] for r in primary] == ["/v1/engines/gpt-4/chat/completions"] * 2, received
    assert [r["path"] for r in backup] == ["/v1/engines/gpt-3.5/chat/completions"] * 2, received
    assert {r["action"] for r in primary} == {"status:502"}
    assert {r["action"] for r in backup} == {"ok"}
    assert {r["headers"]["authorization"] for r in backup} == {f"Bearer {stack.openai_key}"}


@pytest.mark.timeout(STACK_TIMEOUT_S)
def test_the_control_plane_lists_both_nodes_and_sees_the_attempts_of_each(stack: Stack) -> None:
    for url in stack.node_urls:
        _wait_for_gateway(stack, url)
    for url in stack.node_urls:
        httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "chatgpt-4", "messages": [{"role": "user", "content": "again"}]},
            timeout=30.0,
        ).raise_for_status()

    def both_current_with_attempts(document: dict[str, Any]) -> bool:
        nodes = {n["name"]: n for n in document["nodes"]}
        return set(nodes) == {"node1", "node2"} and all(
            n["state"] == "current" and (n["attempts"] or 0) >= 2 for n in nodes.values()
        )

    document = _wait_for_status(stack, both_current_with_attempts, "both nodes current, each with its attempts")
    versions = {n["version"] for n in document["nodes"]}
    assert len(versions) == 1, f"the nodes applied different config versions: {versions}"
    (route,) = document["routes"]
    failures = {t["name"]: t["failures"] for t in route["targets"]}
    assert failures["backup"] == 0
    assert failures["primary"] >= 2, "each node's failed primary attempt reaches the one control plane"
