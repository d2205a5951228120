"""The CLI as a newcomer meets it: flags where they type them, help that says what each command is today."""

from __future__ import annotations

import urllib.error

import pytest

from switchyard.cli.main import build_parser
from switchyard.cli.status_view import render_status, unreachable_api


@pytest.mark.parametrize(
    "argv",
    [
        ["up", "x.yaml", "--log-level", "debug"],
        ["--log-level", "debug", "up", "x.yaml"],
        ["validate", "x.yaml", "--log-level", "debug"],
        ["status", "--log-level", "debug"],
    ],
)
def test_log_level_is_taken_before_or_after_the_subcommand(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).log_level == "debug"


def test_log_level_defaults_to_info_and_a_level_before_the_subcommand_is_kept() -> None:
    assert build_parser().parse_args(["up", "x.yaml"]).log_level == "info"
    assert build_parser().parse_args(["--log-level", "warning", "status"]).log_level == "warning"


def _help(*argv: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines where it likes


def test_top_level_help_says_what_each_part_does_now(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys=capsys)

    assert "per-attempt rewrite service" not in text  # Envoy's Lua does that now
    assert "Anthropic's Messages API" in text  # clients are not OpenAI-only
    assert "run only the translation service" in text
    assert "OpenAI, Anthropic, Gemini or Bedrock API" in text  # the mock speaks four
    assert "--log-level" in text and "--envoy-log-level" in text


def test_demo_help_names_its_config_file_and_port_variables(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help("demo", capsys=capsys)

    assert "examples/demo.yaml" in text
    for variable in ("SWITCHYARD_DEMO_PORT", "SWITCHYARD_DEMO_MOCK_PORT", "SWITCHYARD_DEMO_ANTHROPIC_PORT"):
        assert variable in text


def test_status_shows_why_a_reload_was_rejected() -> None:
    problem = "/etc/sy.yaml: 1 problem\n  /etc/sy.yaml:4: providers.openai.kind: must be one of ..."
    document = {
        "config": {"version": "abc", "last_reload": {"ok": False, "at": 0.0, "reason": "SIGHUP", "error": problem}},
        "routes": [],
    }

    text = render_status(document)

    assert "REJECTED, previous version kept" in text
    assert "/etc/sy.yaml:4: providers.openai.kind: must be one of" in text


def test_an_unreachable_api_gets_a_plain_hint() -> None:
    text = unreachable_api("127.0.0.1:18002", urllib.error.URLError(ConnectionRefusedError(111, "refused")))

    assert text.startswith("No Switchyard control plane at 127.0.0.1:18002: nothing answers there.")
    assert "switchyard up CONFIG" in text and "--api" in text
    assert "urlopen" not in text
