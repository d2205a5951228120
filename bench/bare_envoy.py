"""Variant P of `make bench`: a bare Envoy, the true floor of what proxying costs on this machine.

One static listener, the router filter alone, one route to the mock, no control plane, no logs, no Lua: the
same Envoy binary with none of Switchyard's work. Variant B is not this floor (it carries Switchyard's
filters and access logs), so the gateway's own cost shows only against P (issue 21).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

_HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"


def bootstrap(listen_port: int, admin_port: int, upstream_url: str) -> dict[str, object]:
    upstream = urlsplit(upstream_url)
    router = {
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    }
    manager = {
        "@type": f"type.googleapis.com/{_HCM}",
        "stat_prefix": "bare",
        "route_config": {
            "virtual_hosts": [
                {"name": "all", "domains": ["*"], "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "mock"}}]}
            ]
        },
        "http_filters": [router],
    }
    hcm = manager
    endpoint = {
        "endpoint": {"address": {"socket_address": {"address": upstream.hostname, "port_value": upstream.port}}}
    }
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "bare",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen_port}},
                    "filter_chains": [
                        {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
                    ],
                }
            ],
            "clusters": [
                {
                    "name": "mock",
                    "type": "STATIC",
                    "connect_timeout": "5s",
                    "load_assignment": {"cluster_name": "mock", "endpoints": [{"lb_endpoints": [endpoint]}]},
                }
            ],
        },
    }


def write_bootstrap(path: Path, listen_port: int, admin_port: int, upstream_url: str) -> Path:
    path.write_text(json.dumps(bootstrap(listen_port, admin_port, upstream_url), indent=2))
    return path
