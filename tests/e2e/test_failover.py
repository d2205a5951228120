"""The core promise, end to end through real Envoy, control plane and ext_proc: a failing target is
replaced by its backup inside the same client request, and the backup receives a request made for it."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchyard.supervisor.processes import free_port
from tests.support.harness import PROCESS_LOGS, MockProvider, Stack, running_stack, sse_events, wait_for

pytestmark = pytest.mark.e2e

OPENAI_KEY = "sk-e2e-openai-4f1c9a"
AZURE_KEY = "e2e-azure-key-77d2b0"
CLIENT_KEY = "client-own-gateway-key"

FALLBACK_CASES = ("500", "503", "429", "reset", "timeout", "refused")


def _two_targets(model: str, primary_provider: str = "openai", timeout: str = "2s") -> str:
    return f"""
  - model: {model}
    fallback_codes: [429, 500, 502, 503, 504]
    timeout: {timeout}
    targets:
      - {{name: primary, provider: {primary_provider}, model: {model}-primary}}
      - {{name: backup, provider: openai, model: {model}-backup}}"""


def _config(listen_port: int, mock: MockProvider, dead_port: int) -> str:
    routes = "".join(
        _two_targets(
            f"fb-{case}",
            primary_provider="dead" if case == "refused" else "openai",
            timeout="500ms" if case == "timeout" else "2s",
        )
        for case in FALLBACK_CASES
    )
    routes += _two_targets("no-retry-400") + _two_targets("healthy") + _two_targets("all-fail")
    routes += _two_targets("all-hang", timeout="400ms") + _two_targets("stream") + _two_targets("eject")
    routes += _two_targets("load")
    routes += _two_targets("keep") + "\n    health: {consecutive_failures: 0, failure_rate: null}"  # never ejected
    return f"""
listen: 127.0.0.1:{listen_port}
max_request_body: 4MiB
providers:
  openai: {{kind: openai, base_url: "{mock.url}", api_key: "${{E2E_OPENAI_KEY}}"}}
  azure: {{kind: azure_openai, base_url: "{mock.url}", api_key: "${{E2E_AZURE_KEY}}", api_version: 2024-10-21}}
  dead: {{kind: openai_compatible, base_url: "http://127.0.0.1:{dead_port}"}}
