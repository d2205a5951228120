"""What an operator reads: a clean start and a reload print no warning, and each event is logged once.

Warnings that are not about a problem teach people to ignore warnings. These tests read the logs of every
process of a real `switchyard up` (Envoy's included) as an operator would see them.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from switchyard.supervisor.processes import free_port
from tests.support.harness import PROCESS_LOGS, MockProvider, Stack, running_stack, wait_for

pytestmark = pytest.mark.e2e

# Envoy writes `[warning]`/`[error]`/`[critical]`; Switchyard's processes ` WARNING `/` ERROR `.
_ALARMING = re.compile(r"\]\[(warning|error|critical)\]\[| (WARNING|ERROR|CRITICAL) ")


def _config(port: int, mock: MockProvider, backup: str) -> str:
    return f"""
listen: 127.0.0.1:{port}
providers:
  openai: {{kind: openai, base_url: "{mock.url}", api_key: sk-quiet-test}}
routes:
  - model: quiet
    targets:
      - {{name: primary, provider: openai, model: quiet-primary}}
      - {{name: backup, provider: openai, model: {backup}}}
"""


def _all_logs(stack: Stack) -> str:
    return "".join(stack.log(name) for name in PROCESS_LOGS)


def _alarming_lines(stack: Stack) -> list[str]:
    return [line for line in _all_logs(stack).splitlines() if _ALARMING.search(line)]


def holds_for(predicate: Callable[[], bool], seconds: float) -> bool:
    """Whether `predicate` stays true for `seconds` (checked every 0.1 s): for what must *not* happen."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not predicate():
            return False
        time.sleep(0.1)
    return predicate()


@pytest.fixture
def mock(tmp_path: Path) -> Iterator[MockProvider]:
    provider = MockProvider("quiet", tmp_path)
    yield provider
    provider.stop()


@pytest.fixture
def stack(tmp_path: Path, mock: MockProvider) -> Iterator[Stack]:
    port = free_port()
    with running_stack(_config(port, mock, "quiet-backup"), tmp_path) as running:
        running.port = port  # type: ignore[attr-defined]
        yield running


def test_a_clean_start_and_a_reload_print_no_warning(stack: Stack, mock: MockProvider) -> None:
    assert stack.chat("quiet").status_code == 200
    first = stack.status()["config"]["version"]
    stack.write_config(_config(stack.port, mock, "quiet-backup-2"))  # type: ignore[attr-defined]
    wait_for(lambda: stack.status()["config"]["version"] != first, 15, "the reload to be applied")
    second = stack.status()["config"]["version"]
    wait_for(lambda: f"applied version {second}" in stack.log("controlplane"), 15, "Envoy to apply the reload")
    assert stack.chat("quiet").status_code == 200

    assert _alarming_lines(stack) == []
    log = stack.log("controlplane")
    # Each event once: the file watch and its backstop poll both see the edit; Envoy acknowledges per type.
    assert log.count(f"Envoy switchyard-envoy applied version {first}") == 1, log
    assert log.count(f"Envoy switchyard-envoy applied version {second}") == 1, log
    assert log.count(f"applying version {second}") == 1, log


def test_a_rejected_reload_is_logged_once_and_status_says_why(stack: Stack, mock: MockProvider) -> None:
    good = stack.config_path.read_text()
    stack.write_config(good.replace("kind: openai", "kind: openia"))
    wait_for(lambda: (stack.status()["config"]["last_reload"] or {}).get("ok") is False, 15, "the rejected reload")
    # The poll behind the file watch runs every second: watch long enough for it to have seen the same edit.
    assert holds_for(lambda: stack.log("controlplane").count("config reload (file changed) rejected") == 1, 2.5)
    result = subprocess.run(
        [sys.executable, "-m", "switchyard", "status", "--api", stack.api], capture_output=True, text=True, timeout=30
    )

    assert result.returncode == 0, result.stderr
    assert "REJECTED, previous version kept" in result.stdout
    # The reason, with the file and line, as `switchyard validate` would print it.
    assert f"{stack.config_path}:4: providers.openai.kind:" in result.stdout
