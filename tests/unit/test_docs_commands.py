"""Every command the README and docs/ show in a `sh` block works: the ones that can run here are run, the
others are named below with the reason they are not, and `switchyard` command lines are checked against the
CLI's own parser. A command nobody placed in either list fails the test, so new docs get checked too."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.cli_flags import check_command_line

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

# Commands run as the reader would, from the repository (or, for what writes files, from a scratch directory).
RUN_HERE = {"make lint", "make typecheck", "switchyard certs"}
RUN_ELSEWHERE = {"switchyard certs"}  # it writes files: a scratch directory stands for the reader's
# Commands that cannot run inside a test, each with why; tests elsewhere cover what they do.
NOT_RUN = {
    "make demo": "runs until Ctrl-C (tests/e2e/test_cli.py runs the demo and drives it with the SDKs)",
    "make test": "the whole suite, this test included",
    "make test-unit": "a tier of the suite, this test included",
    "make test-e2e": "a tier of the suite (minutes of real processes)",
    "make test-fleet": "a tier of the suite (minutes of real processes)",
    "make test-reliability": "a tier of the suite (minutes of load and faults)",
    "make test-deploy": "a tier of the suite (renders manifests, starts containers where an engine runs)",
    "make bench": "minutes of load on every core (tests/e2e/test_bench_smoke.py runs a short one)",
    "make golden": "rewrites the golden file (tests/unit/test_golden.py checks that it is current)",
    "make screenshot": "rewrites docs/status-page.png after a minute of browser traffic",
    "docker": "needs a container engine (tests/containers)",
    "kubectl": "needs a Kubernetes cluster (tests/deploy renders the manifests)",
    "deploy/kubernetes/create-secrets.sh": "needs a Kubernetes cluster",
    "read": "reads a key from the terminal",
    "curl": "needs a running gateway (the end-to-end tests make these calls)",
}
# `switchyard` commands that serve until stopped, need a running gateway or name the reader's own files: their
# command lines are parsed by the CLI, which catches a wrong command or flag.
PARSED_ONLY = {"up", "node", "controlplane", "status", "usage", "validate"}


def shown_commands() -> list[tuple[str, str]]:
    """(page:line, command) for every command line of every `sh` block; continuation lines joined."""
    commands = []
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        inside, pending, start = False, "", 0
        for number, line in enumerate(lines, 1):
            if line.startswith("```"):
                inside = line.strip() == "```sh"
                continue
            if not inside:
                continue
            if not pending:
                start = number
            pending += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
            if line.endswith("\\"):
                continue
            if shlex.split(pending, comments=True):
                commands.append((f"{page.relative_to(REPO)}:{start}", pending))
            pending = ""
    return commands


def _words(command: str) -> list[str]:
    words = shlex.split(command, comments=True)
    while words and "=" in words[0] and not words[0].startswith(("-", "/")):  # `VAR=value command`
        words = words[1:]
    if words[0].endswith("/switchyard"):  # .venv/bin/switchyard
        words[0] = "switchyard"
    return words


def _key(words: list[str]) -> str:
    return " ".join(words[:2]) if words[0] in ("make", "switchyard") else words[0]


COMMANDS = shown_commands()


def test_the_docs_show_commands_and_the_readme_keeps_its_two() -> None:
    readme = [command for where, command in COMMANDS if where.startswith("README.md")]
    assert [_key(_words(c)) for c in readme[:2]] == ["make demo", "make test"]


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_a_shown_command_works(where: str, command: str, tmp_path: Path) -> None:
    words = _words(command)
    key = _key(words)
    if key in NOT_RUN:
        pytest.skip(f"{key}: {NOT_RUN[key]}")
    if words[0] == "switchyard" and words[1] in PARSED_ONLY:
        check_command_line([w for w in words if w != "&"], where)
        return
    assert key in RUN_HERE, f"{where}: `{command}` is neither run nor skipped here: add it to RUN_HERE or NOT_RUN"
    if words[0] == "switchyard":
        words = [sys.executable, "-m", "switchyard", *words[1:]]
    result = subprocess.run(
        words,
        cwd=tmp_path if key in RUN_ELSEWHERE else REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
    )
    assert result.returncode == 0, f"{where}: `{command}` failed:\n{result.stdout}\n{result.stderr}"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for page in (REPO / "docs").glob("*.md"):
        assert f"(docs/{page.name}" in readme, f"{page.name} is not linked from the README"


def test_the_docs_speak_to_users_not_of_the_project_history() -> None:
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for pattern in (r"\b[Ss]ession \d", r"\bR[12]\b", r"seed vocabulary", r"seed workflow"):
            assert not re.search(pattern, text), f"{page.name}: {pattern}"
