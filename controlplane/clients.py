"""The YAML's `clients:` → who may call and how often, enforced by Envoy with no Python on the request path.

- Authentication (envoy/lua/client_auth.lua): a downstream Lua filter hashes the presented key (SHA-256,
  each distinct known key once per worker) and looks the digest up in a table of digests → client. Only
  digests reach Envoy, so a config_dump holds no usable key, and `sha256:` keys in the YAML work like
  literal ones. Envoy's api_key_auth filter would need every literal key in its config and cannot take
  digests at all. The filter also refuses clients the usage ledger has stopped (LiveState.refused_clients)
  and models a client may not use, and takes the client's key off the request.
- Request limits: Envoy's local_ratelimit, one token bucket per client keyed by the client the Lua filter
  put into dynamic metadata. A limit per minute means the minute's allowance, at once if the client wants
  (the convention of providers and other gateways): each node's bucket holds its share of the minute's
  allowance (or of `burst`) and refills at its share of the rate, `requests_per_minute / live nodes`
  (LiveState.nodes), so a fleet holds the configured rate rather than N times it.
- Rate-limit headers: the limiter counts (its IETF-draft headers), the Lua filter renames them on the answer
  to the convention of the API called (OpenAI's `x-ratelimit-*-requests`, Anthropic's
  `anthropic-ratelimit-requests-*`) with the fleet-wide limits.

Both filters sit in the listener with no config of their own; their real config is the virtual host's
per-route config, in RDS. A route update applies to the next request on every open connection, while a
listener update would leave open connections on the old filter chain until they drain: so a removed key,
a refusal or a new node count takes effect within a push. The price: any route update (a key, a refusal,
the node count; never a health or weight change, which are endpoint updates) starts every bucket full.

Without `clients:` none of this is in the config and the gateway is open, as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from controlplane.envoy_api import METADATA_NAMESPACE, typed
from controlplane.envoy_code import client_auth_lua
from controlplane.live_state import LiveState
from switchyard.config import Config
from switchyard.config.model import ClientLimits
from switchyard.contract import CLIENT_AUTH_FILTER as AUTH_FILTER
from switchyard.contract import CLIENT_HEADER as CLIENT_HEADER
from switchyard.contract import CLIENT_LIMITS_FILTER as LIMIT_FILTER
from switchyard.contract import CLIENT_METADATA_KEY as CLIENT_METADATA_KEY
from switchyard.contract import RETRY_AFTER_METADATA_KEY as RETRY_AFTER_METADATA_KEY

CLIENT_TAG = "client"  # the custom tag of the answer log naming the authenticated client
LIMIT_STAT_PREFIX = "switchyard_clients"

# The listener's own script: reached only by a request whose route has no per-route script, which the
# translation never produces. Fails closed rather than letting an unauthenticated request through.
_NO_TABLE_LUA = """function envoy_on_request(handle)
  handle:respond({[":status"] = "503", ["content-type"] = "text/plain"}, "Switchyard has no client table.")
end
"""

# The shortest refill interval Envoy's local rate limiter accepts (50 ms): faster rates refill more tokens at once.
_MIN_FILL_S = 0.05
_UINT32_MAX = 2**32 - 1


def enabled(config: Config) -> bool:
    return bool(config.clients)


def limited(config: Config) -> bool:
    return any(c.limits.requests_per_minute for c in (config.clients or {}).values())


@dataclass(frozen=True)
class NodeBucket:
    """One node's token bucket for a client: `tokens_per_fill` every `fill_ms`, at most `max_tokens` saved."""

    max_tokens: int
    tokens_per_fill: int
    fill_ms: int

    @property
    def retry_after_s(self) -> int:
        """Whole seconds until the next refill of an empty bucket (at least 1)."""
        return max(1, math.ceil(self.fill_ms / 1000))

    @property
    def per_minute(self) -> float:
        return self.tokens_per_fill * 60_000 / self.fill_ms


