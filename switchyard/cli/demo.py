"""`switchyard demo`: `up` on the bundled example with two mock providers, an OpenAI-shaped one whose primary
fails half the time and an Anthropic-shaped one that is overloaded (529) a third of the time."""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

from switchyard.addresses import AddressError
from switchyard.supervisor.gateway import cli_command, run_up
from switchyard.supervisor.options import GatewayOptions
from switchyard.supervisor.processes import Child, switchyard_command

_REPO_DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.yaml"
MOCK_RULE = "model=chatgpt-4,status=502,rate=0.5"
ANTHROPIC_RULE = "model=claude-sonnet-4,status=529,rate=0.33"


def demo_config_text() -> str:
    """The repository's examples/demo.yaml, or the copy packaged with an installed wheel."""
    if _REPO_DEMO.is_file():
        return _REPO_DEMO.read_text(encoding="utf-8")
    return resources.files("switchyard").joinpath("_data/demo.yaml").read_text(encoding="utf-8")


def working_copy(work_dir: Path) -> Path:
    """The demo's config as a file of its own in the work dir: a newcomer edits it to see a live reload, and
    the repository's examples/demo.yaml stays as it was. A copy already there (--work-dir of an earlier run)
    is kept, edits and all."""
    path = work_dir / "demo.yaml"
    if not path.exists():
        path.write_text(demo_config_text(), encoding="utf-8")
    return path


def run_demo(options: GatewayOptions) -> int:
    mock_port = os.environ.setdefault("SWITCHYARD_DEMO_MOCK_PORT", "18081")
    anthropic_port = os.environ.setdefault("SWITCHYARD_DEMO_ANTHROPIC_PORT", "18082")
    try:
        options = options.resolved()  # the work dir, where the working copy goes
    except (AddressError, OSError) as error:
        print(f"Cannot start: {error}", file=sys.stderr)
        return 2
    assert options.work_dir is not None
    options.config_path = working_copy(options.work_dir)
    mocks = (
        ("mock-provider", mock_port, "demo-openai", MOCK_RULE, ()),
        ("mock-anthropic", anthropic_port, "demo-anthropic", ANTHROPIC_RULE, ("--api", "anthropic")),
    )
    for name, port, label, rule, extra in mocks:
        options.extra_children.append(
            Child(
                name,
                switchyard_command("mock-provider", "--port", port, "--name", label, "--rule", rule, *extra),
                None if options.log_dir is None else options.log_dir / f"{name}.log",
            )
        )
    port = os.environ.get("SWITCHYARD_DEMO_PORT", "8080")
    cli = cli_command()
    banner = (
        f"Demo config: {options.config_path}\n"
        "  a copy of examples/demo.yaml: edit and save it, the gateway reloads it live (the repository's file\n"
        "  stays as it is; the copy goes with the work dir when the demo stops, unless you gave --work-dir).\n"
        f"CLI: {cli} (for example `{cli} status`), or `. .venv/bin/activate` and then `switchyard status`.\n"
        "What to watch:\n"
        "  chatgpt-4: the mock fails half of the primary's requests with 502; the backup (renamed gpt-3.5, at its\n"
        "    own URL suffix) serves them in the same request: x-switchyard-target says which one served, and\n"
        "    x-switchyard-attempts: 2 when both were tried; every answer stays 200. Three failures in a row eject\n"
        "    the primary for 10 s, and the backup serves directly.\n"
        "  gpt-4: three requests in four to gpt-4o, the rest to gpt-4o-mini.\n"
        "  assistant: an Anthropic model (overloaded a third of the time) with an OpenAI backup; call it with\n"
        "    either API and the answer comes in the API you used:\n"
        f"  curl -s http://127.0.0.1:{port}/v1/messages -H 'content-type: application/json' "
        '-d \'{"model": "assistant", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}\' -i\n'
        f'SDKs: openai.OpenAI(base_url="http://127.0.0.1:{port}/v1", api_key="any"), '
        f'anthropic.Anthropic(base_url="http://127.0.0.1:{port}", api_key="any")\n'
    )
    return run_up(options, banner)
