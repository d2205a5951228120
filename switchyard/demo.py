"""`switchyard demo`: `up` on the bundled example with a mock provider whose primary fails half the time."""

from __future__ import annotations

import os
import tempfile
from importlib import resources
from pathlib import Path

from switchyard.gateway import GatewayOptions, run_up
from switchyard.processes import Child, switchyard_command

_REPO_DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.yaml"
MOCK_RULE = "model=chatgpt-4,status=502,rate=0.5"


def demo_config_path() -> Path:
    if _REPO_DEMO.is_file():
        return _REPO_DEMO
    packaged = resources.files("switchyard").joinpath("_data/demo.yaml")
    target = Path(tempfile.mkdtemp(prefix="switchyard-demo-")) / "demo.yaml"
    target.write_text(packaged.read_text(encoding="utf-8"))
    return target


def run_demo(options: GatewayOptions) -> int:
    mock_port = os.environ.setdefault("SWITCHYARD_DEMO_MOCK_PORT", "18081")
    options.config_path = demo_config_path()
    options.extra_children.append(
        Child(
            "mock-provider",
            switchyard_command("mock-provider", "--port", mock_port, "--name", "demo-openai", "--rule", MOCK_RULE),
            None if options.log_dir is None else options.log_dir / "mock-provider.log",
        )
    )
    banner = (
        "Demo: the mock provider fails half of the chatgpt-4 requests with 502; watch x-switchyard-target switch\n"
        "between 'primary' and 'backup' (and x-switchyard-attempts: 2) while every response stays 200.\n"
        "After three failures in a row the primary is ejected for 10 s and the backup serves directly.\n"
    )
    return run_up(options, banner)
