"""The converted-resource cache behind translate (controlplane/envoy_api.MessageCache): a re-translation after a
health change converts only what changed, and nobody can tell a cached resource from a fresh one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from envoy.config.cluster.v3.cluster_pb2 import Cluster
from google.protobuf import json_format

import controlplane.translate as translate_module
from controlplane import envoy_api
from controlplane.envoy_api import (
    Listener,
    MessageCache,
    Route,
    RouteConfiguration,
    canonical_json,
    to_dict,
    to_message,
)
from controlplane.live_state import NO_LIVE_STATE
from controlplane.resource_memo import ResourceMemo
from controlplane.snapshot import build_snapshot
from controlplane.translate import translate
from switchyard.config import load_config
from tests.support.golden import FAKE_ENV

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo.yaml"


def _cluster(name: str, port: int = 443) -> dict[str, object]:
    return {
        "name": name,
        "connect_timeout": "1s",
        "type": "STATIC",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}
                    ]
                }
            ],
        },
    }


def test_canonical_json_is_the_same_whatever_the_order_the_dict_was_built_in() -> None:
    assert canonical_json({"b": 1, "a": {"d": 2, "c": [3]}}) == canonical_json({"a": {"c": [3], "d": 2}, "b": 1})


def test_a_hit_is_an_equal_message_but_never_the_same_object() -> None:
    cache = MessageCache()
    data = _cluster("a")
    first = cache.message(canonical_json(data), data, Cluster)
    first.name = "changed by a caller"
    second = cache.message(canonical_json(data), data, Cluster)
    assert second == to_message(data, Cluster)
    assert second is not first and len(cache) == 1


def test_the_cache_keeps_to_its_byte_bound_dropping_the_least_recently_used() -> None:
    texts = {name: canonical_json(_cluster(name)) for name in ("a", "b", "c")}
    one = len(texts["a"]) + len(to_message(_cluster("a"), Cluster).SerializeToString())
    cache = MessageCache(max_bytes=2 * one + 1)
    cache.message(texts["a"], _cluster("a"), Cluster)
    cache.message(texts["b"], _cluster("b"), Cluster)
    cache.message(texts["a"], _cluster("a"), Cluster)  # a is now the most recently used
    cache.message(texts["c"], _cluster("c"), Cluster)  # over the bound: b goes
    assert len(cache) == 2
    assert cache._entries.keys() == {(Cluster, texts["a"]), (Cluster, texts["c"])}


def test_translating_again_gives_the_same_resources_with_one_endpoint_out() -> None:
    """The second translation of a live-state change hits the cache for every resource it did not change."""
    config = load_config(DEMO)
    before = translate(config)
    key = before.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].metadata.filter_metadata["switchyard"]
    live = replace(NO_LIVE_STATE, out_of_service=frozenset({key.fields["key"].string_value}))
    after = translate(config, live=live)
    again = translate(config, live=live)
    assert after == again and after.texts == again.texts
    assert after.clusters[0] != before.clusters[0]  # the endpoint's cluster changed
    assert after.listeners == before.listeners


def test_two_processes_with_different_hash_seeds_give_the_same_content_hash() -> None:
    """Replicas hand out the same version for the same YAML (packed Anys' map order differs between processes;
    the canonical JSON does not)."""
    here = build_snapshot(load_config(DEMO), "1")
    program = (
        "import json,sys; from controlplane.snapshot import build_snapshot; from switchyard.config import load_config;"
        "s = build_snapshot(load_config(sys.argv[1]), '1'); print(json.dumps([s.content_hash, dict(s.type_hashes)]))"
    )
    hashes = []
    for seed in ("1", "2"):
        environ = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", program, str(DEMO)], env=environ, cwd=ROOT, capture_output=True, check=True
        )
        hashes.append(json.loads(out.stdout))
    assert hashes[0] == hashes[1] == [here.content_hash, dict(here.type_hashes)]


def _counting_conversions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    converted: list[str] = []
    parse = json_format.ParseDict

    def counted(data: Any, message: Any, *args: Any, **kwargs: Any) -> Any:
        converted.append(type(message).__name__)
        return parse(data, message, *args, **kwargs)

    monkeypatch.setattr(envoy_api.json_format, "ParseDict", counted)
    return converted


def _route_config(*models: str) -> dict[str, Any]:
    routes = [
        {
            "match": {"prefix": "/", "headers": [{"name": "x-model", "string_match": {"exact": m}}]},
            "route": {"cluster": m},
        }
        for m in models
    ]
    return {"name": "r", "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]}


def test_a_route_configuration_is_converted_route_by_route_and_equals_the_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One edited route of many converts that route (and the shell around the routes), not all of them again."""
    cache = MessageCache()
    before = _route_config("a", "b", "c", "d")
    cache.message(canonical_json(before), before, RouteConfiguration)
    converted = _counting_conversions(monkeypatch)
    after = _route_config("a", "b", "c-edited", "d")
    message = cache.message(canonical_json(after), after, RouteConfiguration)
    assert converted == ["RouteConfiguration", "Route"]
    assert message == to_message(after, RouteConfiguration)
    assert [r.route.cluster for r in message.virtual_hosts[0].routes] == ["a", "b", "c-edited", "d"]


