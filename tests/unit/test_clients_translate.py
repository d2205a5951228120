"""The translation of `clients:` (controlplane/clients.py): nothing without it; with it, the filters in the
listener, their config per route (digests only), the limits divided by live nodes, refused clients, and the
live-state changes that must (and must not) cause a push."""

from __future__ import annotations

import hashlib
from types import MappingProxyType
from typing import Any

import pytest

from controlplane.clients import AUTH_FILTER, CLIENT_TAG, LIMIT_FILTER, client_table, node_bucket
from controlplane.envoy_api import to_dict
from controlplane.live_state import LiveState
from controlplane.snapshot import snapshot_of
from controlplane.translate import translate
from switchyard.config import load_config_text
from switchyard.contract import ROUTE_KEY_FILTER, ROUTE_KEY_HEADER

KEY = "sk-team-a-0123456789abcdef"

_BASE = """
providers:
  p: {kind: openai, base_url: "http://127.0.0.1:9", api_key: sk-provider}
routes:
  - {model: oa, targets: [{name: t, provider: p, model: x}]}
"""
_CLIENTS = f"""
clients:
  team-a: {{keys: ["{KEY}"], limits: {{requests_per_minute: 600}}}}
  team-b: {{keys: ["sha256:{"ab" * 32}"], models: [oa]}}
"""


def _resources(text: str, live: LiveState | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    envoy = translate(load_config_text(text), live=live or LiveState())
    (listener,) = envoy.listeners
    (routes,) = envoy.route_configs
    return to_dict(listener), to_dict(routes)


def _hcm(listener: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return config


def test_without_clients_there_is_no_filter_no_table_and_no_client_shape() -> None:
    listener, routes = _resources(_BASE)
    text = repr((listener, routes))
    assert AUTH_FILTER not in text and LIMIT_FILTER not in text and "invalid_api_key" not in text
    assert "typed_per_filter_config" not in routes["virtual_hosts"][0]


def test_with_clients_the_filters_sit_between_the_model_lift_and_the_router() -> None:
    listener, routes = _resources(_BASE + _CLIENTS)
    names = [f["name"] for f in _hcm(listener)["http_filters"]]
    # Auth needs the model the JSON lift found, and must answer before the limiter counts or the router routes.
    order = ["envoy.filters.http.json_to_metadata", AUTH_FILTER, LIMIT_FILTER, "envoy.filters.http.router"]
    assert [name for name in names if name in order] == order
    # Between the two, only the routing key, which reads the lifted model too (route_index.py).
    assert names.index(AUTH_FILTER) == names.index("envoy.filters.http.json_to_metadata") + 2
    assert names.index(ROUTE_KEY_FILTER) == names.index("envoy.filters.http.json_to_metadata") + 1
    vhost = routes["virtual_hosts"][0]
    assert set(vhost["typed_per_filter_config"]) == {AUTH_FILTER, LIMIT_FILTER}
    assert vhost["request_headers_to_remove"] == ["x-switchyard-client", ROUTE_KEY_HEADER]  # never upstream
    answer_log = _hcm(listener)["access_log"][0]["typed_config"]["common_config"]
    assert CLIENT_TAG in [t["tag"] for t in answer_log["custom_tags"]]
    assert "invalid_api_key" in repr(_hcm(listener)["local_reply_config"])


def test_envoy_gets_digests_never_keys() -> None:
    listener, routes = _resources(_BASE + _CLIENTS)
    text = repr((listener, routes))
    assert KEY not in text
    assert hashlib.sha256(KEY.encode()).hexdigest() in text and "ab" * 32 in text


def test_without_request_limits_there_is_no_limiter() -> None:
    listener, routes = _resources(_BASE + 'clients: {team-a: {keys: ["' + KEY + '"]}}')
    assert LIMIT_FILTER not in repr((listener, routes)) and AUTH_FILTER in repr(routes)


@pytest.mark.parametrize(
    ("per_minute", "nodes", "burst", "bucket"),
    [
        (60, 2, None, (30, 1, 2000)),  # 30 a node: a token every 2 s, the node's half of the minute at once
        (600, 1, None, (600, 1, 100)),  # 10 a second: a token every 100 ms, the whole minute at once
        (600, 3, None, (200, 1, 300)),
        (7, 3, None, (2, 1, 25714)),  # slow rates keep their precision; shares round down
        (1, 3, None, (1, 1, 180000)),  # never below one request a node
        (6000, 1, None, (6000, 5, 50)),  # faster than a token per 50 ms: several per fill
        (100_000, 4, None, (25000, 21, 50)),
        (600, 3, 30, (10, 1, 300)),  # burst: the fleet admits 30 at once, then the rate
        (6000, 1, 1, (5, 5, 50)),  # a burst below one refill is one refill
    ],
)
def test_each_node_gets_its_share_of_the_rate_and_of_the_minute_s_allowance(
    per_minute: int, nodes: int, burst: int | None, bucket: tuple[int, int, int]
) -> None:
    got = node_bucket(per_minute, nodes, burst)
    assert (got.max_tokens, got.tokens_per_fill, got.fill_ms) == bucket
    assert got.per_minute * nodes == pytest.approx(per_minute, rel=0.01)


def test_the_node_count_divides_the_limit_in_the_routes() -> None:
    _, one = _resources(_BASE + _CLIENTS, LiveState(nodes=1))
    _, two = _resources(_BASE + _CLIENTS, LiveState(nodes=2))
    (descriptor,) = two["virtual_hosts"][0]["typed_per_filter_config"][LIMIT_FILTER]["descriptors"]
    assert descriptor["entries"] == [{"key": "client", "value": "team-a"}]
    assert descriptor["token_bucket"]["fill_interval"] == "0.200s"
    assert one != two


def test_refused_clients_are_in_the_table_until_when() -> None:
    config = load_config_text(_BASE + _CLIENTS)
    live = LiveState(refused_clients=MappingProxyType({"team-b": 1_800_000_000.25, "gone": 1.0}))
    table = client_table(config, live)
    assert "until.team-b=1800000000.250" in table and "gone" not in table


def test_a_push_follows_a_refusal_or_a_node_count_change_only_where_it_matters() -> None:
    limited = load_config_text(_BASE + _CLIENTS)
    open_gateway = load_config_text(_BASE)
    refused = LiveState(refused_clients=MappingProxyType({"team-a": 1e10}))
    assert refused.steering(limited) != LiveState().steering(limited)
    assert LiveState(nodes=3).steering(limited) != LiveState().steering(limited)
    assert (
        refused.steering(open_gateway)
        == LiveState(nodes=3).steering(open_gateway)
        == LiveState().steering(open_gateway)
    )
    unlimited = load_config_text(_BASE + 'clients: {team-a: {keys: ["' + KEY + '"]}}')
    assert LiveState(nodes=3).steering(unlimited) == LiveState().steering(unlimited)
    base = snapshot_of(limited)
    pushed = snapshot_of(limited, live=refused, config_version=base.config_version)
    assert pushed.version.startswith(base.config_version + ".") and pushed.content_hash != base.content_hash
