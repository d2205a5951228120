"""Files under envoy/ (the bootstrap template, the Lua the control plane pushes), wherever Switchyard runs.

From the source tree when run from a checkout, else from the copies packaged into the wheel (pyproject's
force-include puts them in switchyard/_data/ under their file names)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


def read_envoy_file(relative: str) -> str:
    """`relative` to envoy/, e.g. "bootstrap.yaml" or "lua/attempt_rewrite.lua"."""
    # Installed, the parent of this package is site-packages (where xds-protos' `envoy` package lives): only a
    # checkout, recognised by its pyproject.toml, is trusted.
    in_checkout = _CHECKOUT / "envoy" / relative
    if in_checkout.is_file() and (_CHECKOUT / "pyproject.toml").is_file():
        return in_checkout.read_text(encoding="utf-8")
    return resources.files("switchyard").joinpath(f"_data/{Path(relative).name}").read_text(encoding="utf-8")
