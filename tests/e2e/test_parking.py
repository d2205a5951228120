"""A 429 parks its target, for every request, until its Retry-After ends; then it serves again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from switchyard.supervisor.processes import free_port
from tests.support.harness import MockProvider, Stack, running_stack, wait_for

pytestmark = pytest.mark.e2e


def _config(port: int, mock: MockProvider) -> str:
    return f"""
listen: 127.0.0.1:{port}
providers:
  p: {{kind: openai, base_url: "{mock.url}", api_key: sk-parking}}
routes:
  - model: limited
    health: {{consecutive_failures: 0}}
    targets:
      - {{name: primary, provider: p, model: limited-primary}}
      - {{name: backup, provider: p, model: limited-backup}}
  - model: no-header
    health: {{consecutive_failures: 0, rate_limited_for: 2s}}
    targets:
      - {{name: primary, provider: p, model: no-header-primary}}
      - {{name: backup, provider: p, model: no-header-backup}}
"""


@pytest.fixture
def mock(tmp_path: Path) -> Iterator[MockProvider]:
    provider = MockProvider("parking", tmp_path)
    provider.set_rules(
        [
            {"match": {"model": "limited-primary"}, "status": 429, "retry_after": "5", "times": 1},
            {"match": {"model": "no-header-primary"}, "status": 429, "retry_after": "", "times": 1},
        ]
    )
    yield provider
    provider.stop()


@pytest.fixture
def stack(mock: MockProvider, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(_config(free_port(), mock), tmp_path) as running:
        yield running


def _unhealthy_in_envoy(stack: Stack, route: str) -> bool:
    clusters = stack.admin_get("/clusters")
    return any(line.startswith(f"route/{route}::") and "failed_eds_health" in line for line in clusters.splitlines())


def test_429_parks_the_target_for_its_retry_after_then_it_serves_again(stack: Stack, mock: MockProvider) -> None:
    first = stack.chat("limited")
    assert first.status_code == 200
    assert (first.headers["x-switchyard-target"], first.headers["x-switchyard-attempts"]) == ("backup", "2")

    wait_for(lambda: _unhealthy_in_envoy(stack, "limited"), 10, "Envoy to mark the 429ing target unhealthy")
    assert stack.target_status("limited", "primary")["state"] == "rate_limited"
    for _ in range(5):
        response = stack.chat("limited")
        assert (response.headers["x-switchyard-target"], response.headers["x-switchyard-attempts"]) == ("backup", "1")
    assert len(mock.requests("limited-primary")) == 1, "a parked target gets no attempt"

    # Retry-After: 5 — then the primary (no longer rate limited) takes its traffic back on its own.
    wait_for(lambda: stack.chat("limited").headers["x-switchyard-target"] == "primary", 15, "the park to end")
    assert not _unhealthy_in_envoy(stack, "limited")


def test_429_without_retry_after_parks_for_the_configured_time(stack: Stack) -> None:
    assert stack.chat("no-header").headers["x-switchyard-target"] == "backup"

    wait_for(lambda: _unhealthy_in_envoy(stack, "no-header"), 10, "Envoy to mark the 429ing target unhealthy")
    primary = stack.target_status("no-header", "primary")
    assert primary["state"] == "rate_limited"
    assert primary["why"].startswith("answered 429 (no Retry-After); back in ")
    wait_for(lambda: not _unhealthy_in_envoy(stack, "no-header"), 10, "the 2s default park to end")
