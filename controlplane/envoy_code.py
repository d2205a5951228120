"""Code that runs inside Envoy, read from its own files under envoy/ and pushed inline over ADS.

Inline rather than by file name: an Envoy on another host has no copy of our files, and a new version of the
code then reaches every Envoy with the config that needs it.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


@cache
def attempt_rewrite_lua() -> str:
    """envoy/lua/attempt_rewrite.lua: the per-attempt rewrite (tests: tests/unit/test_attempt_rewrite_lua.py)."""
    return _read("lua/attempt_rewrite.lua")


def _read(relative: str) -> str:
    """From the source tree when run from a checkout, else from the copy packaged into the wheel."""
    in_checkout = _CHECKOUT / "envoy" / relative
    if in_checkout.is_file() and (_CHECKOUT / "pyproject.toml").is_file():
        return in_checkout.read_text(encoding="utf-8")
    return resources.files("switchyard").joinpath(f"_data/{Path(relative).name}").read_text(encoding="utf-8")