routes:
  - model: chatgpt-4
    primary: {{provider: openai, name: chatgpt-4, suffix: /v1/engines/gpt-4/chat/completions}}
    fallback_codes: [500, 502, 503]
    backup:  {{provider: openai, name: gpt-3.5, suffix: /v1/engines/gpt-3.5/chat/completions}}
  - model: azure-backup
    targets:
      - {{name: openai-primary, provider: openai, model: azure-backup-primary}}
      - {{name: azure-deployment, provider: azure, model: gpt4o-deploy}}
  - model: chain
    targets:
      - {{name: first, provider: openai, model: chain-first}}
      - {{name: second, provider: openai, model: chain-second}}
      - {{name: third, provider: openai, model: chain-third}}
  - model: same-name
    targets:
      - {{name: primary, provider: openai, model: same-name, suffix: /v1/primary/chat/completions}}
      - {{name: backup, provider: openai, model: same-name}}
  - model: siblings
    strategy: weighted
    targets:
      - {{name: broken, provider: openai, model: siblings-broken, weight: 1}}
      - {{name: working, provider: openai, model: siblings-working, weight: 1}}
  - model: ab
    strategy: weighted
    targets:
      - {{name: big, provider: openai, model: ab-big, weight: 3}}
      - {{name: small, provider: openai, model: ab-small, weight: 1}}
{routes}
"""


def _rule(model: str, **action: Any) -> dict[str, Any]:
    return {"match": {"model": model}, **action}


RULES = [
    _rule("chatgpt-4", status=502),
    _rule("fb-500-primary", status=500),
    _rule("fb-503-primary", status=503),
    _rule("fb-429-primary", status=429),
    _rule("fb-reset-primary", reset=True),
    _rule("fb-timeout-primary", hang=True),
    _rule("no-retry-400-primary", status=400),
    _rule("all-fail-primary", status=503),
    _rule("all-fail-backup", status=503),
    _rule("all-hang-primary", hang=True),
    _rule("all-hang-backup", hang=True),
    _rule("azure-backup-primary", status=502),
    _rule("stream-primary", status=502),
    {"match": {"path": "/v1/primary/"}, "status": 502},
    _rule("chain-first", status=503),
    _rule("chain-second", status=502),
    _rule("siblings-broken", status=500),
    _rule("eject-primary", status=503),
    _rule("load-primary", status=503, rate=0.5),
    _rule("keep-primary", status=503),
]


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockProvider]:
    provider = MockProvider("openai", tmp_path_factory.mktemp("mock"), ("--chunk-delay-ms", "150"))
    provider.set_rules(RULES)
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def stack(mock: MockProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    log_dir = tmp_path_factory.mktemp("stack")
    config = _config(free_port(), mock, dead_port=free_port())
    with running_stack(config, log_dir, env={"E2E_OPENAI_KEY": OPENAI_KEY, "E2E_AZURE_KEY": AZURE_KEY}) as running:
        yield running


def test_sample_workflow_backup_serves_in_the_same_request(stack: Stack, mock: MockProvider) -> None:
    response = stack.chat("chatgpt-4", headers={"authorization": f"Bearer {CLIENT_KEY}"})

    assert response.status_code == 200, response.text
    assert response.json()["model"] == "gpt-3.5"
    assert response.headers["x-switchyard-target"] == "backup"
    assert response.headers["x-switchyard-attempts"] == "2"
    primary, backup = mock.requests("chatgpt-4"), mock.requests("gpt-3.5")
    assert len(primary) == 1 and len(backup) == 1
    assert primary[0]["path"] == "/v1/engines/gpt-4/chat/completions"
    assert backup[0]["path"] == "/v1/engines/gpt-3.5/chat/completions"
    assert backup[0]["headers"]["authorization"] == f"Bearer {OPENAI_KEY}"
    assert backup[0]["headers"]["host"] == f"127.0.0.1:{mock.port}"
    assert backup[0]["body"]["messages"] == [{"role": "user", "content": "hello"}]
    assert int(backup[0]["headers"]["content-length"]) == backup[0]["body_bytes"]


@pytest.mark.parametrize("case", FALLBACK_CASES)
def test_failure_of_primary_falls_back_to_backup(stack: Stack, mock: MockProvider, case: str) -> None:
    started = time.monotonic()
    response = stack.chat(f"fb-{case}")
    elapsed = time.monotonic() - started

    assert response.status_code == 200, response.text
    assert response.headers["x-switchyard-target"] == "backup"
    assert response.json()["model"] == f"fb-{case}-backup"
    assert len(mock.requests(f"fb-{case}-backup")) == 1
    if case != "refused":
        assert len(mock.requests(f"fb-{case}-primary")) == 1, "the primary must be tried exactly once"
    if case == "timeout":
        assert elapsed < 5, f"a 500ms per-try timeout took {elapsed:.1f}s to fall back"


def test_status_outside_fallback_codes_is_returned_without_trying_backup(stack: Stack, mock: MockProvider) -> None:
    response = stack.chat("no-retry-400")

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.headers["x-switchyard-target"] == "primary"
    assert mock.requests("no-retry-400-backup") == []


def test_healthy_primary_never_touches_backup(stack: Stack, mock: MockProvider) -> None:
    for _ in range(20):
        response = stack.chat("healthy")
        assert response.status_code == 200
        assert response.headers["x-switchyard-target"] == "primary"
        assert response.headers["x-switchyard-attempts"] == "1"
    assert len(mock.requests("healthy-primary")) == 20
    assert mock.requests("healthy-backup") == []


def test_all_targets_failing_returns_last_error_once_each(stack: Stack, mock: MockProvider) -> None:
    started = time.monotonic()
    response = stack.chat("all-fail")

    assert time.monotonic() - started < 3
    assert response.status_code == 503
    assert response.headers["x-switchyard-target"] == "backup"
    assert response.json()["error"]["type"] == "server_error"
    assert len(mock.requests("all-fail-primary")) == 1
    assert len(mock.requests("all-fail-backup")) == 1


def test_all_targets_hanging_times_out_promptly_with_openai_error(stack: Stack, mock: MockProvider) -> None:
    started = time.monotonic()
    response = stack.chat("all-hang")
    elapsed = time.monotonic() - started

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert elapsed < 4, f"two 400ms attempts took {elapsed:.1f}s"
    assert len(mock.requests("all-hang-primary")) == 1
    assert len(mock.requests("all-hang-backup")) == 1


def test_azure_backup_gets_deployment_path_api_version_and_api_key(stack: Stack, mock: MockProvider) -> None:
    response = stack.chat("azure-backup", headers={"authorization": f"Bearer {CLIENT_KEY}"})

    assert response.status_code == 200, response.text
    assert response.headers["x-switchyard-target"] == "azure-deployment"
    (azure,) = mock.requests("gpt4o-deploy")
    assert azure["path"] == "/openai/deployments/gpt4o-deploy/chat/completions"
    assert azure["query"] == {"api-version": "2024-10-21"}
    assert azure["headers"]["api-key"] == AZURE_KEY
    # Neither the primary attempt's OpenAI key nor the client's own credentials may reach Azure.
    assert "authorization" not in azure["headers"]


def test_weighted_split_follows_weights(stack: Stack) -> None:
    served = [stack.chat("ab").headers["x-switchyard-target"] for _ in range(1000)]

    share = served.count("big") / len(served)
    assert served.count("big") + served.count("small") == 1000
    assert 0.72 <= share <= 0.78, f"weights 3:1 gave {share:.3f} to big (want 0.75 within 3 points)"


def test_streaming_passes_through_unbuffered_after_fallback(stack: Stack, mock: MockProvider) -> None:
    body = {"model": "stream", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    arrivals: list[float] = []
    events: list[Any] = []
    started = time.monotonic()
    with stack.client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-switchyard-target"] == "backup"
        for event in sse_events(response):
            arrivals.append(time.monotonic() - started)
            events.append(event)

    assert events[-1] == "[DONE]"
    assert all(e["object"] == "chat.completion.chunk" for e in events[:-1])
    assert events[0]["model"] == "stream-backup"
    # The mock waits 150 ms between chunks: a buffered proxy would deliver them all at once.
    assert arrivals[-1] - arrivals[0] > 0.4, f"events arrived together: {arrivals}"


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b'{"model": "chatgpt-4", "messages": [', 400, "not valid JSON"),
        (b'{"messages": []}', 400, "no `model`"),
        (b'{"model": "no-such-model", "messages": []}', 404, "chatgpt-4"),
        # the name asked for is repeated, so a typo shows in the client's own error
        (b'{"model": "no-such-model", "messages": []}', 404, "The model 'no-such-model' is not routed"),
    ],
)
def test_client_errors_are_openai_shaped(stack: Stack, body: bytes, status: int, needle: str) -> None:
    response = stack.client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})

    assert response.status_code == status
    error = response.json()["error"]
    assert needle in error["message"]
    assert error["type"] == "invalid_request_error"


def test_body_over_limit_is_413_and_large_body_fails_over_intact(stack: Stack, mock: MockProvider) -> None:
    too_big = b'{"model": "healthy", "pad": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    response = stack.client.post("/v1/chat/completions", content=too_big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"

    large = {"model": "fb-500", "messages": [{"role": "user", "content": "y" * (2 * 1024 * 1024)}]}
    response = stack.client.post("/v1/chat/completions", json=large)
    assert response.status_code == 200, response.text
    received = mock.requests("fb-500-backup")[-1]
    assert received["body"]["messages"][0]["content"] == "y" * (2 * 1024 * 1024)


def test_models_endpoint_lists_routes(stack: Stack) -> None:
    response = stack.client.get("/v1/models")

    assert response.status_code == 200
    assert {"chatgpt-4", "ab", "azure-backup"} <= {m["id"] for m in response.json()["data"]}


# Keys are in Envoy's configuration by design now (config_dump shows them): no config_dump check here.
def test_api_keys_never_reach_logs(stack: Stack) -> None:
    assert stack.chat("chatgpt-4").status_code == 200  # an attempt that carried a key
    for key in (OPENAI_KEY, AZURE_KEY):
        for name in PROCESS_LOGS:
            assert key not in stack.log(name), f"{name}.log leaks an API key"


def test_admin_xds_and_extproc_are_owner_only_unix_sockets(stack: Stack) -> None:
    assert stat.S_IMODE(stack.work_dir.stat().st_mode) == 0o700
    sockets = {"admin": stack.admin_socket, "xds": stack.xds_socket, "extproc": stack.work_dir / "extproc-1.sock"}
    for name, path in sockets.items():
        info = path.stat()
        assert stat.S_ISSOCK(info.st_mode), f"{name}: {path} is not a socket"
        assert info.st_uid == os.getuid(), f"{name}: {path} is not owned by the running user"
        # Envoy chmods its admin pipe (mode: 384); Switchyard its gRPC sockets (switchyard.addresses.bind_grpc).
        assert stat.S_IMODE(info.st_mode) == 0o600, f"{name}: {path} has mode {oct(info.st_mode)}"

    dump = json.loads(stack.admin_get("/config_dump"))
    (bootstrap,) = [c["bootstrap"] for c in dump["configs"] if c["@type"].endswith("BootstrapConfigDump")]
    assert bootstrap["admin"]["address"] == {"pipe": {"path": str(stack.admin_socket), "mode": 384}}
    assert "socket_address" not in json.dumps(bootstrap), "no TCP address in Envoy's bootstrap (admin, xDS, ext_proc)"


def test_three_target_chain_tries_each_target_once_in_priority_order(stack: Stack, mock: MockProvider) -> None:
    response = stack.chat("chain")

    assert response.status_code == 200
    assert response.headers["x-switchyard-target"] == "third"
    assert response.headers["x-switchyard-attempts"] == "3"
    assert [len(mock.requests(f"chain-{n}")) for n in ("first", "second", "third")] == [1, 1, 1]


def test_failing_target_falls_back_to_its_same_priority_sibling(stack: Stack, mock: MockProvider) -> None:
    for _ in range(10):
        response = stack.chat("siblings")
        assert response.status_code == 200, response.text
        assert response.headers["x-switchyard-target"] == "working"
        assert int(response.headers["x-switchyard-attempts"]) <= 2


def test_consistently_failing_target_is_ejected_and_skipped(stack: Stack, mock: MockProvider) -> None:
    def attempts() -> int:
        response = stack.chat("eject")
        assert response.status_code == 200
        return int(response.headers["x-switchyard-attempts"])

    assert [attempts() for _ in range(3)] == [2, 2, 2], "the first failures are each retried on the backup"
    # Envoy ejects on its main thread and tells the workers asynchronously: allow a request or two for that.
    wait_for(lambda: attempts() == 1, 5, "the failing primary to be ejected")
    assert [attempts() for _ in range(5)] == [1] * 5, "an ejected primary is skipped without an attempt"
    assert len(mock.requests("eject-primary")) <= 5


def test_failover_under_concurrency_never_overflows_retries(stack: Stack, mock: MockProvider) -> None:
    # Envoy's default retry circuit breaker allows 3 concurrent retries per cluster: most failovers would
    # then return the primary's 503 instead of the backup's answer.
    def call(_: int) -> int:
        return stack.client.post(
            "/v1/chat/completions", json={"model": "load", "messages": [{"role": "user", "content": "x"}]}
        ).status_code

    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(call, range(400)))

    assert statuses.count(200) == 400, f"non-200: {[s for s in statuses if s != 200][:10]}"


def test_a_failover_keeps_the_failing_targets_connection(stack: Stack, mock: MockProvider) -> None:
    """Envoy resets an attempt it retries unless its answer has ended, and on HTTP/1 a reset closes the
    connection: each failover would cost the failing target's next request a new connection (and, to a real
    provider, a TLS handshake). The mock's 503 carries a body; the per-attempt Lua reads it whole first."""
    for _ in range(8):
        response = stack.chat("keep")
        assert response.status_code == 200, response.text
        assert response.headers["x-switchyard-target"] == "backup"
        assert response.headers["x-switchyard-attempts"] == "2"
    attempts = mock.requests("keep-primary")
    assert len(attempts) == 8, "health is off for this route: the primary is tried every time"
    connections = {a["connection"] for a in attempts}
    assert len(connections) <= 2, f"{len(connections)} connections for 8 attempts (one pool per Envoy worker)"


