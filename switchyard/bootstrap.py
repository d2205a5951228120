"""Render envoy/bootstrap.yaml for one Envoy process."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

_REPO_TEMPLATE = Path(__file__).resolve().parent.parent / "envoy" / "bootstrap.yaml"


def template_text() -> str:
    """From the source tree when run from a checkout, else from the copy packaged into the wheel."""
    # Installed, parent.parent is site-packages (where xds-protos' `envoy` package lives): only trust a checkout.
    if _REPO_TEMPLATE.is_file() and (_REPO_TEMPLATE.parent.parent / "pyproject.toml").is_file():
        return _REPO_TEMPLATE.read_text(encoding="utf-8")
    return resources.files("switchyard").joinpath("_data/bootstrap.yaml").read_text(encoding="utf-8")


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class BootstrapParams:
    node_id: str
    admin: str
    xds: str
    extprocs: tuple[str, ...]


def render_bootstrap(params: BootstrapParams) -> str:
    admin_host, admin_port = split_address(params.admin)
    xds_host, xds_port = split_address(params.xds)
    endpoints = []
    for address in params.extprocs:
        host, port = split_address(address)
        endpoints.append({"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}})
    return Template(template_text()).substitute(
        NODE_ID=json.dumps(params.node_id),
        ADMIN_ADDRESS=admin_host,
        ADMIN_PORT=admin_port,
        XDS_ADDRESS=xds_host,
        XDS_PORT=xds_port,
        EXTPROC_ENDPOINTS=json.dumps(endpoints),
    )
