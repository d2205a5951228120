"""The route index (controlplane/resources/route_index.py) picks, for every request it answers, the route Envoy's
ordered route list would have picked.

A reference of Envoy's ordered matching (the route `match` fields the translation writes: path, prefix and
pattern, headers, dynamic metadata) runs over the example config's whole route list for requests to every
model and endpoint, with and without the flags some routes add; wherever the index holds the request's key, its
route must be the list's first match. With real Envoy: tests/e2e/test_many_routes.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pytest

from controlplane.envoy_api import METADATA_NAMESPACE, to_dict
from controlplane.live_state import NO_LIVE_STATE
from controlplane.resources.route_index import index_parts, indexed_routes, route_dicts, route_key, virtual_host_routing
from controlplane.resources.routes import route_list
from controlplane.translate import DEFAULT_SETTINGS, translate
from switchyard.config import ClientEndpoint, load_config
from switchyard.contract import OWN_API_ONLY_KEY, PARAMETERS_THAT_MAY_NOT_TRANSLATE
from tests.support.golden import EXAMPLE, FAKE_ENV

Metadata = Mapping[str, object]


def _value_matches(matcher: Mapping[str, Any], value: object) -> bool:
    if "present_match" in matcher:
        return (value is not None) is bool(matcher["present_match"])
    if value is None:
        return False
    if "bool_match" in matcher:
        return value is matcher["bool_match"]
    string = matcher["string_match"]
    if not isinstance(value, str):
        return False
    if "exact" in string:
        return value == str(string["exact"])
    raise AssertionError(f"the reference does not know {matcher}")


def _matches(route: Mapping[str, Any], method: str, path: str, metadata: Metadata) -> bool:
    """Envoy's RouteEntryImplBase::matchRoute and path matching, for what the translation writes."""
    match = route["match"]
    for header in match.get("headers", ()):
        assert header["name"] == ":method", header
        hit = method == header["string_match"]["exact"]
        if hit == bool(header.get("invert_match")):
            return False
    for matcher in match.get("dynamic_metadata", ()):
        assert matcher["filter"] == METADATA_NAMESPACE and len(matcher["path"]) == 1, matcher
        hit = _value_matches(matcher["value"], metadata.get(matcher["path"][0]["key"]))
        if hit == bool(matcher.get("invert")):
            return False
    if "path" in match:
        return path == str(match["path"])
    if "prefix" in match:
        return path.startswith(match["prefix"])
    return re.fullmatch(match["safe_regex"]["regex"], path) is not None


def _first(routes: list[dict[str, Any]], method: str, path: str, metadata: Metadata) -> dict[str, Any] | None:
    return next((r for r in routes if _matches(r, method, path, metadata)), None)


@pytest.fixture(scope="module")
def routes() -> list[dict[str, Any]]:
    """The example's routes in the order Envoy would try them."""
    return route_list(load_config(EXAMPLE, environ=FAKE_ENV), DEFAULT_SETTINGS, NO_LIVE_STATE)


def _requests(routes: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, object]]]:
    models = {
        m["value"]["string_match"]["exact"]
        for r in routes
        for m in r["match"].get("dynamic_metadata", ())
        if m["path"] == [{"key": "model"}] and "string_match" in m["value"]
    }
    flags: list[dict[str, object]] = [
        {},
        {OWN_API_ONLY_KEY: "x"},
        {"openai_only_store": True},
        {"openai_only_prompt": "p"},
    ]
    assert PARAMETERS_THAT_MAY_NOT_TRANSLATE  # the own-API-only flag comes from these
    return [
        (method, endpoint.path, {"model": model, **flag})
        for model in [*sorted(models), "not-configured"]
        for endpoint in ClientEndpoint
        for flag in flags
        for method in ("POST", "GET")
    ]


def test_the_index_picks_what_the_ordered_list_would(routes: list[dict[str, Any]]) -> None:
    table = indexed_routes(routes)
    answered = 0
    for method, path, metadata in _requests(routes):
        indexed = table.get(route_key(method, path, str(metadata["model"])))
        if indexed is None:
            continue  # goes down the list: the same answer by construction
        answered += 1
        first = _first(routes, method, path, metadata)
        assert first is not None and indexed["name"] == first["name"], (method, path, metadata)
        assert indexed == first
    assert answered > 100  # most requests of the example are answered by the index


def test_routes_shadowed_by_a_route_with_more_conditions_stay_out(routes: list[dict[str, Any]]) -> None:
    """A flagged route before a plain one of the same path and model: the plain one must not be indexed, or a
    flagged request would skip the flagged route."""
    table = indexed_routes(routes)
    flagged = [r for r in routes if len(r["match"].get("dynamic_metadata", ())) == 2 and "path" in r["match"]]
    assert flagged, "the example has flagged routes"
    for route in flagged:
        models = [
            m["value"]["string_match"]["exact"]
            for m in route["match"]["dynamic_metadata"]
            if "string_match" in m["value"]
        ]
        for model in models:
            assert route_key("POST", route["match"]["path"], model) not in table


def test_a_route_matched_by_prefix_keeps_every_later_route_out() -> None:
    plain = {
        "name": "a",
        "match": {
            "path": "/v1/x",
            "headers": [{"name": ":method", "string_match": {"exact": "POST"}}],
            "dynamic_metadata": [
                {"filter": METADATA_NAMESPACE, "path": [{"key": "model"}], "value": {"string_match": {"exact": "m"}}}
            ],
        },
    }
    catch_all = {"name": "all", "match": {"prefix": "/"}}
    assert list(indexed_routes([plain, catch_all])) == [route_key("POST", "/v1/x", "m")]
    assert indexed_routes([catch_all, plain]) == {}
    assert virtual_host_routing([catch_all, plain]) == {"routes": [catch_all, plain]}


def test_each_route_is_in_the_index_or_in_the_list_once(routes: list[dict[str, Any]]) -> None:
    routing = virtual_host_routing(routes)
    indexed = indexed_routes(routes)
    assert sorted(map(repr, route_dicts(routing))) == sorted(map(repr, routes))
    parts = index_parts(routing)
    assert parts is not None
    rest = parts[1]["routes"]
    assert rest == [r for r in routes if all(r is not i for i in indexed.values())]  # in order


def test_the_translated_config_holds_the_index(routes: list[dict[str, Any]]) -> None:
    """What translate() hands Envoy is this index of these routes, byte for byte through protobuf."""
    config = load_config(EXAMPLE, environ=FAKE_ENV)
    (host,) = to_dict(translate(config).route_configs[0])["virtual_hosts"]
    assert len(route_dicts(host)) == len(routes)
    parts = index_parts(host)
    assert parts is not None and set(parts[0]) == set(indexed_routes(routes))
