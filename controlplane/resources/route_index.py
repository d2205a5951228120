"""The virtual host's routes, indexed: a request finds its route in one step, however many models there are.

Why: Envoy tries a virtual host's routes in order, and each try costs about 1.7 us of CPU per request (the
route objects are large and scattered: checking a route's path or a header first did not make a miss cheaper).
A config has a route per model and client endpoint, so a request paid for every route before its own: 300
models took Envoy's CPU per request from about 270 to 720-830 us (`python -m bench.envoy_costs --only models_300`).

How: the virtual host gets Envoy's `matcher` instead of a route list. Its tree looks the request's routing key
(header ROUTE_KEY_HEADER: method, path without query, model; set by envoy/lua/route_key.lua once the body's
model is lifted) up in one exact map, which holds the routes matched on those three alone (`match` with `path`,
a `:method` header and the `model` metadata, nothing else). Every other request (no key in the map, or no key:
a GET, a body without a model, a path the map does not hold) goes down the other routes in order, as before (a
`RouteList` action; an indexed route could only match requests of its own key). Before route_key.lua has run
there is no key, and no route (see `virtual_host_routing`).

A key is indexed only where the list would have picked the same route: the first route of that key, and only
when no route before it could also match the request. A route with a condition besides those three (the
Responses-only routes, the routes flagged for parameters another API may not express) keeps the later routes
of its path and model out of the map (of its path, when it does not require one model); a route matched by
prefix or pattern keeps every route after it out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from envoy.config.route.v3 import route_components_pb2

from controlplane.envoy_api import METADATA_NAMESPACE
from switchyard.contract import MODEL_KEY, ROUTE_KEY_HEADER, ROUTE_KEY_SEPARATOR

_ROUTE = "type.googleapis.com/envoy.config.route.v3.Route"
_ROUTE_LIST = "type.googleapis.com/envoy.config.route.v3.RouteList"
_HEADER_INPUT = "type.googleapis.com/envoy.type.matcher.v3.HttpRequestHeaderMatchInput"
_MODEL_PATH = [{"key": MODEL_KEY}]


def route_key(method: str, path: str, model: str) -> str:
    """The key route_key.lua sets for a request (tests hold the two to the same spelling)."""
    return ROUTE_KEY_SEPARATOR.join((method, path, model))


def _exact_model(matcher: Mapping[str, Any]) -> str | None:
    """The model a dynamic-metadata matcher requires exactly, if it is one that does."""
    value = matcher.get("value", {}).get("string_match", {})
    if matcher.get("filter") != METADATA_NAMESPACE or matcher.get("path") != _MODEL_PATH or matcher.get("invert"):
        return None
    exact = value.get("exact")
    return None if value.get("ignore_case") else exact


def _key_parts(route: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """The method, path and model of a route matched on those three alone; None for any other route."""
    match = route["match"]
    if set(match) != {"path", "headers", "dynamic_metadata"}:
        return None
    headers, metadata = match["headers"], match["dynamic_metadata"]
    if len(headers) != 1 or len(metadata) != 1:
        return None
    (method,), (model_matcher,) = headers, metadata
    method_exact = method.get("string_match", {}).get("exact")
    if method.get("name") != ":method" or method_exact is None or method.get("invert_match"):
        return None
    model = _exact_model(model_matcher)
    return None if model is None else (method_exact, match["path"], model)


def indexed_routes(routes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The routes the exact map holds, by key: each the route the list would pick first for its key.

    A route that is not indexed shadows the keys it could match for the routes after it: those of its path
    and model when it requires both exactly (its other conditions only narrow it), else those of its path."""
    table: dict[str, dict[str, Any]] = {}
    shadowed_paths: set[str] = set()
    shadowed: set[tuple[str, str]] = set()
    for route in routes:
        parts = _key_parts(route)
        if parts is not None:
            _, path, model = parts
            key = route_key(*parts)
            if path not in shadowed_paths and (path, model) not in shadowed and key not in table:
                table[key] = route
            continue
        match = route["match"]
        if "path" not in match:
            break  # matched by prefix or pattern: it could take any request after it
        models = [m for m in map(_exact_model, match.get("dynamic_metadata", [])) if m is not None]
        if models:
            shadowed.add((match["path"], models[0]))
        else:
            shadowed_paths.add(match["path"])
    return table


