"""The translation of `tracing:` (controlplane/resources/tracing.py): off by default and when written `off`
(a YAML 1.1 boolean), byte-identical resources then; on, Envoy's OpenTelemetry tracer with the YAML's sampling,
attempt spans, the OTLP cluster, tags that name no secret, and the provider and model on each endpoint."""

from __future__ import annotations

import pytest

from controlplane.envoy_api import to_dict
from controlplane.resources.route_index import route_dicts
from controlplane.snapshot import snapshot_of
from controlplane.translate import translate
from switchyard.config import load_config_text
from switchyard.config.errors import ConfigError
from switchyard.contract import OTLP_CLUSTER

_BASE = """
providers:
  p: {kind: openai, base_url: "http://127.0.0.1:9", api_key: sk-provider}
  an: {kind: anthropic, base_url: "http://127.0.0.1:9", api_key: sk-provider-an}
routes:
  - {model: oa, targets: [{name: t, provider: p, model: x}, {name: c, provider: an, model: claude-x}]}
"""


def _on(sampling: str = "0.25") -> str:
    return _BASE + f"tracing: {{otlp: collector.internal:4317, sampling: {sampling}}}\n"


@pytest.mark.parametrize("off", ["", "tracing: off\n", "tracing: false\n", "tracing: no\n"])
def test_tracing_is_off_by_default_and_when_written_off(off: str) -> None:
    config = load_config_text(_BASE + off)
    assert config.tracing is None
    assert snapshot_of(config).content_hash == snapshot_of(load_config_text(_BASE)).content_hash


def test_on_envoy_traces_each_request_and_attempt_into_the_otlp_cluster() -> None:
    envoy = translate(load_config_text(_on()))
    hcm = to_dict(envoy.listeners[0])["filter_chains"][0]["filters"][0]["typed_config"]
    tracing = hcm["tracing"]
    assert tracing["random_sampling"] == {"value": 25.0}
    assert tracing["spawn_upstream_span"] is True
    provider = tracing["provider"]["typed_config"]
    assert provider["grpc_service"]["envoy_grpc"]["cluster_name"] == OTLP_CLUSTER
    assert provider["service_name"] == "switchyard"
    (otlp,) = [to_dict(c) for c in envoy.clusters if c.name == OTLP_CLUSTER]
    address = otlp["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert address == {"address": "collector.internal", "port_value": 4317}
    tags = {t["tag"]: t["value"] for t in tracing["custom_tags"]}
    assert tags["switchyard.target"] == "%UPSTREAM_METADATA(switchyard:target)%"
    assert not any("HEADER" in value or "authorization" in value.lower() for value in tags.values())


def test_routes_say_their_operation_and_where_their_api_keeps_usage() -> None:
    routes = route_dicts(to_dict(translate(load_config_text(_on())).route_configs[0])["virtual_hosts"][0])
    by_name = {r["name"]: {t["tag"]: t["value"] for t in r.get("tracing", {}).get("custom_tags", [])} for r in routes}
    assert by_name["chat:oa"]["gen_ai.operation.name"] == "chat"
    assert by_name["chat:oa"]["gen_ai.usage.input_tokens"] == "%DYNAMIC_METADATA(switchyard.usage:prompt_tokens)%"
    assert by_name["messages:oa"]["gen_ai.usage.input_tokens"] == "%DYNAMIC_METADATA(switchyard.usage:input_tokens)%"
    assert by_name["embeddings:oa"]["gen_ai.operation.name"] == "embeddings"


def test_each_endpoint_names_its_provider_and_model_for_the_attempt_spans() -> None:
    envoy = translate(load_config_text(_on()))
    (cluster,) = [to_dict(c) for c in envoy.clusters if c.name == "route/oa"]
    metadata = [
        locality["lb_endpoints"][0]["metadata"]["filter_metadata"]["switchyard"]
        for locality in cluster["load_assignment"]["endpoints"]
    ]
    assert [(m["gen_ai_provider"], m["target_model"]) for m in metadata] == [("openai", "x"), ("anthropic", "claude-x")]


@pytest.mark.parametrize("bad", ["{sampling: 0.5}", "{otlp: collector, sampling: 0.5}", "{otlp: 'h:1', sampling: 2}"])
def test_tracing_mistakes_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        load_config_text(_BASE + f"tracing: {bad}\n")