def test_sigterm_stops_every_process(tmp_path: Path, mock: MockProvider) -> None:
    port = free_port()
    config = f"""
listen: 127.0.0.1:{port}
providers:
  openai: {{kind: openai_compatible, base_url: "{mock.url}"}}
routes:
  - model: m
    targets: [{{provider: openai, model: m}}]
"""
    stack = Stack(config, tmp_path)
    assert stack.chat("m").status_code == 200
    assert stack.stop() == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2)


def test_route_keeping_the_client_model_rewrites_headers_only(stack: Stack, mock: MockProvider) -> None:
    # No target renames the model, so Envoy sends the ext_proc headers only (one message per attempt).
    response = stack.chat("same-name", headers={"authorization": f"Bearer {CLIENT_KEY}"}, user="u1")

    assert response.status_code == 200, response.text
    assert response.headers["x-switchyard-target"] == "backup"
    primary, backup = mock.requests("same-name")[-2:]
    assert primary["path"] == "/v1/primary/chat/completions"
    assert backup["path"] == "/v1/chat/completions"
    assert backup["headers"]["authorization"] == f"Bearer {OPENAI_KEY}"
    assert backup["body"] == {"model": "same-name", "messages": [{"role": "user", "content": "hello"}], "user": "u1"}
    assert int(backup["headers"]["content-length"]) == backup["body_bytes"]
