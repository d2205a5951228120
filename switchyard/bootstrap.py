"""Render envoy/bootstrap.yaml for one Envoy process."""

from __future__ import annotations

import json
from dataclasses import dataclass
from string import Template

from switchyard.addresses import OWNER_ONLY, TcpAddress, UnixAddress, envoy_cluster_type, parse_address
from switchyard.addresses import split_address as split_address  # re-exported: the control plane's status API
from switchyard.envoy_files import read_envoy_file
from switchyard.tls import EnvoyTls, control_plane_transport_socket

# The node metadata key that carries a node's own listener address; the control plane reads it
# (controlplane/nodes.py) and sends that node its listener on this address.
LISTEN_METADATA_KEY = "switchyard_listen"


def template_text() -> str:
    return read_envoy_file("bootstrap.yaml")


@dataclass(frozen=True)
class BootstrapParams:
    """Addresses as the flags take them: HOST:PORT or unix:/absolute/path."""

    node_id: str
    admin: str
    xds: str
    extprocs: tuple[str, ...]
    # This node's own listener address (`switchyard node --listen`), HOST:PORT; None: the YAML's `listen`.
    listen: str | None = None
    # mTLS to the control plane (--tls-*): the PEM files and where the SDS files naming them are; None: plain.
    tls: EnvoyTls | None = None


def _endpoint(address: TcpAddress | UnixAddress) -> dict[str, object]:
    return {"endpoint": {"address": address.envoy()}}


def render_bootstrap(params: BootstrapParams) -> str:
    admin = parse_address(params.admin)
    metadata: dict[str, str] = {}
    if params.listen is not None:
        listen = parse_address(params.listen)
        if not isinstance(listen, TcpAddress):
            raise ValueError(f"{params.listen!r}: the listener address is HOST:PORT")
        metadata[LISTEN_METADATA_KEY] = str(listen)
    xds = parse_address(params.xds)
    extprocs = [parse_address(address) for address in params.extprocs]
    if not extprocs:
        raise ValueError("at least one ext_proc address is needed")
    # Envoy's admin serves config_dump, which shows provider API keys: as a Unix socket it is owner-only.
    admin_address = admin.envoy(OWNER_ONLY) if isinstance(admin, UnixAddress) else admin.envoy()
    # The values are JSON, which YAML reads as flow collections and quoted strings.
    return Template(template_text()).substitute(
        NODE_ID=json.dumps(params.node_id),
        NODE_METADATA=json.dumps(metadata),
        ADMIN_ADDRESS=json.dumps(admin_address),
        XDS_CLUSTER_TYPE=envoy_cluster_type([xds]),
        XDS_ENDPOINTS=json.dumps([_endpoint(xds)]),
        XDS_TRANSPORT_SOCKET=json.dumps(control_plane_transport_socket([params.xds], params.tls)),
        EXTPROC_CLUSTER_TYPE=envoy_cluster_type(extprocs),
        EXTPROC_ENDPOINTS=json.dumps([_endpoint(address) for address in extprocs]),
    )
