"""Session affinity from YAML to Envoy: where it is refused (with its line), and what it adds to the route, its
cluster, the listener and each attempt; a route without it keeps its resources exactly (see the golden file)."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from google.protobuf import json_format

from controlplane import affinity
from controlplane.resources.route_index import route_dicts
from controlplane.translate import EnvoyResources, translate
from switchyard.config import ConfigError, Route, load_config_text
from switchyard.contract import SESSION_FIELDS, WireApi

PROVIDERS = """
providers:
  p: {kind: openai, base_url: "http://127.0.0.1:9", api_key: sk-unit}
"""


def _config(route: str) -> str:
    return PROVIDERS + "routes:\n" + textwrap.indent(textwrap.dedent(route).strip(), "  ") + "\n"


def _problem(route: str) -> tuple[int | None, str, str]:
    with pytest.raises(ConfigError) as caught:
        load_config_text(_config(route))
    (problem,) = caught.value.problems
    return problem.line, problem.path, problem.message


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (
            """
            - model: m
              affinity: {header: x-session-id}
              targets: [{provider: p, model: a}, {provider: p, model: b}]
            """,
            "every target of this priority route has a priority level of its own",
        ),
        (
            """
            - model: m
              strategy: lowest_cost
              affinity: {body_fields: true}
              targets:
                - {provider: p, model: a, price: {input: 1, output: 2}}
                - {provider: p, model: b, price: {input: 2, output: 4}}
            """,
            "every target of this lowest_cost route has a price of its own",
        ),
        (
            """
            - model: m
              strategy: weighted
              affinity: {body_fields: true}
              targets: [{provider: p, model: a}]
            """,
            "pins nothing",
        ),
        (
            """
            - model: m
              affinity: {body_fields: true}
              primary: {provider: p, name: a}
              backup: {provider: p, name: b}
            """,
            "`primary`/`backup` puts one target at each level",
        ),
        (
            """
            - model: m
              strategy: weighted
              affinity: {}
              targets: [{provider: p, model: a}, {provider: p, model: b}]
            """,
            "names no session",
        ),
    ],
)
def test_affinity_that_would_pin_nothing_is_refused_at_its_line(route: str, message: str) -> None:
    line, path, text = _problem(route)

    assert path == "routes[0].affinity"
    assert line is not None and "affinity:" in _config(route).splitlines()[line - 1]
    assert message in text


@pytest.mark.parametrize("header", ["authorization", "x-api-key", "x-switchyard-client", "bad header"])
def test_a_header_that_cannot_name_a_session_is_refused(header: str) -> None:
    _, path, _ = _problem(
        f"""
        - model: m
          strategy: round_robin
          affinity: {{header: "{header}"}}
          targets: [{{provider: p, model: a}}, {{provider: p, model: b}}]
        """
    )
    assert path == "routes[0].affinity.header"


@pytest.mark.parametrize(
    "route",
    [
        "strategy: weighted",
        "strategy: round_robin",
        "strategy: least_latency",
        "strategy: priority\n  targets: [{provider: p, model: a, priority: 0}, {provider: p, model: b, priority: 0}]",
    ],
)
def test_affinity_is_accepted_where_targets_share_a_level(route: str) -> None:
    targets = "" if "targets" in route else "\n  targets: [{provider: p, model: a}, {provider: p, model: b}]"
    config = load_config_text(_config(f"- model: m\n  {route}\n  affinity: {{header: X-Session}}{targets}"))

    assert config.routes[0].affinity is not None and config.routes[0].affinity.header == "x-session"


def _resources(route_extra: str) -> EnvoyResources:
    route = f"""
    - model: m
      strategy: weighted
      {route_extra}
      targets: [{{provider: p, model: a, weight: 3}}, {{provider: p, model: b}}]
    - model: plain
      strategy: weighted
      targets: [{{provider: p, model: a}}, {{provider: p, model: b}}]
    """
    return translate(load_config_text(_config(route)))


def _dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _route(resources: EnvoyResources, name: str) -> dict[str, Any]:
    (found,) = [r for r in route_dicts(_dict(resources.route_configs[0])["virtual_hosts"][0]) if r["name"] == name]
    return found


def _cluster(resources: EnvoyResources, name: str) -> dict[str, Any]:
    (found,) = [_dict(c) for c in resources.clusters if c.name == name]
    return found


def test_the_route_hashes_the_client_header_then_the_session_fields_of_the_client_api() -> None:
    resources = _resources("affinity: {header: x-session-id, body_fields: true}")

    def hashed(route: str) -> list[str]:
        return [p["header"]["header_name"] for p in _route(resources, route)["route"]["hash_policy"]]

    openai = [f.header for f in SESSION_FIELDS[WireApi.OPENAI]]
    assert hashed("chat:m") == ["x-session-id", *openai]
    assert hashed("responses:m") == ["x-session-id", *openai]
    assert hashed("messages:m") == ["x-session-id", *(f.header for f in SESSION_FIELDS[WireApi.ANTHROPIC])]
    assert all(p["terminal"] for p in _route(resources, "chat:m")["route"]["hash_policy"])
    assert _cluster(resources, "route/m")["lb_policy"] == "MAGLEV"


def test_routes_without_affinity_keep_round_robin_and_no_hash() -> None:
    resources = _resources("affinity: {body_fields: true}")

    assert "hash_policy" not in _route(resources, "chat:plain")["route"]
    assert _cluster(resources, "route/plain").get("lb_policy", "ROUND_ROBIN") == "ROUND_ROBIN"
    plain_options = _cluster(resources, "route/plain")["typed_extension_protocol_options"]
    assert "http_filters" not in str(plain_options), "the router's upstream filters serve every cluster"


def test_body_fields_become_headers_before_routing_and_leave_before_each_attempt() -> None:
    with_fields = _resources("affinity: {body_fields: true}")
    header_only = _resources("affinity: {header: x-session-id}")

    listener = str(_dict(with_fields.listeners[0]))
    assert "%DYNAMIC_METADATA(switchyard:session_prompt_cache_key)%" in listener
    assert "'key': 'user_id'" in listener  # metadata.user_id lifted
    assert "%DYNAMIC_METADATA(switchyard:session_" not in str(_dict(header_only.listeners[0]))
    # Before each attempt, in the router's upstream filters (one chain for every cluster).
    removed = str(_dict(with_fields.listeners[0]))
    assert all(f"'remove': '{f.header}'" in removed for fields in SESSION_FIELDS.values() for f in fields)


def _route_model(strategy: str, weights: tuple[int, ...], exploration: float = 0.05) -> Route:
    return Route.model_validate(
        {
            "model": "m",
            "strategy": strategy,
            "latency": {"exploration": exploration},
            "affinity": {"body_fields": True},
            "targets": [{"provider": "p", "model": f"t{i}", "weight": w} for i, w in enumerate(weights)],
        }
    )


@pytest.mark.parametrize(
    ("strategy", "weights"),
    [("weighted", (97, 3)), ("weighted", (1000, 1)), ("round_robin", (5, 1)), ("least_latency", (1, 1))],
)
def test_a_retry_may_draw_many_times_whatever_the_weights(strategy: str, weights: tuple[int, ...]) -> None:
    """Maglev's draws read neighbouring slots of its table, so their number is not set by the largest share
    (20 draws at 50/50 still stranded sessions, bench/maglev_retries.py)."""
    assert affinity.host_selection_attempts(_route_model(strategy, weights)) == affinity.RETRY_DRAWS >= 20_000


def test_each_target_of_a_route_with_affinity_has_a_hash_key_of_its_own() -> None:
    """Two targets of one provider share its address, which Maglev would otherwise key them by."""
    resources = _resources("affinity: {body_fields: true}")

    endpoints = [
        locality["lb_endpoints"][0]["metadata"]["filter_metadata"]
        for locality in _cluster(resources, "route/m")["load_assignment"]["endpoints"]
    ]
    keys = [metadata["envoy.lb"]["hash_key"] for metadata in endpoints]
    assert len(keys) == len(set(keys)) >= 2
    assert keys == [metadata["switchyard"]["key"] for metadata in endpoints]
    assert "envoy.lb" not in str(_cluster(resources, "route/plain")["load_assignment"])
