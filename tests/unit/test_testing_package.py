"""switchyard.testing's pieces that need no process: the listener put into a test's YAML, the gateway free of
testcontainers until a container class is asked for, and the hint when the extra is missing."""

from __future__ import annotations

import subprocess
import sys

import yaml

from switchyard.config import load_config_text
from switchyard.testing.config_text import with_listen

CONFIG = """\
# a comment that stays
listen: 127.0.0.1:8080   # where the user said
providers:
  openai: {kind: openai, base_url: "http://mock:18081", api_key: "${KEY:-sk-x}"}
routes:
  - model: gpt-4o
    targets: [{name: main, provider: openai, model: gpt-4o}]
"""


def test_the_listener_is_replaced_and_everything_else_stays_as_written() -> None:
    text = with_listen(CONFIG, "0.0.0.0:8080")
    assert yaml.safe_load(text)["listen"] == "0.0.0.0:8080"
    assert text.replace('listen: "0.0.0.0:8080"', "listen: 127.0.0.1:8080   # where the user said") == CONFIG
    config = load_config_text(text, source="test", environ={})
    assert (config.listen_host, config.listen_port) == ("0.0.0.0", 8080)


def test_a_config_without_a_listener_gets_one() -> None:
    text = with_listen(CONFIG.replace("listen: 127.0.0.1:8080   # where the user said\n", ""), "127.0.0.1:20001")
    assert load_config_text(text, source="test", environ={}).listen == "127.0.0.1:20001"


def test_a_nested_listen_key_is_not_the_listener() -> None:
    text = with_listen("extra:\n  listen: keep\n", "127.0.0.1:20001")
    assert yaml.safe_load(text) == {"extra": {"listen": "keep"}, "listen": "127.0.0.1:20001"}


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_importing_switchyard_testing_does_not_import_testcontainers() -> None:
    result = _python(
        "import sys, switchyard.testing, switchyard.testing.pytest_plugin; "
        "print('testcontainers' in sys.modules, 'docker' in sys.modules)"
    )
    assert result.stdout.split() == ["False", "False"], result.stderr


def test_without_testcontainers_the_container_classes_name_the_extra_to_install() -> None:
    result = _python(
        "import sys; sys.modules['testcontainers'] = None\nfrom switchyard.testing import SwitchyardContainer"
    )
    assert result.returncode != 0
    assert "pip install 'switchyard[testing]'" in result.stderr