def test_the_bound_grows_to_hold_a_large_config_so_a_push_converts_only_what_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A config bigger than the cache's fixed bound (300 routes filled 64 MiB) must still hit: else every health
    push converts every resource again."""
    small = MessageCache(max_bytes=1000)
    monkeypatch.setattr(translate_module, "_CONVERTED", small)
    monkeypatch.setattr(translate_module, "_MEMO", ResourceMemo(small))
    config = load_config(DEMO)
    first = translate(config)
    translate(config)  # what the first one could not keep while it did not know the config's size
    key = first.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].metadata.filter_metadata["switchyard"]
    converted = _counting_conversions(monkeypatch)
    live = replace(NO_LIVE_STATE, out_of_service=frozenset({key.fields["key"].string_value}))
    after = translate(config, live=live)
    changed = sum(a != b for a, b in zip(first.clusters, after.clusters, strict=True))
    assert 1 <= changed < len(first.clusters) and converted == ["Cluster"] * changed


def _resource_dicts(config_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[type[Any], dict[str, Any]]]:
    for name, value in FAKE_ENV.items():
        monkeypatch.setenv(name, value)
    resources = translate(load_config(config_path))
    return [
        (type(message), to_dict(message))
        for message in (*resources.clusters, *resources.listeners, *resources.route_configs)
    ]


@pytest.mark.parametrize("example", ["switchyard.yaml", "demo.yaml"])
def test_shared_parts_converted_apart_give_the_bytes_of_a_whole_conversion(
    example: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Typed configs and retry policies are converted once per config (message_parts.py): every resource of the
    examples (translation, guardrails, clients, TLS, tracing) must come out exactly as ParseDict makes it."""
    cache = MessageCache()
    for message_type, data in _resource_dicts(ROOT / "examples" / example, monkeypatch):
        expected = json_format.ParseDict(data, message_type())
        converted = cache.message(canonical_json(data), data, message_type)
        assert converted == expected
        assert converted.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)
    parts = [key for key in cache._entries if key[0] not in (Cluster, Listener, RouteConfiguration, Route)]
    assert parts, "no part was converted apart"


def test_a_part_spelled_with_json_names_converts_as_parse_dict_does() -> None:
    data: dict[str, Any] = {
        **_cluster("a"),
        "typedExtensionProtocolOptions": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicitHttpConfig": {"httpProtocolOptions": {}},
                "httpFilters": [{"name": "envoy.filters.http.upstream_codec", "typedConfig": _codec()}],
            }
        },
    }
    converted = MessageCache().message(canonical_json(data), data, Cluster)
    assert converted == json_format.ParseDict(data, Cluster())
    assert len(converted.typed_extension_protocol_options) == 1


def _codec() -> dict[str, str]:
    return {"@type": "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"}


def test_a_misspelled_field_in_a_part_is_refused_as_parse_dict_refuses_it() -> None:
    data = _cluster("a")
    data["typed_extension_protocol_options"] = {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http_protocol_options": {}},
            "no_such_field": 1,
        }
    }
    with pytest.raises(json_format.ParseError, match="no_such_field"):
        MessageCache().message(canonical_json(data), data, Cluster)
