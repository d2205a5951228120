"""switchyard.testing without Docker, as an application's test suite uses it: the pytest plugin's fixtures start
`switchyard up` and mock providers as local processes, scripted failures reach the application's SDK as the
gateway's fallback, a failing test's report carries the gateway's logs, and everything stops afterwards."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import anthropic
import httpx
import pytest

from switchyard.testing import LocalSwitchyard, SwitchyardStartError
from switchyard.testing.pytest_plugin import GatewayFactory, MockProviderFactory

pytestmark = pytest.mark.e2e

CROSS_PROVIDER = """
providers:
  claude: {kind: anthropic, base_url: "CLAUDE_URL", api_key: sk-ant-test}
  openai: {kind: openai, base_url: "OPENAI_URL", api_key: sk-test}
routes:
  - model: assistant
    targets:
      - {name: claude, provider: claude, model: claude-sonnet-4}
      - {name: gpt, provider: openai, model: gpt-4o}
"""


def test_a_reset_at_the_primary_reaches_the_anthropic_sdk_as_the_backups_answer(
    switchyard_mock_provider: MockProviderFactory, switchyard_gateway: GatewayFactory
) -> None:
    claude = switchyard_mock_provider("claude", api="anthropic", rules=["reset"])
    gpt = switchyard_mock_provider("gpt")
    config = CROSS_PROVIDER.replace("CLAUDE_URL", claude.url).replace("OPENAI_URL", gpt.url)
    gateway = switchyard_gateway(config)
    client = anthropic.Anthropic(base_url=gateway.url, api_key="my-app-key")

    answer = client.messages.with_raw_response.create(
        model="assistant", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    )

    assert answer.headers["x-switchyard-target"] == "gpt"
    assert answer.parse().type == "message"
    assert [r["action"] for r in claude.requests()] == ["reset"]
    assert [r["body"]["model"] for r in gpt.requests()] == ["gpt-4o"]
    claude.set_rules()  # the primary recovers
    again = client.messages.with_raw_response.create(
        model="assistant", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    )
    assert again.headers["x-switchyard-target"] == "claude"


def test_a_rule_with_a_typo_fails_in_the_test_that_wrote_it(switchyard_mock_provider: MockProviderFactory) -> None:
    mock = switchyard_mock_provider("openai")
    with pytest.raises(ValueError, match="unknown rule key 'stauts'"):
        mock.set_rules("model=gpt-4o,stauts=503")


def test_a_config_that_does_not_load_fails_the_start_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(SwitchyardStartError, match="routes"):
        LocalSwitchyard("providers: {}\n", log_dir=tmp_path)


def test_a_failing_test_shows_the_gateways_logs_and_leaves_nothing_running(tmp_path: Path) -> None:
    """A user's test file, run by pytest with only the installed plugin (no conftest): it fails on purpose."""
    (tmp_path / "test_users_app.py").write_text(
        "CONFIG = '''\n"
        "providers:\n"
        "  openai: {kind: openai, base_url: 'MOCK_URL', api_key: sk-test}\n"
        "routes:\n"
        "  - model: gpt-4o\n"
        "    targets: [{name: main, provider: openai, model: gpt-4o}]\n"
        "'''\n"
        "def test_fails(switchyard_mock_provider, switchyard_gateway):\n"
        "    mock = switchyard_mock_provider('openai')\n"
        "    gateway = switchyard_gateway(CONFIG.replace('MOCK_URL', mock.url))\n"
        "    print('GATEWAY', gateway.url)\n"
        "    assert False, 'on purpose'\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout[-3000:]
    assert "on purpose" in result.stdout
    assert "switchyard: LocalSwitchyard" in result.stdout, result.stdout[-3000:]
    assert "--- controlplane ---" in result.stdout
    assert "switchyard: LocalMockProvider" in result.stdout
    printed = re.search(r"GATEWAY (http://\S+)", result.stdout)
    assert printed, result.stdout[-3000:]
    gateway_url = printed.group(1)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{gateway_url}/healthz", timeout=5)
