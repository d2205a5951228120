"""The ops view: what `switchyard status`, GET /status and GET /metrics say after real traffic."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from switchyard.supervisor.processes import free_port
from tests.support.harness import MockProvider, Stack, running_stack, wait_for

pytestmark = pytest.mark.e2e


def _config(port: int, mock: MockProvider) -> str:
    return f"""
listen: 127.0.0.1:{port}
providers:
  p: {{kind: openai, base_url: "{mock.url}", api_key: sk-status}}
  dead: {{kind: openai_compatible, base_url: "http://127.0.0.1:{free_port()}"}}
routes:
  - model: refusing
    targets:
      - {{name: gone, provider: dead, model: refusing-gone}}
      - {{name: backup, provider: p, model: refusing-backup}}
  - model: watched
    health: {{ejection_time: 5m}}
    targets:
      - {{name: primary, provider: p, model: watched-primary}}
      - {{name: backup, provider: p, model: watched-backup}}
  - model: client-errors
    targets:
      - {{name: only, provider: p, model: client-errors-only}}
"""


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockProvider]:
    provider = MockProvider("status", tmp_path_factory.mktemp("mock"))
    provider.set_rules(
        [
            {"match": {"model": "watched-primary"}, "status": 502},
            {"match": {"model": "client-errors-only"}, "status": 400},
        ]
    )
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def stack(mock: MockProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(_config(free_port(), mock), Path(tmp_path_factory.mktemp("stack"))) as running:
        for _ in range(6):
            assert running.chat("watched").status_code == 200
        for _ in range(4):
            assert running.chat("client-errors").status_code == 400
        for _ in range(2):
            assert running.chat("refusing").status_code == 200
        wait_for(lambda: running.target_status("watched", "backup")["requests"] == 6, 10, "the attempt log")
        wait_for(lambda: running.target_status("client-errors", "only")["requests"] == 4, 10, "the attempt log")
        yield running


def test_failing_target_is_reported_with_why_and_its_backup_with_the_fallbacks(stack: Stack) -> None:
    primary = stack.target_status("watched", "primary")
    backup = stack.target_status("watched", "backup")

    # Three failures in a row eject the primary; the requests after that go straight to the backup.
    assert 3 <= primary["failures"] <= 5
    assert primary["by_status"] == {"502": primary["failures"]}
    assert primary["state"] == "ejected"
    assert primary["why"].startswith("3 failures in a row (last: 502); back in ")
    assert backup["state"] == "healthy"
    assert backup["by_status"] == {"200": 6}
    assert backup["fallbacks"] == primary["failures"], "each primary failure was answered by the backup"
    assert backup["latency_ms"] is not None and backup["latency_ms"] > 0
    (route,) = [r for r in stack.status()["routes"] if r["model"] == "watched"]
    assert route["fallbacks"] == primary["failures"]
    assert [(t["name"], t["priority"], t["weight"]) for t in route["targets"]] == [("primary", 0, 1), ("backup", 1, 1)]


def test_status_says_when_the_control_plane_started_and_that_it_was_not_a_restart(stack: Stack) -> None:
    process = stack.status()["control_plane"]
    assert process["restarted"] is False
    assert 0 <= process["uptime_s"] < 600


def test_a_target_that_refuses_connections_is_counted_as_failing(stack: Stack) -> None:
    # A refused connection has no status, like an attempt the gateway itself could not make (a dead ext_proc),
    # which must not count against a target; the refusal must.
    gone = wait_for(lambda: (t := stack.target_status("refusing", "gone"))["failures"] >= 1 and t, 10, "the log")
    assert gone["state"] in ("failing", "ejected")
    assert gone["by_status"] == {"0": gone["failures"]}


def test_status_outside_the_fallback_codes_does_not_count_against_a_target(stack: Stack) -> None:
    target = stack.target_status("client-errors", "only")

    assert target["by_status"] == {"400": 4}
    assert target["failures"] == 0
    assert target["state"] == "healthy"


def test_metrics_expose_the_same_counts(stack: Stack) -> None:
    text = httpx.get(f"http://{stack.api}/metrics", timeout=10).text
    primary = stack.target_status("watched", "primary")

    assert (
        f'switchyard_target_requests_total{{code="502",route="watched",target="primary"}} {primary["failures"]}.0'
        in text
    )
    assert 'switchyard_target_requests_total{code="200",route="watched",target="backup"} 6.0' in text
    assert 'switchyard_target_healthy{route="watched",state="ejected",target="primary"} 0.0' in text
    assert f'switchyard_config_version_info{{version="{stack.status()["config"]["version"]}"}} 1.0' in text


def test_status_command_prints_a_table(stack: Stack) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "switchyard", "status", "--api", stack.api], capture_output=True, text=True, timeout=30
    )

    assert result.returncode == 0, result.stderr
    assert "watched  [priority]" in result.stdout
    primary_line = next(line for line in result.stdout.splitlines() if line.strip().startswith("primary"))
    assert "ejected" in primary_line and "failures in a row" in primary_line


def test_rejected_reload_shows_in_status_and_metrics(stack: Stack) -> None:
    version = stack.status()["config"]["version"]
    stack.write_config(stack.config_path.read_text().replace("kind: openai", "kind: nope"))
    wait_for(lambda: (stack.status()["config"]["last_reload"] or {}).get("ok") is False, 15, "the rejected reload")

    document = stack.status()
    assert document["config"]["version"] == version
    assert "kind" in document["config"]["last_reload"]["error"]
    assert "switchyard_config_last_reload_success 0.0" in httpx.get(f"http://{stack.api}/metrics", timeout=10).text


def test_status_command_explains_an_unreachable_api() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "switchyard", "status", "--api", f"127.0.0.1:{free_port()}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "No Switchyard control plane at 127.0.0.1:" in result.stderr
    assert "nothing answers there" in result.stderr
    assert "switchyard up CONFIG" in result.stderr  # what to do about it
    assert "urlopen" not in result.stderr and "Errno" not in result.stderr