def node_bucket(requests_per_minute: int, nodes: int, burst: int | None = None) -> NodeBucket:
    """A node's share of a client's fleet-wide limit: the rate divided by the live nodes, refilled as finely as
    Envoy allows (intervals of at least 50 ms, whole milliseconds); the bucket holds the node's share of the
    minute's allowance (or of `burst`), at least one refill. A quick burst spread over the fleet is admitted up
    to the allowance; over any minute the fleet admits at most the allowance plus the minute's refill."""
    shares = max(1, nodes)
    per_second = requests_per_minute / (60 * shares)
    tokens = max(1, math.ceil(per_second * _MIN_FILL_S))
    fill_ms = max(round(1000 * tokens / per_second), round(1000 * _MIN_FILL_S))
    at_once = max(tokens, (burst or requests_per_minute) // shares)
    return NodeBucket(max_tokens=min(at_once, _UINT32_MAX), tokens_per_fill=tokens, fill_ms=fill_ms)


def _bucket_of(limits: ClientLimits, nodes: int) -> NodeBucket | None:
    rpm = limits.requests_per_minute
    return node_bucket(rpm, nodes, limits.burst) if rpm else None


def _encoded(name: str, value: str) -> str:
    return f"{quote(name, safe='')}={quote(value, safe='')}"


def _name_list(names: Any) -> str:
    return ",".join(quote(name, safe="") for name in names)


def client_table(config: Config, live: LiveState) -> str:
    """The table envoy/lua/client_auth.lua reads (its header says the format): digests, never keys."""
    clients = config.clients or {}
    pairs = [_encoded("routed", _name_list(sorted(r.model for r in config.routes)))]
    for name, client in sorted(clients.items()):
        pairs.extend(_encoded(f"key.{digest}", name) for digest in client.key_digests())
        if client.models is not None:
            pairs.append(_encoded(f"models.{name}", _name_list(client.models)))
        bucket = _bucket_of(client.limits, live.nodes)
        if bucket:
            pairs.append(_encoded(f"wait.{name}", str(bucket.retry_after_s)))
            pairs.append(_encoded(f"rpm.{name}", str(client.limits.requests_per_minute)))
        if client.limits.tokens_per_minute:
            pairs.append(_encoded(f"tpm.{name}", str(client.limits.tokens_per_minute)))
        until = live.refused_clients.get(name)
        if until is not None:
            pairs.append(_encoded(f"until.{name}", f"{until:.3f}"))
    return "&".join(pairs)


def client_auth_source(config: Config, live: LiveState) -> str:
    """The script Envoy runs: the table (only URL-safe characters and `%`, so safe in a Lua string), then the code."""
    return f'local CLIENT_TABLE = "{client_table(config, live)}"\n' + client_auth_lua()


def listener_filters(config: Config) -> list[dict[str, Any]]:
    """Between json_to_metadata (the model must be known) and the router; nothing without `clients:`."""
    if not enabled(config):
        return []
    filters = [
        {
            "name": AUTH_FILTER,
            "typed_config": typed(
                "envoy.extensions.filters.http.lua.v3.Lua", default_source_code={"inline_string": _NO_TABLE_LUA}
            ),
        }
    ]
    if limited(config):
        filters.append(
            {
                "name": LIMIT_FILTER,
                "typed_config": typed(
                    "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit", stat_prefix=LIMIT_STAT_PREFIX
                ),
            }
        )
    return filters


def virtual_host_fields(config: Config, live: LiveState) -> dict[str, Any]:
    """The filters' config for every route, and the client header taken off before any attempt."""
    if not enabled(config):
        return {}
    per_filter: dict[str, Any] = {
        AUTH_FILTER: typed(
            "envoy.extensions.filters.http.lua.v3.LuaPerRoute",
            source_code={"inline_string": client_auth_source(config, live)},
        )
    }
    if limited(config):
        per_filter[LIMIT_FILTER] = _rate_limits(config, live)
    return {"typed_per_filter_config": per_filter, "request_headers_to_remove": [CLIENT_HEADER]}


def _always() -> dict[str, Any]:
    return {"default_value": {"numerator": 100, "denominator": "HUNDRED"}}


def _rate_limits(config: Config, live: LiveState) -> dict[str, Any]:
    descriptors = []
    for name, client in sorted((config.clients or {}).items()):
        bucket = _bucket_of(client.limits, live.nodes)
        if not bucket:
            continue
        descriptors.append(
            {
                "entries": [{"key": CLIENT_METADATA_KEY, "value": name}],
                "token_bucket": {
                    "max_tokens": bucket.max_tokens,
                    "tokens_per_fill": bucket.tokens_per_fill,
                    "fill_interval": f"{bucket.fill_ms / 1000:.3f}s",
                },
            }
        )
    client_entry = {
        "metadata": {
            "descriptor_key": CLIENT_METADATA_KEY,
            "metadata_key": {"key": METADATA_NAMESPACE, "path": [{"key": CLIENT_METADATA_KEY}]},
            "source": "DYNAMIC",
        }
    }
    return typed(
        "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        stat_prefix=LIMIT_STAT_PREFIX,
        # Clients without a limit fall to the default bucket, which never runs dry.
        token_bucket={"max_tokens": _UINT32_MAX, "tokens_per_fill": _UINT32_MAX, "fill_interval": "1s"},
        filter_enabled=_always(),
        filter_enforced=_always(),
        always_consume_default_token_bucket=False,
        rate_limits=[{"actions": [client_entry]}],
        descriptors=descriptors,
        # The counts for the rate-limit headers; client_auth.lua renames them to the caller's API convention.
        enable_x_ratelimit_headers="DRAFT_VERSION_03",
        response_headers_to_add=[
            {
                "header": {
                    "key": "retry-after",
                    "value": f"%DYNAMIC_METADATA({METADATA_NAMESPACE}:{RETRY_AFTER_METADATA_KEY})%",
                },
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            }
        ],
    )


def answer_log_tags(config: Config) -> list[dict[str, Any]]:
    """The client of each answer, for usage accounting. The per-attempt log cannot carry it: it sees neither
    the request's dynamic metadata nor, once the route has removed it, the client header; the two logs
    share each request's id."""
    if not enabled(config):
        return []
    return [
        {
            "tag": CLIENT_TAG,
            "metadata": {
                "kind": {"request": {}},
                "metadata_key": {"key": METADATA_NAMESPACE, "path": [{"key": CLIENT_METADATA_KEY}]},
            },
        }
    ]