def virtual_host_routing(routes: list[dict[str, Any]]) -> dict[str, Any]:
    """The virtual host's fields that route: the indexed matcher, or the plain list when nothing can be indexed.

    Envoy matches a request twice: once at its headers, before any filter ran (the model is not lifted yet),
    and again when route_key.lua has set the key. The first must be cheap: without a key there is no route (no
    filter before route_key.lua needs one); only a request with a key goes to the map, or down the list."""
    table = indexed_routes(routes)
    if not table:
        return {"routes": routes}
    # An indexed route matches only requests of its key, and those the map answers: the list need not hold it
    # (a config's routes once, not twice: Envoy's memory, the control plane's conversions).
    indexed = {id(route) for route in table.values()}
    rest = [route for route in routes if id(route) not in indexed]
    key_input = {"name": "route_key", "typed_config": {"@type": _HEADER_INPUT, "header_name": ROUTE_KEY_HEADER}}
    by_key = {
        "matcher_tree": {
            "input": key_input,
            "exact_match_map": {
                "map": {
                    key: {"action": {"name": route["name"], "typed_config": {"@type": _ROUTE, **route}}}
                    for key, route in table.items()
                }
            },
        },
        "on_no_match": {"action": {"name": "route_list", "typed_config": {"@type": _ROUTE_LIST, "routes": rest}}},
    }
    # route_key.lua always writes the separator (between method and path): its presence means the key is set.
    has_key = {"single_predicate": {"input": key_input, "value_match": {"contains": ROUTE_KEY_SEPARATOR}}}
    return {"matcher": {"matcher_list": {"matchers": [{"predicate": has_key, "on_match": {"matcher": by_key}}]}}}


def index_parts(virtual_host: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]] | None:
    """An indexed virtual host's dict in its two parts, as they sit in it (a caller may rewrite them): the exact
    map's entries by key (each an `action` whose `typed_config` is the route), and the RouteList action's
    `typed_config` (the other routes, in order). None for a virtual host with a plain route list."""
    if "matcher" not in virtual_host:
        return None
    (keyed,) = virtual_host["matcher"]["matcher_list"]["matchers"]
    by_key = keyed["on_match"]["matcher"]
    entries: dict[str, dict[str, Any]] = by_key["matcher_tree"]["exact_match_map"]["map"]
    route_list: dict[str, Any] = by_key["on_no_match"]["action"]["typed_config"]
    return entries, route_list


def route_dicts(virtual_host: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every route of a virtual host's dict as one list that matches as the virtual host does: the indexed
    routes first (each matches only requests of its own key, which no route before it in the config's order
    could match), then the others in order."""
    parts = index_parts(virtual_host)
    if parts is None:
        return list(virtual_host.get("routes", ()))
    entries, route_list = parts
    indexed = [
        {key: value for key, value in entry["action"]["typed_config"].items() if key != "@type"}
        for entry in entries.values()
    ]
    return [*indexed, *route_list.get("routes", [])]


def route_messages(virtual_host: Any) -> Iterator[Any]:
    """Every route of a VirtualHost message: the indexed ones, then the list (see `route_dicts`)."""
    yield from virtual_host.routes
    if virtual_host.HasField("matcher"):
        (keyed,) = virtual_host.matcher.matcher_list.matchers
        by_key = keyed.on_match.matcher
        for entry in by_key.matcher_tree.exact_match_map.map.values():
            route = route_components_pb2.Route()
            entry.action.typed_config.Unpack(route)
            yield route
        rest = route_components_pb2.RouteList()
        by_key.on_no_match.action.typed_config.Unpack(rest)
        yield from rest.routes
