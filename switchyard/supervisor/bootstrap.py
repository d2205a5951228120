"""Render envoy/bootstrap.yaml for one Envoy process."""

from __future__ import annotations

import copy
import json
import secrets
from dataclasses import dataclass, field
from string import Template
from typing import Any

import yaml

from switchyard.addresses import (
    OWNER_ONLY,
    TcpAddress,
    UnixAddress,
    envoy_cluster_type,
    parse_address,
    parse_address_list,
)
from switchyard.contract import (
    CONTROLPLANE_CLUSTER,
    INSTANCE_METADATA_KEY,
    LISTEN_METADATA_KEY,
    LOG_CLUSTERS_METADATA_KEY,
)
from switchyard.envoy_files import read_envoy_file
from switchyard.tls import EnvoyTls, control_plane_transport_socket


def template_text() -> str:
    return read_envoy_file("bootstrap.yaml")


@dataclass(frozen=True)
class BootstrapParams:
    """Addresses as the flags take them: HOST:PORT or unix:/absolute/path."""

    node_id: str
    admin: str
    # The control plane, or several replicas separated by commas in order of preference: ADS goes to the first
    # that answers and moves to the next when it goes away; the attempt log goes to every one.
    xds: str
    extprocs: tuple[str, ...]
    # This node's own listener address (`switchyard node --listen`), HOST:PORT; None: the YAML's `listen`.
    listen: str | None = None
    instance: str = field(default_factory=lambda: secrets.token_hex(8))
    # mTLS to the control plane (--tls-*): the PEM files and where the SDS files naming them are; None: plain.
    tls: EnvoyTls | None = None


def log_cluster_name(replica: int) -> str:
    """The bootstrap cluster of the control-plane replica at position `replica` (0-based) of --xds."""
    return f"{CONTROLPLANE_CLUSTER}_{replica + 1}"


def _endpoint(address: TcpAddress | UnixAddress) -> dict[str, object]:
    return {"endpoint": {"address": address.envoy()}}


def render_bootstrap(params: BootstrapParams) -> str:
    admin = parse_address(params.admin)
    metadata: dict[str, Any] = {INSTANCE_METADATA_KEY: params.instance}
    if params.listen is not None:
        listen = parse_address(params.listen)
        if not isinstance(listen, TcpAddress):
            raise ValueError(f"{params.listen!r}: the listener address is HOST:PORT")
        metadata[LISTEN_METADATA_KEY] = str(listen)
    replicas = parse_address_list(params.xds)
    if len(replicas) > 1:
        metadata[LOG_CLUSTERS_METADATA_KEY] = [log_cluster_name(i) for i in range(len(replicas))]
    extprocs = [parse_address(address) for address in params.extprocs]
    if not extprocs:
        raise ValueError("at least one ext_proc address is needed")
    # Envoy's admin serves config_dump, which shows provider API keys: as a Unix socket it is owner-only.
    admin_address = admin.envoy(OWNER_ONLY) if isinstance(admin, UnixAddress) else admin.envoy()
    values = {
        "NODE_ID": json.dumps(params.node_id),
        "NODE_METADATA": json.dumps(metadata),
        "ADMIN_ADDRESS": json.dumps(admin_address),
        "XDS_CLUSTER_TYPE": envoy_cluster_type(replicas),
        "XDS_LOCALITIES": json.dumps(
            [{"priority": i, "lb_endpoints": [_endpoint(address)]} for i, address in enumerate(replicas)]
        ),
        "XDS_TRANSPORT_SOCKET": json.dumps(control_plane_transport_socket([str(a) for a in replicas], params.tls)),
        "CONTROLPLANE_LOG_CLUSTERS": "",
        "EXTPROC_CLUSTER_TYPE": envoy_cluster_type(extprocs),
        "EXTPROC_ENDPOINTS": json.dumps([_endpoint(address) for address in extprocs]),
    }
    # The values are JSON, which YAML reads as flow collections and quoted strings.
    template = Template(template_text())
    text = template.substitute(values)
    if len(replicas) > 1:
        values["CONTROLPLANE_LOG_CLUSTERS"] = _log_clusters(text, replicas, params.tls)
        text = template.substitute(values)
    return text


def _log_clusters(rendered: str, replicas: tuple[TcpAddress | UnixAddress, ...], tls: EnvoyTls | None) -> str:
    """One cluster per replica for the attempt log, as YAML sequence items: each a copy of the rendered
    control-plane cluster (its timeouts, keepalive) with that replica as its only endpoint, and a transport
    socket that verifies that replica's name (and sends it as SNI)."""
    clusters = yaml.safe_load(rendered)["static_resources"]["clusters"]
    (shared,) = (cluster for cluster in clusters if cluster["name"] == CONTROLPLANE_CLUSTER)
    items = []
    for i, address in enumerate(replicas):
        cluster = copy.deepcopy(shared)
        cluster["name"] = log_cluster_name(i)
        cluster["type"] = envoy_cluster_type([address])
        cluster["load_assignment"] = {
            "cluster_name": cluster["name"],
            "endpoints": [{"lb_endpoints": [_endpoint(address)]}],
        }
        cluster["transport_socket"] = control_plane_transport_socket([str(address)], tls)
        items.append(f"  - {json.dumps(cluster)}")
    return "\n".join(items)
