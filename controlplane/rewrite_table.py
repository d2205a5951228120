"""Config → the per-target rewrite table the ext_proc applies on each attempt (pure).

Everything provider-specific is decided here, once per config version, so the per-attempt work in the
ext_proc is a dictionary lookup and a few header writes.
"""

from __future__ import annotations

from controlplane.providers import ADAPTERS, AUTH_HEADERS
from controlplane.target_keys import target_key
from switchyard.api.v1 import rewrite_pb2
from switchyard.config import ClientEndpoint, Config


def build_rewrite_table(config: Config, version: str) -> rewrite_pb2.RewriteTable:
    table = rewrite_pb2.RewriteTable(version=version)
    for route in config.routes:
        for target in route.targets:
            provider = config.provider_of(target)
            adapter = ADAPTERS[provider.kind]
            auth = adapter.auth_headers(provider)
            table.targets.append(
                rewrite_pb2.TargetRewrite(
                    key=target_key(route, target),
                    route=route.model,
                    target=target.display_name,
                    model=adapter.body_model(target),
                    paths={
                        e.value: path
                        for e in ClientEndpoint
                        if (path := adapter.upstream_path(e, target, provider)) is not None
                    },
                    set_headers=[rewrite_pb2.HeaderValue(name=k, value=v) for k, v in auth.items()],
                    remove_headers=[h for h in AUTH_HEADERS if h not in auth],
                    api=adapter.api,
                )
            )
    return table
