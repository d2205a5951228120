"""The sample workflow against the docker-compose fleet: the image built from the Dockerfile, certificates made
by a one-shot `switchyard certs`, a control plane and two gateway nodes talking mTLS over the compose network,
and a mock provider. The seed workflow runs through both nodes; the control plane sees both nodes' attempts;
an edit of the routing YAML reaches both nodes.

Compose v2 (`docker compose`) where the CLI plugin exists, else v1 (`docker-compose`, Debian's 1.29): the file
is the same for both. The image comes from the tier's session fixture (tests/containers/conftest.py), so
compose builds nothing. Skips with the reason where no engine answers or no compose is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchyard.supervisor.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ROUTING_YAML = ROOT / "examples" / "compose.yaml"
CONFIG_IN_CONTAINER = "/etc/switchyard/switchyard.yaml"
MOCK_SERVICE = "mock-openai"
MOCK_ADMIN_URL = "http://127.0.0.1:18081/_mock/requests"  # inside the mock's container
NODES = ("node1", "node2")
READY_TIMEOUT_S = 120.0
HELLO = [{"role": "user", "content": "hello"}]


def compose_command() -> list[str]:
    """`docker compose` (v2) if the plugin answers, else `docker-compose` (v1); skips when there is neither."""
    candidates = [["docker", "compose"], ["docker-compose"]]
    problems = []
    for command in candidates:
        if shutil.which(command[0]) is None:
            problems.append(f"no {command[0]}")
            continue
        probe = subprocess.run([*command, "version"], capture_output=True, text=True, timeout=30)
        if probe.returncode == 0:
            return command
        first_line = (probe.stderr.strip().splitlines() or ["no output"])[0]
        problems.append(f"{' '.join(command)}: {first_line[:100]}")
    pytest.skip(f"no docker compose (v2 plugin) nor docker-compose (v1): {'; '.join(problems)}")


@dataclass(frozen=True)
class Stack:
    command: list[str]
    env: dict[str, str]
    routing_yaml: Path
    node_urls: tuple[str, str]
    api_url: str
    openai_key: str

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, *args], env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )

    def logs(self) -> str:
        result = self.compose("logs", "--no-color", "--tail=80")
        return (result.stdout + result.stderr)[-12000:]

    def container_of(self, service: str) -> str:
        return self.compose("ps", "-q", service).stdout.strip()

    def health(self, service: str) -> str:
        """The container's healthcheck status, or its state when it is not running."""
        container = self.container_of(service)
        if not container:
            return "absent"
        inspect = subprocess.run(["docker", "inspect", container], capture_output=True, text=True, timeout=30)
        (state,) = [c["State"] for c in json.loads(inspect.stdout)]
        return str(state["Health"]["Status"]) if state["Running"] and state.get("Health") else str(state["Status"])

    def mock_requests(self) -> list[dict[str, Any]]:
        """What the mock provider received, read from its admin API inside its container."""
        script = f"import sys, urllib.request as u; sys.stdout.write(u.urlopen({MOCK_ADMIN_URL!r}).read().decode())"
        result = self.compose("exec", "-T", MOCK_SERVICE, "python", "-c", script)
        assert result.returncode == 0, result.stderr
        requests: list[dict[str, Any]] = json.loads(result.stdout)["requests"]
        return requests


@pytest.fixture(scope="module")
def stack(switchyard_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    command = compose_command()
    # A project name of its own keeps a developer's running fleet out of the way (and out of our `down`);
    # free host ports avoid clashing with ones in use. Both reach compose through the environment, as does
    # the provider key, which lets the test see it delivered to the provider. The routing YAML is a copy,
    # mounted over the example's by an override file, so the reload test can edit it.
    directory = tmp_path_factory.mktemp("compose")
    routing_yaml = directory / "compose.yaml"
    routing_yaml.write_text(ROUTING_YAML.read_text())
    routing_yaml.chmod(0o644)
    override = directory / "override.yml"
    override.write_text(
        json.dumps({"services": {"controlplane": {"volumes": [f"{routing_yaml}:{CONFIG_IN_CONTAINER}:ro"]}}})
    )
    openai_key = f"sk-compose-test-{uuid.uuid4().hex[:12]}"
    node1, node2, api = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "COMPOSE_PROJECT_NAME": f"switchyard-test-{os.getpid()}",
        "COMPOSE_FILE": f"{COMPOSE_FILE}{os.pathsep}{override}",
        "SWITCHYARD_NODE1_PORT": str(node1),
        "SWITCHYARD_NODE2_PORT": str(node2),
        "SWITCHYARD_API_PORT": str(api),
        "OPENAI_API_KEY": openai_key,
    }
    running = Stack(
        command,
        env,
        routing_yaml,
        (f"http://127.0.0.1:{node1}", f"http://127.0.0.1:{node2}"),
        f"http://127.0.0.1:{api}",
        openai_key,
    )
    try:
        up = running.compose("up", "-d", "--no-build")
        assert up.returncode == 0, f"{' '.join(command)} up failed:\n{up.stderr[-4000:]}\n{running.logs()}"
        _wait_until_healthy(running)
        yield running
    finally:
        running.compose("down", "-v", "--timeout", "45")


def _wait_until_healthy(stack: Stack) -> None:
    """Until both nodes' healthchecks (GET /healthz) pass; at once when a service exits or turns unhealthy."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = {service: stack.health(service) for service in ("controlplane", MOCK_SERVICE, *NODES)}
        if all(states[node] == "healthy" for node in NODES):
            return
        if any(state in ("exited", "dead", "unhealthy") for state in states.values()):
            break
        time.sleep(1)
    pytest.fail(f"the fleet did not come up: {states}\n{stack.logs()}")


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
    (route,) = [r for r in document["routes"] if r["model"] == "chatgpt-4"]
    failures = {t["name"]: t["failures"] for t in route["targets"]}
    assert failures["backup"] == 0
    assert failures["primary"] >= 2, "each node's failed primary attempt reaches the one control plane"


NEW_ROUTE = """
  # Added by the reload test.
  - model: gpt-fast
    targets:
      - {name: fast, provider: openai, model: gpt-3.5}
"""


def test_an_edit_of_the_routing_yaml_reaches_both_nodes(stack: Stack) -> None:
    for url in stack.node_urls:
        _wait_for_gateway(stack, url)
    body = {"model": "gpt-fast", "messages": HELLO}
    before = [httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30.0) for url in stack.node_urls]
    assert [r.status_code for r in before] != [200, 200], "the route exists before the edit: the test proves nothing"

    with stack.routing_yaml.open("a") as config:  # in place: the bind mount keeps showing this file
        config.write(NEW_ROUTE)

    deadline = time.monotonic() + READY_TIMEOUT_S
    answers: list[httpx.Response] = []
    while time.monotonic() < deadline:
        answers = [httpx.post(f"{url}/v1/chat/completions", json=body, timeout=30.0) for url in stack.node_urls]
        if all(a.status_code == 200 for a in answers):
            break
        time.sleep(0.5)
    assert [a.status_code for a in answers] == [200, 200], f"{[a.text[:200] for a in answers]}\n{stack.logs()}"
    assert [a.headers["x-switchyard-target"] for a in answers] == ["fast", "fast"]
    document = _status(stack)
    assert {r["model"] for r in document["routes"]} == {"chatgpt-4", "gpt-fast"}
