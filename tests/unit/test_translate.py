"""Config → Envoy resources, including each endpoint's per-attempt rewrite, checked without running Envoy.

Each test asserts something a request depends on: which cluster and priority a target lands in, how Envoy
retries, which path, credential and model each attempt gets, and that an API key sits only in its own
target's rewrite (never in routes, listeners or another target's endpoint).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
from envoy.config.cluster.v3.cluster_pb2 import Cluster
from envoy.config.core.v3 import health_check_pb2
from envoy.config.endpoint.v3.endpoint_components_pb2 import LbEndpoint
from envoy.config.route.v3.route_components_pb2 import Route as EnvoyRoute
from envoy.extensions.common.matching.v3.extension_matcher_pb2 import ExtensionWithMatcher
from envoy.extensions.filters.http.ext_proc.v3.ext_proc_pb2 import ExternalProcessor
from envoy.extensions.filters.http.header_mutation.v3.header_mutation_pb2 import HeaderMutation
from envoy.extensions.filters.http.health_check.v3.health_check_pb2 import HealthCheck
from envoy.extensions.filters.http.lua.v3.lua_pb2 import Lua
from envoy.extensions.filters.http.router.v3.router_pb2 import Router
from envoy.extensions.filters.network.http_connection_manager.v3.http_connection_manager_pb2 import HttpFilter
from envoy.extensions.transport_sockets.tls.v3.tls_pb2 import UpstreamTlsContext
from envoy.extensions.upstreams.http.v3.http_protocol_options_pb2 import HttpProtocolOptions
from envoy.type.matcher.v3.http_inputs_pb2 import HttpRequestHeaderMatchInput
from google.protobuf import json_format
from google.protobuf.message import Message

from controlplane.attempt_rewrite import describe
from controlplane.envoy_api import (
    CLUSTER_TYPE,
    LISTENER_TYPE,
    ROUTE_TYPE,
    HttpConnectionManager,
    to_dict,
)
from controlplane.envoy_code import attempt_rewrite_lua
from controlplane.live_state import LiveState
from controlplane.providers.azure_openai import DEFAULT_API_VERSION
from controlplane.resources.route_index import route_messages
from controlplane.serving_groups import cluster_name
from controlplane.snapshot import InconsistentSnapshotError, _check_consistency, build_snapshot
from controlplane.target_keys import target_key
from controlplane.translate import EnvoyResources, TranslateSettings, route_name, translate
from switchyard import contract
from switchyard.config import ClientEndpoint, Config, ConfigError, load_config, load_config_text
from switchyard.contract import EXTPROC_CLUSTER, LISTENER_NAME, REWRITE_METADATA_KEY, ROUTE_CONFIG_NAME, USAGE_KEYS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_ENV = {
    "OPENAI_API_KEY": "sk-example-openai-0123",
    "AZURE_OPENAI_KEY": "example-azure-key-4567",
    "ANTHROPIC_API_KEY": "sk-ant-example-89ab",
    "GEMINI_API_KEY": "example-gemini-key-cdef",
    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE0123",
    "AWS_SECRET_ACCESS_KEY": "example-aws-secret-4567",
}

OPENAI_KEY = "sk-translate-openai-7f3a9c"
AZURE_KEY = "azure-translate-key-51be0d"
PROXY_KEY = "proxy-translate-key-c0ffee"

# Every provider kind, https and http, default and explicit ports, base_url path prefixes, all vocabularies.
CONFIG = f"""\
listen: 0.0.0.0:9000
max_request_body: 1MiB
providers:
  openai:
    kind: openai
    base_url: https://api.openai.com
    api_key: {OPENAI_KEY}
  azure:
    kind: azure_openai
    base_url: https://res.openai.azure.com
    api_key: {AZURE_KEY}
    api_version: 2025-01-01-preview
  azure_default:
    kind: azure_openai
    base_url: https://other.openai.azure.com/
    api_key: {AZURE_KEY}
  local:
    kind: openai_compatible
    base_url: http://127.0.0.1:11434/v1
  proxied:
    kind: openai_compatible
    base_url: https://gateway.example.com:8443/team-a/
    api_key: {PROXY_KEY}
routes:
  - model: gpt-4
    fallback_codes: [503, 429, 500]
    timeout: 12s
    targets:
      - {{name: first, provider: openai, model: gpt-4o, priority: 10}}
      - {{name: second, provider: azure, model: dep-4o, priority: 5}}
      - {{provider: local, model: llama3, priority: 10, weight: 3}}
  - model: ab
    strategy: weighted
    timeout: 500ms
    targets:
      - {{name: a, provider: openai, model: gpt-4o, weight: 9}}
      - {{name: b, provider: proxied, model: team-model, weight: 1}}
      - {{name: c, provider: azure_default, model: dep-mini, weight: 2}}
  - model: seed
    primary: {{provider: openai, name: chatgpt-4, suffix: /v1/engines/gpt-4/generate}}
    fallback_codes: [502]
    backup: {{provider: azure, name: dep-35, suffix: /custom/run}}
"""


def load(text: str = CONFIG, environ: Mapping[str, str] | None = None) -> Config:
    return load_config_text(textwrap.dedent(text), source="test.yaml", environ=environ or {})


@pytest.fixture(scope="module")
def config() -> Config:
    return load()


@pytest.fixture(scope="module")
def resources(config: Config) -> EnvoyResources:
    return translate(config)


@pytest.fixture(scope="module")
def table(resources: EnvoyResources) -> EnvoyResources:
    """The resources again, read for the per-attempt rewrites their endpoints carry."""
    return resources


def clusters_by_name(resources: EnvoyResources) -> dict[str, Cluster]:
    return {c.name: c for c in resources.clusters}


def envoy_routes(resources: EnvoyResources) -> list[EnvoyRoute]:
    (route_config,) = resources.route_configs
    (vhost,) = route_config.virtual_hosts
    return list(route_messages(vhost))


def envoy_route(resources: EnvoyResources, name: str) -> EnvoyRoute:
    """The route of that name that takes requests no flag narrows (flagged ones match on a second member)."""
    matches = [r for r in envoy_routes(resources) if r.name == name and len(r.match.dynamic_metadata) <= 1]
    assert len(matches) == 1, f"expected one Envoy route named {name!r}, found {len(matches)}"
    return matches[0]


def lb_endpoints(cluster: Cluster) -> list[tuple[int, LbEndpoint]]:
    """(Envoy priority, endpoint) for every endpoint of the cluster."""
    return [(locality.priority, lb) for locality in cluster.load_assignment.endpoints for lb in locality.lb_endpoints]


def endpoint_metadata(lb: LbEndpoint, namespace: str) -> dict[str, object]:
    return json_format.MessageToDict(lb.metadata.filter_metadata[namespace])


def endpoint_by_target(cluster: Cluster, target: str) -> tuple[int, LbEndpoint]:
    found = [(p, lb) for p, lb in lb_endpoints(cluster) if endpoint_metadata(lb, "switchyard")["target"] == target]
    assert len(found) == 1, f"target {target!r} should be exactly one endpoint of {cluster.name}"
    return found[0]


def locality_weight(cluster: Cluster, target: str) -> int:
    localities = cluster.load_assignment.endpoints
    (weight,) = [loc.load_balancing_weight.value for loc in localities if loc.locality.sub_zone == target]
    return int(weight)


@dataclass(frozen=True)
class Rewrite:
    """A target's rewrite as the Lua filter reads it from the endpoint (envoy/lua/attempt_rewrite.lua)."""

    paths: dict[str, str]
    set_headers: dict[str, str]
    remove_headers: list[str]
    model: str  # the body's new model, "" when the body is left alone
    fix_length: bool
    translations: dict[str, str]


def decode_rewrite(lb: LbEndpoint) -> Rewrite:
    encoded = lb.metadata.filter_metadata["switchyard"].fields[REWRITE_METADATA_KEY].string_value
    pairs = parse_qsl(encoded, keep_blank_values=True, strict_parsing=True)
    assert len({name for name, _ in pairs}) == len(pairs), "each name once"
    fields = dict(pairs)

    def prefixed(prefix: str) -> dict[str, str]:
        return {name[len(prefix) :]: value for name, value in fields.items() if name.startswith(prefix)}

    return Rewrite(
        paths=prefixed("path."),
        set_headers=prefixed("set."),
        remove_headers=[h for h in fields["remove"].split(",") if h],
        model=json.loads(fields["model"]) if "model" in fields else "",
        fix_length=fields.get("length") == "1",
        translations=prefixed("translate.") | prefixed("rules."),
    )


def rewrite_entry(resources: EnvoyResources, route: str, target: str) -> Rewrite:
    """The rewrite of `target` for every client: from the route's cluster for OpenAI clients and the one for
    Anthropic clients (a target's paths and translations differ between them; nothing else does)."""
    clusters = clusters_by_name(resources)
    parts = [
        decode_rewrite(endpoint_by_target(clusters[name], target)[1])
        for name in (f"route/{route}", f"route/{route}@anthropic")
        if name in clusters
    ]
    first = parts[0]
    for other in parts[1:]:
        assert (other.set_headers, other.remove_headers, other.model) == (
            first.set_headers,
            first.remove_headers,
            first.model,
        )
    return Rewrite(
        paths={k: v for part in parts for k, v in part.paths.items()},
        set_headers=first.set_headers,
        remove_headers=first.remove_headers,
        model=first.model,
        fix_length=first.fix_length,
        translations={k: v for part in parts for k, v in part.translations.items()},
    )


def set_headers(entry: Rewrite) -> dict[str, str]:
    return entry.set_headers


def upstream_options(cluster: Cluster) -> HttpProtocolOptions:
    options = HttpProtocolOptions()
    packed = cluster.typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert packed.Unpack(options)
    return options


def upstream_chain(resources: EnvoyResources) -> list[HttpFilter]:
    """The router's upstream filters, which serve every cluster without filters of its own."""
    hcm = HttpConnectionManager()
    assert resources.listeners[0].filter_chains[0].filters[0].typed_config.Unpack(hcm)
    router = Router()
    assert hcm.http_filters[-1].typed_config.Unpack(router)
    return list(router.upstream_http_filters)


# --- clusters -------------------------------------------------------------------------------------------


def test_one_cluster_per_route_and_client_api_named_after_the_model(config: Config, resources: EnvoyResources) -> None:
    # OpenAI clients' cluster first; Anthropic clients' calls are translated for every target of these routes.
    assert [c.name for c in resources.clusters] == [
        "route/gpt-4",
        "route/gpt-4@anthropic",
        "route/gpt-4@responses",
        "route/gpt-4@responses~first+second",  # requests only OpenAI can serve (see responses_only)
        "route/gpt-4@anthropic~first",  # token counts: only OpenAI itself counts (not Azure, not compatible servers)
        "route/gpt-4@responses~first",
        "route/ab",
        "route/ab@anthropic",
        "route/ab@responses",
        "route/ab@responses~a+c",
        "route/ab@anthropic~a",
        "route/ab@responses~a",
        "route/seed",
        "route/seed@anthropic",
        "route/seed@responses",
    ]
    assert [cluster_name(r) for r in config.routes] == ["route/gpt-4", "route/ab", "route/seed"]
    assert cluster_name(config.routes[0], "anthropic") == "route/gpt-4@anthropic"
    assert cluster_name(config.routes[0], "responses") == "route/gpt-4@responses"
    for cluster in resources.clusters:
        assert cluster.load_assignment.cluster_name == cluster.name
        # A locality per target, weighted: see the next tests.
        assert cluster.common_lb_config.HasField("locality_weighted_lb_config")


def test_priorities_are_normalised_to_consecutive_envoy_levels(resources: EnvoyResources) -> None:
    # Config priorities 5 and 10 (10 used twice) become Envoy levels 0 and 1: Envoy rejects gaps.
    cluster = clusters_by_name(resources)["route/gpt-4"]
    assert sorted({locality.priority for locality in cluster.load_assignment.endpoints}) == [0, 1]
    assert endpoint_by_target(cluster, "second")[0] == 0
    assert endpoint_by_target(cluster, "first")[0] == 1
    assert endpoint_by_target(cluster, "local/llama3")[0] == 1


def test_seed_vocabulary_maps_primary_and_backup_to_priorities_0_and_1(resources: EnvoyResources) -> None:
    cluster = clusters_by_name(resources)["route/seed"]
    assert endpoint_by_target(cluster, "primary")[0] == 0
    assert endpoint_by_target(cluster, "backup")[0] == 1


def test_weighted_route_puts_every_target_in_one_priority_with_its_weight(resources: EnvoyResources) -> None:
    cluster = clusters_by_name(resources)["route/ab"]
    assert {p for p, _ in lb_endpoints(cluster)} == {0}
    assert {t: locality_weight(cluster, t) for t in ("a", "b", "c")} == {"a": 9, "b": 1, "c": 2}
    # Weights apply within priority routes too (default 1).
    gpt4 = clusters_by_name(resources)["route/gpt-4"]
    assert locality_weight(gpt4, "local/llama3") == 3
    assert locality_weight(gpt4, "first") == 1


def test_a_target_is_one_locality_so_its_share_does_not_depend_on_how_many_addresses_it_resolves_to(
    resources: EnvoyResources,
) -> None:
    ab = clusters_by_name(resources)["route/ab"]
    assert [loc.locality.sub_zone for loc in ab.load_assignment.endpoints] == ["a", "b", "c"]
    assert {len(loc.lb_endpoints) for loc in ab.load_assignment.endpoints} == {1}
    assert {lb.load_balancing_weight.value for _, lb in lb_endpoints(ab)} == {0}, "addresses share evenly"


def test_endpoint_metadata_carries_the_rewrite_key_and_display_name(config: Config, resources: EnvoyResources) -> None:
    clusters = clusters_by_name(resources)
    for route in config.routes:
        cluster = clusters[cluster_name(route)]
        assert len(lb_endpoints(cluster)) == len(route.targets)
        for target in route.targets:
            _, lb = endpoint_by_target(cluster, target.display_name)
            metadata = endpoint_metadata(lb, "switchyard")
            assert metadata.pop(REWRITE_METADATA_KEY)
            assert metadata == {"key": target_key(route, target), "target": target.display_name}


@pytest.mark.parametrize(
    ("route", "target", "host", "port", "hostname", "tls"),
    [
        ("gpt-4", "first", "api.openai.com", 443, "api.openai.com", True),
        ("gpt-4", "second", "res.openai.azure.com", 443, "res.openai.azure.com", True),
        ("gpt-4", "local/llama3", "127.0.0.1", 11434, "127.0.0.1:11434", False),
        ("ab", "b", "gateway.example.com", 8443, "gateway.example.com:8443", True),
    ],
)
def test_endpoint_address_hostname_and_tls_follow_the_provider_url(
    resources: EnvoyResources, route: str, target: str, host: str, port: int, hostname: str, tls: bool
) -> None:
    _, lb = endpoint_by_target(clusters_by_name(resources)[f"route/{route}"], target)
    assert lb.endpoint.address.socket_address.address == host
    assert lb.endpoint.address.socket_address.port_value == port
    # auto_host_rewrite sends this as the Host header: the port only when it is not the scheme's default.
    assert lb.endpoint.hostname == hostname
    assert endpoint_metadata(lb, "envoy.transport_socket_match") == {"tls_host": host if tls else ""}


def test_explicit_default_port_is_not_part_of_the_host_header() -> None:
    text = CONFIG.replace("base_url: https://api.openai.com\n", "base_url: https://api.openai.com:443\n")
    _, lb = endpoint_by_target(clusters_by_name(translate(load(text)))["route/gpt-4"], "first")
    assert lb.endpoint.address.socket_address.port_value == 443
    assert lb.endpoint.hostname == "api.openai.com"


def test_each_https_host_gets_its_own_sni_and_verified_name_with_the_configured_ca(config: Config) -> None:
    resources = translate(config, TranslateSettings(tls_ca_file="/opt/custom/ca.pem"))
    matches = {m.name: m for c in resources.clusters for m in c.transport_socket_matches}
    # Not derived from the Host header: that carries the port for gateway.example.com:8443.
    assert {"tls:api.openai.com", "tls:res.openai.azure.com", "tls:gateway.example.com"} <= set(matches)
    for name, socket_match in matches.items():
        host = name.removeprefix("tls:")
        assert json_format.MessageToDict(socket_match.match) == {"tls_host": host}
        tls = UpstreamTlsContext()
        assert socket_match.transport_socket.typed_config.Unpack(tls)
        assert tls.sni == host
        validation = tls.common_tls_context.validation_context
        assert validation.trusted_ca.filename == "/opt/custom/ca.pem"
        (san,) = validation.match_typed_subject_alt_names
        assert san.matcher.exact == host


def test_plain_http_hosts_get_no_tls_socket(resources: EnvoyResources) -> None:
    names = {m.name for c in resources.clusters for m in c.transport_socket_matches}
    assert "tls:127.0.0.1" not in names


def test_idle_connections_close_before_the_providers_close_them(resources: EnvoyResources) -> None:
    """Envoy keeps idle upstream connections an hour by default; servers close theirs much sooner (uvicorn: 5 s),
    and a request that leaves on one as the server closes it is lost."""
    for cluster in resources.clusters:
        if cluster.name.startswith("route/"):
            assert upstream_options(cluster).common_http_protocol_options.idle_timeout.ToMilliseconds() == 4000


def test_a_route_closes_idle_connections_at_the_shortest_of_its_providers_timeouts() -> None:
    text = CONFIG.replace(
        "    base_url: http://127.0.0.1:11434/v1\n",
        "    base_url: http://127.0.0.1:11434/v1\n    idle_timeout: 1500ms\n",
    )
    text = text.replace(
        "    api_version: 2025-01-01-preview\n", "    api_version: 2025-01-01-preview\n    idle_timeout: 2m\n"
    )
    clusters = clusters_by_name(translate(load(text)))
    idle = {
        name: upstream_options(c).common_http_protocol_options.idle_timeout.ToMilliseconds()
        for name, c in clusters.items()
    }
    assert idle["route/gpt-4"] == 1500  # openai (default 4s), azure (2m) and local (1.5s)
    assert idle["route/ab"] == 4000  # openai, proxied, azure_default: all the default


def test_circuit_breakers_do_not_cap_concurrent_retries(resources: EnvoyResources) -> None:
    for cluster in resources.clusters:
        thresholds = cluster.circuit_breakers.thresholds
        assert thresholds, f"{cluster.name} has no circuit breaker thresholds (Envoy's default allows 3 retries)"
        for threshold in thresholds:
            assert threshold.max_retries.value >= 10_000


def test_outlier_detection_is_configured(resources: EnvoyResources) -> None:
    for cluster in resources.clusters:
        assert cluster.HasField("outlier_detection")
        assert cluster.outlier_detection.consecutive_gateway_failure.value >= 1


SAME_API_FILTERS = ["envoy.filters.http.header_mutation", "envoy.filters.http.lua", "envoy.filters.http.upstream_codec"]
# The ext_proc (whole answers in one message, streamed ones chunk by chunk as it asks), after the Lua filter that
# handles the response headers it is not sent.
TRANSLATING_FILTERS = [
    *SAME_API_FILTERS[:2],
    "switchyard.translated_response",
    "switchyard.translate",
    SAME_API_FILTERS[2],
]
RULES_FILTERS = [*SAME_API_FILTERS[:2], "switchyard.body_rules", SAME_API_FILTERS[2]]


def test_every_attempt_is_rewritten_in_envoy_by_one_chain_and_same_api_attempts_never_reach_the_extproc(
    resources: EnvoyResources,
) -> None:
    # The router's: the rewrite alone, for the clusters whose attempts never need the ext_proc.
    filters = upstream_chain(resources)
    assert [f.name for f in filters] == SAME_API_FILTERS
    mutation = HeaderMutation()
    assert filters[0].typed_config.Unpack(mutation)
    *sessions, remove, append = mutation.mutations.request_mutations
    # Switchyard's own session headers (set for affinity routing) never reach a provider.
    assert [m.remove for m in sessions] == [f.header for f in contract.ALL_SESSION_FIELDS]
    assert remove.remove == "x-switchyard-rewrite", "a client's own header never survives to the Lua filter"
    # The picked endpoint's rewrite, overwritten on every attempt, for the Lua filter to apply.
    assert append.append.header.key == "x-switchyard-rewrite"
    assert append.append.header.value == "%UPSTREAM_METADATA(switchyard:rewrite)%"
    assert append.append.append_action == append.append.OVERWRITE_IF_EXISTS_OR_ADD
    lua = Lua()
    assert filters[1].typed_config.Unpack(lua)
    assert lua.default_source_code.inline_string == attempt_rewrite_lua()
    assert "function envoy_on_request" in lua.default_source_code.inline_string
    for cluster in resources.clusters:
        # Anthropic clients of OpenAI targets: every attempt translated; Responses clients of an OpenAI-compatible
        # server without the Responses API: attempts to it translated (to chat completions); Anthropic clients'
        # token counts at OpenAI (`~first`, `~a`: the targets that count): translated to OpenAI's input_tokens.
        # Those clusters have their own filters, with the ext_proc; the others none.
        translated = cluster.name.partition("~")[0].endswith("@anthropic") or cluster.name in (
            "route/gpt-4@responses",
            "route/ab@responses",
        )
        asks = {e for _, lb in lb_endpoints(cluster) for e in decode_rewrite(lb).translations}
        assert bool(asks) == translated, cluster.name
        own = [f.name for f in upstream_options(cluster).http_filters]
        assert own == (TRANSLATING_FILTERS if translated else []), cluster.name
        if translated:
            assert upstream_options(cluster).http_filters[:2] == filters[:2], "the same rewrite as the router's"


def test_the_upstream_chain_is_the_same_whatever_the_config(resources: EnvoyResources) -> None:
    """A reload changes clusters before the connections opened earlier leave the old listener: a chain that
    changed with the config would meet endpoints it was not built for."""
    minimal = textwrap.dedent(
        """
        providers:
          local: {kind: openai, base_url: "http://127.0.0.1:9", api_key: sk-local}
        routes:
          - model: one
            targets: [{provider: local, model: llama3}]
        """
    )
    assert upstream_chain(translate(load(minimal))) == upstream_chain(resources)


def test_routes_with_a_target_of_another_api_add_the_extproc_only_for_attempts_that_ask_for_it() -> None:
    text = CONFIG.replace(
        "routes:\n",
        "  claude:\n    kind: anthropic\n    base_url: https://api.anthropic.com\n    api_key: sk-ant-translate\n"
        "routes:\n  - model: mixed\n"
        "    targets: [{name: o, provider: openai, model: gpt-4o}, {name: c, provider: claude, model: claude-4}]\n",
        1,
    )
    clusters = clusters_by_name(translate(load(text)))
    filters = upstream_options(clusters["route/mixed"]).http_filters
    assert upstream_options(clusters["route/mixed@anthropic"]).http_filters == filters
    assert [f.name for f in filters] == TRANSLATING_FILTERS
    wrapper = ExtensionWithMatcher()
    assert filters[3].typed_config.Unpack(wrapper)
    ext_proc = ExternalProcessor()
    assert wrapper.extension_config.typed_config.Unpack(ext_proc)
    assert ext_proc.grpc_service.envoy_grpc.cluster_name == EXTPROC_CLUSTER
    # An untranslated body must never reach a provider of another API.
    assert ext_proc.failure_mode_allow is False
    # No response headers message: a whole answer costs three messages, a stream two and one per chunk (the
    # ext_proc asks for chunks in its answer to a streamed request's headers: the only override allowed).
    mode = ext_proc.processing_mode
    assert (mode.request_header_mode, mode.response_header_mode) == (mode.SEND, mode.SKIP)
    assert (mode.request_body_mode, mode.response_body_mode) == (mode.BUFFERED, mode.BUFFERED)
    assert ext_proc.allow_mode_override
    (override,) = ext_proc.allowed_override_modes
    assert json_format.MessageToDict(override, preserving_proto_field_name=True) == (contract.TRANSLATED_STREAM_MODE)
    assert not ext_proc.request_attributes, "everything the ext_proc needs travels in the request header"
    # Of the request headers it gets only what it reads: never a provider's credentials (the Lua filter
    # before it has set them), nor anything of the client's.
    forwarded = [p.exact for p in ext_proc.forward_rules.allowed_headers.patterns]
    assert forwarded == list(contract.EXTPROC_READS_HEADERS)
    assert not {"authorization", "x-api-key", "api-key", "x-goog-api-key"} & set(forwarded)
    # Envoy skips the ext_proc on attempts without a header the Lua filter sets for translated attempts.
    (matcher,) = wrapper.xds_matcher.matcher_list.matchers
    names = []
    for alternative in matcher.predicate.not_matcher.or_matcher.predicate:
        header_input = HttpRequestHeaderMatchInput()
        assert alternative.single_predicate.input.typed_config.Unpack(header_input)
        names.append(header_input.header_name)
    assert names == [contract.TRANSLATE_HEADER, contract.TRANSLATE_STREAM_HEADER]
    assert matcher.on_match.action.typed_config.type_url.endswith("SkipFilter")
    # Same-API clusters of the same config have no filters of their own: the router's have no ext_proc.
    assert not upstream_options(clusters["route/gpt-4"]).http_filters
    # For OpenAI clients only the Anthropic target translates, for Anthropic clients only the OpenAI one.
    _, openai_endpoint = endpoint_by_target(clusters["route/mixed"], "o")
    _, claude_endpoint = endpoint_by_target(clusters["route/mixed"], "c")
    assert set(decode_rewrite(openai_endpoint).translations) == set()
    assert set(decode_rewrite(claude_endpoint).translations) == {"chat"}
    _, openai_for_anthropic_clients = endpoint_by_target(clusters["route/mixed@anthropic"], "o")
    assert set(decode_rewrite(openai_for_anthropic_clients).translations) == {"messages", "count_tokens"}
    count = contract.decode_translation_request(
        decode_rewrite(openai_for_anthropic_clients).translations["count_tokens"]
    )
    assert count is not None and (count.provider_api, count.operation) == ("responses", "count_tokens")
    request = contract.decode_translation_request(decode_rewrite(claude_endpoint).translations["chat"])
    assert request == contract.TranslationRequest(
        client_api="openai", provider_api="anthropic", model="claude-4", client_model="mixed", route="mixed", target="c"
    )
    # A translated attempt changes the body, so every attempt of the route resets content-length.
    assert decode_rewrite(openai_endpoint).fix_length and decode_rewrite(claude_endpoint).fix_length


def test_only_attempts_to_a_target_with_body_rules_ask_the_extproc_for_rules_only() -> None:
    text = CONFIG.replace(
        "routes:\n",
        "routes:\n  - model: ruled\n"
        "    targets:\n"
        "      - {name: reasoning, provider: openai, model: o3, body: {drop: [temperature], cap: {max_tokens: 9}}}\n"
        "      - {name: plain, provider: openai, model: gpt-4o}\n",
        1,
    )
    clusters = clusters_by_name(translate(load(text)))
    filters = upstream_options(clusters["route/ruled"]).http_filters
    assert [f.name for f in filters] == RULES_FILTERS
    wrapper = ExtensionWithMatcher()
    assert filters[2].typed_config.Unpack(wrapper)
    ext_proc = ExternalProcessor()
    assert wrapper.extension_config.typed_config.Unpack(ext_proc)
    mode = ext_proc.processing_mode
    assert mode.response_body_mode == mode.NONE, "a rules-only attempt skips the response"
    _, ruled = endpoint_by_target(clusters["route/ruled"], "reasoning")
    _, plain = endpoint_by_target(clusters["route/ruled"], "plain")
    assert decode_rewrite(plain).translations == {}, "other targets stay on the native path"
    request = contract.decode_translation_request(decode_rewrite(ruled).translations["chat"])
    assert request is not None
    assert (request.client_api, request.provider_api, request.model) == ("openai", "openai", "o3")
    assert json.loads(request.body_rules) == {"drop": ["temperature"], "cap": {"max_tokens": 9}}
    assert decode_rewrite(plain).fix_length and decode_rewrite(ruled).fix_length
    # Same-API routes without rules never reach the ext_proc: no filters of their own.
    assert not upstream_options(clusters["route/gpt-4"]).http_filters


def test_gemini_targets_take_the_model_in_the_path_the_key_in_its_header_and_always_translate() -> None:
    text = CONFIG.replace(
        "routes:\n",
        "  gm:\n    kind: gemini\n    base_url: https://generativelanguage.googleapis.com\n    api_key: g-key\n"
        "routes:\n  - model: gem\n    targets: [{name: g, provider: gm, model: gemini-2.5-pro}]\n",
        1,
    )
    entry = rewrite_entry(translate(load(text)), "gem", "g")
    assert entry.paths == {
        "chat": "/v1beta/models/gemini-2.5-pro:generateContent",
        "messages": "/v1beta/models/gemini-2.5-pro:generateContent",
        "count_tokens": "/v1beta/models/gemini-2.5-pro:countTokens",
    }
    count = contract.decode_translation_request(entry.translations["count_tokens"])
    assert count is not None and (count.operation, count.stream_path) == ("count_tokens", ""), "a count never streams"
    assert entry.set_headers == {"x-goog-api-key": "g-key"}
    assert "x-goog-api-key" not in entry.remove_headers and "authorization" in entry.remove_headers
    for endpoint, client_api in (("chat", "openai"), ("messages", "anthropic")):
        request = contract.decode_translation_request(entry.translations[endpoint])
        assert request is not None and (request.client_api, request.provider_api) == (client_api, "gemini")
        assert request.stream_path == "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"


def test_bedrock_targets_are_signed_by_the_extproc_and_their_credentials_hidden_from_reviews() -> None:
    text = CONFIG.replace(
        "routes:\n",
        "  br:\n    kind: bedrock\n    region: eu-west-3\n    access_key_id: AKIDTRANSLATE\n"
        "    secret_access_key: br-secret-translate\n    session_token: br-token-translate\n"
        "routes:\n  - model: bed\n"
        "    targets: [{name: b, provider: br, model: 'anthropic.claude-3-haiku-20240307-v1:0'}]\n",
        1,
    )
    config = load(text)
    assert config.providers["br"].base_url == "https://bedrock-runtime.eu-west-3.amazonaws.com"
    entry = rewrite_entry(translate(config), "bed", "b")
    model = "anthropic.claude-3-haiku-20240307-v1%3A0"
    assert entry.paths == {
        "chat": f"/model/{model}/converse",
        "messages": f"/model/{model}/converse",
        "count_tokens": f"/model/{model}/count-tokens",
    }
    assert entry.set_headers == {}, "no credential header: the signature is the ext_proc's"
    assert {"authorization", "x-amz-date", "x-amz-security-token"} <= set(entry.remove_headers)
    request = contract.decode_translation_request(entry.translations["chat"])
    assert request is not None and request.provider_api == "bedrock"
    assert request.stream_path == f"/model/{model}/converse-stream"
    signing = dict(parse_qsl(request.sigv4))
    assert signing == {
        "host": "bedrock-runtime.eu-west-3.amazonaws.com",
        "region": "eu-west-3",
        "service": "bedrock",
        "access_key_id": "AKIDTRANSLATE",
        "secret_access_key": "br-secret-translate",
        "session_token": "br-token-translate",
    }
    cluster = clusters_by_name(translate(config))["route/bed"]
    encoded = endpoint_by_target(cluster, "b")[1].metadata.filter_metadata["switchyard"].fields[REWRITE_METADATA_KEY]
    described = json.dumps(describe(encoded.string_value))
    assert "br-secret-translate" not in described and "AKIDTRANSLATE" not in described


def test_buffer_limits_follow_max_request_body(config: Config, resources: EnvoyResources) -> None:
    (route_config,) = resources.route_configs
    assert route_config.virtual_hosts[0].request_body_buffer_limit.value == config.max_request_body == 1024 * 1024
    for cluster in resources.clusters:
        assert cluster.per_connection_buffer_limit_bytes.value >= config.max_request_body


# --- listener and routes ----------------------------------------------------------------------------------


def test_listener_binds_the_listen_address_and_uses_the_route_configuration(resources: EnvoyResources) -> None:
    (listener,) = resources.listeners
    assert listener.name == LISTENER_NAME
    assert listener.address.socket_address.address == "0.0.0.0"
    assert listener.address.socket_address.port_value == 9000
    hcm = HttpConnectionManager()
    assert listener.filter_chains[0].filters[0].typed_config.Unpack(hcm)
    assert hcm.rds.route_config_name == ROUTE_CONFIG_NAME == resources.route_configs[0].name
    # The model must be in dynamic metadata before the router matches on it, and in the routing key right after
    # (route_index.py); readiness needs no body at all. Streams' usage is read on their way to the client, after
    # the router.
    assert [f.name for f in hcm.http_filters] == [
        "envoy.filters.http.health_check",
        "envoy.filters.http.json_to_metadata",
        "switchyard.route_key",
        "switchyard.stream_usage",
        "envoy.filters.http.router",
    ]
    readiness = HealthCheck()
    assert hcm.http_filters[0].typed_config.Unpack(readiness)
    assert readiness.pass_through_mode.value is False
    assert [(h.name, h.string_match.exact) for h in readiness.headers] == [(":path", "/healthz")]


@pytest.mark.parametrize("endpoint", list(ClientEndpoint))
def test_each_model_is_routed_on_every_client_endpoint_by_its_metadata(
    config: Config, resources: EnvoyResources, endpoint: ClientEndpoint
) -> None:
    assert {e.path for e in ClientEndpoint} == {
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/messages",
        "/v1/responses",
        "/v1/messages/count_tokens",
        "/v1/responses/input_tokens",
    }
    for route in config.routes:
        envoy = envoy_route(resources, route_name(endpoint, route))
        assert envoy.match.path == endpoint.path
        assert [(h.name, h.string_match.exact) for h in envoy.match.headers] == [(":method", "POST")]
        (metadata,) = envoy.match.dynamic_metadata
        assert metadata.filter == "switchyard"
        assert [segment.key for segment in metadata.path] == ["model"]
        assert metadata.value.string_match.exact == route.model
        if envoy.HasField("direct_response"):  # seed's targets have no token counting (see the test below)
            assert endpoint.counts_tokens and route.model == "seed"
            continue
        # Token counts go to the targets that count: a cluster narrowed to them, unless that is all of them.
        assert envoy.route.cluster.partition("~")[0] == cluster_name(route, endpoint.api)
        assert ("~" in envoy.route.cluster) == endpoint.counts_tokens
        assert envoy.route.auto_host_rewrite.value is True


def test_token_counts_go_to_the_targets_that_count_and_routes_with_none_answer_400(resources: EnvoyResources) -> None:
    """OpenAI counts; Azure (no counting API) and chat-only compatible servers do not, so gpt-4's counts go to
    its OpenAI target alone, in both client APIs, and seed (OpenAI behind a non-Responses suffix, Azure) has
    none: a 400 naming the targets, in the client's shape (the Anthropic one by its route name)."""
    for endpoint, cluster in (
        (ClientEndpoint.MESSAGES_COUNT_TOKENS, "route/gpt-4@anthropic~first"),
        (ClientEndpoint.RESPONSES_INPUT_TOKENS, "route/gpt-4@responses~first"),
    ):
        envoy = envoy_route(resources, f"{endpoint.value}:gpt-4")
        assert envoy.route.cluster == cluster
        assert envoy.route.retry_policy.num_retries.value == 0
        refused = envoy_route(resources, f"{endpoint.value}:seed")
        assert refused.direct_response.status == 400
        assert refused.direct_response.body.inline_string == (
            f"No target of model seed can serve {endpoint.path}: primary (openai), backup (azure_openai). "
            "Token counts come from the provider's own counting API, which OpenAI, Anthropic, Bedrock and Gemini "
            "have and Azure OpenAI and OpenAI-compatible servers do not."
        )


@pytest.mark.parametrize("endpoint", [e for e in ClientEndpoint if not e.counts_tokens])
def test_retry_policy_fails_over_once_per_target(
    config: Config, resources: EnvoyResources, endpoint: ClientEndpoint
) -> None:
    for route in config.routes:
        envoy = envoy_route(resources, route_name(endpoint, route))
        policy = envoy.route.retry_policy
        assert list(policy.retriable_status_codes) == sorted(route.fallback_codes)
        assert policy.num_retries.value == len(route.targets) - 1
        assert policy.per_try_timeout.ToTimedelta().total_seconds() == pytest.approx(route.timeout)
        assert {"retriable-status-codes", "reset", "connect-failure"} <= set(policy.retry_on.split(","))
        assert [p.name for p in policy.retry_host_predicate] == ["envoy.retry_host_predicates.previous_hosts"]
        assert policy.retry_priority.name == "envoy.retry_priorities.previous_priorities"
        # The stream idle timer must not fire while attempts time out one after another.
        attempts = policy.num_retries.value + 1
        assert envoy.route.idle_timeout.ToTimedelta().total_seconds() > route.timeout * attempts


def test_route_specific_values(resources: EnvoyResources) -> None:
    gpt4 = envoy_route(resources, "chat:gpt-4").route.retry_policy
    assert list(gpt4.retriable_status_codes) == [429, 500, 503]
    assert gpt4.num_retries.value == 2
    assert gpt4.per_try_timeout.ToTimedelta().total_seconds() == 12.0
    ab = envoy_route(resources, "embeddings:ab").route.retry_policy
    assert ab.per_try_timeout.ToTimedelta().total_seconds() == 0.5
    assert ab.num_retries.value == 2
    seed = envoy_route(resources, "completions:seed").route.retry_policy
    assert list(seed.retriable_status_codes) == [502]
    assert seed.num_retries.value == 1


def test_client_error_routes_come_after_every_model_route(config: Config, resources: EnvoyResources) -> None:
    names = [r.name for r in envoy_routes(resources)]
    model_routes = {route_name(e, r) for r in config.routes for e in ClientEndpoint}
    assert model_routes <= set(names)
    last_model_route = max(names.index(n) for n in model_routes)
    error_routes = [i for i, n in enumerate(names) if n.startswith("error:")]
    assert error_routes, "expected the client-error catch-alls"
    assert min(error_routes) > last_model_route
    # The final route catches every unknown path, so nothing falls through to Envoy's plain-text 404.
    final = envoy_routes(resources)[-1]
    assert final.match.prefix == "/"
    assert final.HasField("direct_response")


def test_models_list_names_every_routed_model(resources: EnvoyResources) -> None:
    models = envoy_route(resources, "models")
    assert models.match.path == "/v1/models"
    body = models.direct_response.body.inline_string
    for model in ("gpt-4", "ab", "seed"):
        assert f'"id": "{model}"' in body


def test_sub_millisecond_timeouts_are_rejected_rather_than_rounded_to_zero() -> None:
    # A per_try_timeout of 0 would mean "no timeout"; Envoy rejects a connect_timeout of 0.
    with pytest.raises(ConfigError, match="must be at least 1ms"):
        load(CONFIG.replace("timeout: 500ms", "timeout: 0.4ms"))


def test_every_accepted_timeout_translates_to_a_positive_envoy_duration() -> None:
    text = CONFIG.replace("timeout: 500ms", "timeout: 1ms")
    resources = translate(load(text))
    policy = envoy_route(resources, "chat:ab").route.retry_policy
    assert policy.per_try_timeout.ToTimedelta().total_seconds() > 0
    assert clusters_by_name(resources)["route/ab"].connect_timeout.ToTimedelta().total_seconds() > 0


# --- secrets ---------------------------------------------------------------------------------------------


def all_envoy_messages(resources: EnvoyResources) -> list[Message]:
    return [*resources.listeners, *resources.route_configs, *resources.clusters]


def _without_rewrites(message: Message) -> Message:
    """A copy of a cluster with its endpoints' rewrites removed: the only place keys may be."""
    copy = type(message)()
    copy.CopyFrom(message)
    if isinstance(copy, Cluster):
        for locality in copy.load_assignment.endpoints:
            for lb in locality.lb_endpoints:
                del lb.metadata.filter_metadata["switchyard"].fields[REWRITE_METADATA_KEY]
    return copy


def assert_keys_only_in_their_targets_rewrite(resources: EnvoyResources, secrets: Mapping[str, str]) -> None:
    """Keys reach Envoy (over ADS, into memory), but only inside the endpoint of a target that uses them."""
    for message in all_envoy_messages(resources):
        stripped = _without_rewrites(message)
        for secret in secrets.values():
            assert secret.encode() not in stripped.SerializeToString(), f"{secret!r} in {type(message).__name__}"
            assert secret not in str(to_dict(stripped))
    for cluster in resources.clusters:
        for _, lb in lb_endpoints(cluster):
            sent = set(decode_rewrite(lb).set_headers.values())
            for name, secret in secrets.items():
                if any(secret in value for value in sent):
                    assert secret in " ".join(sent), name


def test_api_keys_are_only_in_the_rewrites_of_their_targets(resources: EnvoyResources) -> None:
    assert len(all_envoy_messages(resources)) == 17
    assert_keys_only_in_their_targets_rewrite(resources, {"openai": OPENAI_KEY, "azure": AZURE_KEY, "proxy": PROXY_KEY})
    assert rewrite_entry(resources, "gpt-4", "first").set_headers == {"authorization": f"Bearer {OPENAI_KEY}"}
    assert rewrite_entry(resources, "gpt-4", "second").set_headers == {"api-key": AZURE_KEY}
    assert rewrite_entry(resources, "ab", "b").set_headers == {"authorization": f"Bearer {PROXY_KEY}"}


def test_api_keys_of_the_example_are_only_in_the_rewrites_of_their_targets() -> None:
    config = load_config(ROOT / "examples" / "switchyard.yaml", environ=EXAMPLE_ENV)
    resources = translate(config)
    assert_keys_only_in_their_targets_rewrite(resources, EXAMPLE_ENV)
    sent = {v for c in resources.clusters for _, lb in lb_endpoints(c) for v in decode_rewrite(lb).set_headers.values()}
    assert f"Bearer {EXAMPLE_ENV['OPENAI_API_KEY']}" in sent
    assert EXAMPLE_ENV["AZURE_OPENAI_KEY"] in sent
    assert EXAMPLE_ENV["ANTHROPIC_API_KEY"] in sent


# --- per-attempt rewrites --------------------------------------------------------------------------------


def test_every_endpoint_carries_a_rewrite_for_every_client_endpoint_of_its_cluster(
    config: Config, resources: EnvoyResources
) -> None:
    for cluster in resources.clusters:
        name, _, narrowed = cluster.name.partition("~")
        expected = (
            {"messages", "count_tokens"}
            if name.endswith("@anthropic")
            else {"responses", "input_tokens"}
            if name.endswith("@responses")
            else {"chat", "completions", "embeddings"}
        )
        # Only OpenAI targets count tokens here: their counts go to clusters of their own (`~first`, `~a`).
        counting = {e for e in expected if ClientEndpoint(e).counts_tokens}
        expected = counting if narrowed in ("first", "a") else expected - counting
        targets = len(next(r for r in config.routes if r.model in cluster.name).targets)
        assert len(lb_endpoints(cluster)) == (len(narrowed.split("+")) if narrowed else targets)
        for _, lb in lb_endpoints(cluster):
            assert set(decode_rewrite(lb).paths) == expected


def test_openai_rewrite_sets_bearer_and_removes_other_credentials(table: EnvoyResources) -> None:
    entry = rewrite_entry(table, "gpt-4", "first")
    assert set_headers(entry) == {"authorization": f"Bearer {OPENAI_KEY}"}
    assert sorted(entry.remove_headers) == [
        "anthropic-version",
        "api-key",
        "x-amz-date",
        "x-amz-security-token",
        "x-api-key",
        "x-goog-api-key",
    ]
    assert entry.model == "gpt-4o"
    assert dict(entry.paths) == {
        "chat": "/v1/chat/completions",
        "completions": "/v1/completions",
        "embeddings": "/v1/embeddings",
        "messages": "/v1/chat/completions",  # Anthropic clients' calls, translated to chat completions
    }
    assert set(entry.translations) == {"messages"}


def test_azure_rewrite_uses_deployment_path_api_version_and_api_key(table: EnvoyResources) -> None:
    entry = rewrite_entry(table, "gpt-4", "second")
    assert set_headers(entry) == {"api-key": AZURE_KEY}
    assert "authorization" in entry.remove_headers
    assert "x-api-key" in entry.remove_headers
    assert "api-key" not in entry.remove_headers
    assert dict(entry.paths) == {
        "chat": "/openai/deployments/dep-4o/chat/completions?api-version=2025-01-01-preview",
        "completions": "/openai/deployments/dep-4o/completions?api-version=2025-01-01-preview",
        "embeddings": "/openai/deployments/dep-4o/embeddings?api-version=2025-01-01-preview",
        "messages": "/openai/deployments/dep-4o/chat/completions?api-version=2025-01-01-preview",
    }


def test_azure_rewrite_defaults_the_api_version(table: EnvoyResources) -> None:
    entry = rewrite_entry(table, "ab", "c")
    assert DEFAULT_API_VERSION == "2024-10-21"
    # base_url had a trailing slash: no double slash in the path.
    assert entry.paths["chat"] == f"/openai/deployments/dep-mini/chat/completions?api-version={DEFAULT_API_VERSION}"


def test_openai_compatible_without_key_sets_nothing_and_removes_every_credential(table: EnvoyResources) -> None:
    entry = rewrite_entry(table, "gpt-4", "local/llama3")
    assert list(entry.set_headers) == []
    assert sorted(entry.remove_headers) == [
        "anthropic-version",
        "api-key",
        "authorization",
        "x-amz-date",
        "x-amz-security-token",
        "x-api-key",
        "x-goog-api-key",
    ]
    assert entry.model == "llama3"


def test_base_url_ending_in_v1_does_not_double_the_version_segment(table: EnvoyResources) -> None:
    entry = rewrite_entry(table, "gpt-4", "local/llama3")  # base_url http://127.0.0.1:11434/v1
    assert dict(entry.paths) == {
        "chat": "/v1/chat/completions",
        "completions": "/v1/completions",
        "embeddings": "/v1/embeddings",
        "messages": "/v1/chat/completions",
    }
    assert not any("/v1/v1/" in p for p in entry.paths.values())


def test_base_url_path_prefix_is_kept(table: EnvoyResources) -> None:
    entry = rewrite_entry(table, "ab", "b")  # base_url https://gateway.example.com:8443/team-a/
    assert set_headers(entry) == {"authorization": f"Bearer {PROXY_KEY}"}
    assert entry.paths["chat"] == "/team-a/v1/chat/completions"
    assert entry.paths["embeddings"] == "/team-a/v1/embeddings"
    assert entry.model == "team-model"


def test_a_suffix_naming_no_endpoint_is_used_for_every_client_endpoint(table: EnvoyResources) -> None:
    primary = rewrite_entry(table, "seed", "primary")
    assert set(primary.paths.values()) == {"/v1/engines/gpt-4/generate"}
    assert primary.model == "chatgpt-4"
    assert set_headers(primary) == {"authorization": f"Bearer {OPENAI_KEY}"}
    # Azure: the suffix replaces the deployment path, and the api-version is still appended.
    backup = rewrite_entry(table, "seed", "backup")
    assert set(backup.paths.values()) == {"/custom/run?api-version=2025-01-01-preview"}
    assert backup.model == "dep-35"
    assert set_headers(backup) == {"api-key": AZURE_KEY}


def _paths_of(resources: EnvoyResources, target: str) -> dict[str, str]:
    """Every client endpoint → upstream path of `target`, over all the clusters it is an endpoint of."""
    paths: dict[str, str] = {}
    for cluster in resources.clusters:
        for _, lb in lb_endpoints(cluster):
            if endpoint_metadata(lb, "switchyard")["target"] == target:
                paths.update(decode_rewrite(lb).paths)
    return paths


def test_a_suffix_naming_an_endpoint_serves_that_endpoint_only() -> None:
    resources = translate(load(CONFIG.replace("/v1/engines/gpt-4/generate", "/v1/engines/gpt-4/completions")))

    assert _paths_of(resources, "primary") == {"completions": "/v1/engines/gpt-4/completions"}
    # A chat call never reaches a text-completion path: the other target serves it alone.
    chat = clusters_by_name(resources)[envoy_route(resources, "chat:seed").route.cluster]
    assert [endpoint_metadata(lb, "switchyard")["target"] for _, lb in lb_endpoints(chat)] == ["backup"]


def test_a_chat_suffix_serves_anthropic_clients_too_translated() -> None:
    resources = translate(load(CONFIG.replace("/v1/engines/gpt-4/generate", "/v1/engines/gpt-4/chat/completions")))

    assert _paths_of(resources, "primary") == {
        "chat": "/v1/engines/gpt-4/chat/completions",
        "messages": "/v1/engines/gpt-4/chat/completions",
    }


@pytest.mark.parametrize(
    ("suffix", "expected"),
    [
        ("/deploy/x/chat?foo=1", "/deploy/x/chat?foo=1&api-version=2025-01-01-preview"),
        ("/deploy/x/chat?api-version=2023-05-15", "/deploy/x/chat?api-version=2023-05-15"),
    ],
)
def test_azure_suffix_with_a_query_keeps_it(suffix: str, expected: str) -> None:
    text = CONFIG.replace("suffix: /custom/run", f"suffix: '{suffix}'")
    entry = rewrite_entry(translate(load(text)), "seed", "backup")
    assert set(entry.paths.values()) == {expected}


def test_suffix_is_appended_to_the_base_url_path_prefix() -> None:
    text = CONFIG.replace("base_url: https://api.openai.com\n", "base_url: https://api.openai.com/proxy\n")
    entry = rewrite_entry(translate(load(text)), "seed", "primary")
    assert set(entry.paths.values()) == {"/proxy/v1/engines/gpt-4/generate"}


def test_target_key_is_stable_and_independent_of_target_order(config: Config) -> None:
    route = config.routes[0]
    keys = [target_key(route, t) for t in route.targets]
    assert len(set(keys)) == len(keys)
    assert all(len(k) == 16 and all(ch in "0123456789abcdef" for ch in k) for k in keys)
    reordered = load(
        CONFIG.replace(
            "      - {name: first, provider: openai, model: gpt-4o, priority: 10}\n"
            "      - {name: second, provider: azure, model: dep-4o, priority: 5}\n",
            "      - {name: second, provider: azure, model: dep-4o, priority: 5}\n"
            "      - {name: first, provider: openai, model: gpt-4o, priority: 10}\n",
        )
    ).routes[0]
    assert [t.display_name for t in reordered.targets][:2] == ["second", "first"]
    by_name = {t.display_name: target_key(reordered, t) for t in reordered.targets}
    assert by_name == {t.display_name: target_key(route, t) for t in route.targets}
    # The same target name under another route is another target.
    assert target_key(config.routes[1], config.routes[1].targets[0]) != target_key(route, route.targets[0])


# --- snapshot --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("example", "environ"), [("switchyard.yaml", EXAMPLE_ENV), ("demo.yaml", {})])
def test_build_snapshot_succeeds_on_the_examples(example: str, environ: dict[str, str]) -> None:
    config = load_config(ROOT / "examples" / example, environ=environ)
    snapshot = build_snapshot(config, "7")
    assert snapshot.version == "7"
    assert snapshot.route_count == len(config.routes)
    assert set(snapshot.resources) == {CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE}
    clusters = [c.name for c in snapshot.resources[CLUSTER_TYPE]]  # type: ignore[attr-defined]
    assert {f"route/{r.model}" for r in config.routes} <= set(clusters), "one cluster per route, at least"
    assert snapshot.target_count == sum(len(r.targets) for r in config.routes)
    assert len(snapshot.content_hash) == 64


def test_content_hash_is_stable_for_equal_configs_whatever_the_version() -> None:
    first = build_snapshot(load(), "1")
    second = build_snapshot(load(), "2")
    assert first.content_hash == second.content_hash


def test_content_hash_changes_when_a_weight_changes() -> None:
    before = build_snapshot(load(), "1")
    after = build_snapshot(load(CONFIG.replace("model: gpt-4o, weight: 9", "model: gpt-4o, weight: 8")), "2")
    assert before.content_hash != after.content_hash


def test_content_hash_changes_when_an_api_key_is_rotated() -> None:
    # Only the endpoints' rewrites change, but Envoy must still be sent the new cluster.
    before = build_snapshot(load(), "1")
    after = build_snapshot(load(CONFIG.replace(OPENAI_KEY, "sk-rotated-key")), "2")
    assert before.content_hash != after.content_hash


def test_consistency_check_rejects_a_route_naming_a_missing_cluster(config: Config) -> None:
    snapshot = build_snapshot(config, "1")
    clusters = tuple(c for c in snapshot.resources[CLUSTER_TYPE] if c.name != "route/ab")  # type: ignore[attr-defined]
    resources = {**snapshot.resources, CLUSTER_TYPE: clusters}
    with pytest.raises(InconsistentSnapshotError, match=r"names unknown cluster 'route/ab'") as error:
        _check_consistency(resources)
    assert "chat:ab" in str(error.value)


def test_consistency_check_rejects_a_listener_naming_missing_routes(config: Config) -> None:
    snapshot = build_snapshot(config, "1")
    resources = {**snapshot.resources, ROUTE_TYPE: ()}
    with pytest.raises(InconsistentSnapshotError, match=f"names unknown routes '{ROUTE_CONFIG_NAME}'"):
        _check_consistency(resources)


def test_consistency_check_rejects_an_endpoint_without_a_rewrite(config: Config) -> None:
    snapshot = build_snapshot(config, "1")
    clusters = [_without_rewrites(c) if c.name == "route/seed" else c for c in snapshot.resources[CLUSTER_TYPE]]
    resources = {**snapshot.resources, CLUSTER_TYPE: tuple(clusters)}
    with pytest.raises(InconsistentSnapshotError, match="of cluster 'route/seed' has no rewrite"):
        _check_consistency(resources)
    _check_consistency(resources, rewrites=False)  # the benchmark floor has none, on purpose


def test_consistency_check_accepts_the_real_snapshot(config: Config) -> None:
    snapshot = build_snapshot(config, "1")
    _check_consistency(snapshot.resources)


def test_openai_compatible_with_an_empty_optional_key_sends_no_credential() -> None:
    text = CONFIG.replace(
        "    base_url: http://127.0.0.1:11434/v1\n",
        "    base_url: http://127.0.0.1:11434/v1\n    api_key: ${LOCAL_KEY:-}\n",
    )
    entry = rewrite_entry(translate(load(text)), "gpt-4", "local/llama3")
    assert list(entry.set_headers) == []
    assert sorted(entry.remove_headers) == [
        "anthropic-version",
        "api-key",
        "authorization",
        "x-amz-date",
        "x-amz-security-token",
        "x-api-key",
        "x-goog-api-key",
    ]


def test_health_settings_shape_outlier_detection() -> None:
    text = CONFIG.replace("timeout: 500ms", "timeout: 500ms\n    health: {consecutive_failures: 5, ejection_time: 30s}")
    detection = clusters_by_name(translate(load(text)))["route/ab"].outlier_detection
    # No response at all (refused, reset, timed out) is always a failure: Envoy ejects on it by itself.
    assert detection.split_external_local_origin_errors is True
    assert detection.consecutive_local_origin_failure.value == 5
    assert detection.enforcing_consecutive_local_origin_failure.value == 100
    # The default fallback codes include 502, 503 and 504: Envoy may eject on those too.
    assert detection.consecutive_gateway_failure.value == 5
    assert detection.enforcing_consecutive_gateway_failure.value == 100
    # Any other 5xx may be outside the fallback codes: never Envoy's call (the control plane judges those).
    assert detection.enforcing_consecutive_5xx.value == 0
    assert detection.enforcing_success_rate.value == 0
    assert detection.base_ejection_time.ToTimedelta().total_seconds() == 30


def test_envoy_does_not_eject_on_gateway_codes_the_route_does_not_fall_back_on(resources: EnvoyResources) -> None:
    detection = clusters_by_name(resources)["route/gpt-4"].outlier_detection  # fallback_codes: [503, 429, 500]
    assert detection.enforcing_consecutive_gateway_failure.value == 0
    assert detection.enforcing_consecutive_local_origin_failure.value == 100


def test_zero_consecutive_failures_never_ejects() -> None:
    text = CONFIG.replace("timeout: 500ms", "timeout: 500ms\n    health: {consecutive_failures: 0}")
    cluster = clusters_by_name(translate(load(text)))["route/ab"]
    assert not cluster.HasField("outlier_detection")


def test_benchmark_floor_has_no_per_attempt_work_but_keeps_the_codec(config: Config) -> None:
    resources = translate(config, TranslateSettings(rewrite_attempts=False))
    assert upstream_chain(resources) == [], "Envoy's own default: the codec alone"
    for cluster in resources.clusters:
        assert not upstream_options(cluster).http_filters
        for _, lb in lb_endpoints(cluster):
            assert REWRITE_METADATA_KEY not in endpoint_metadata(lb, "switchyard")


def test_routes_that_rename_no_model_leave_every_body_alone() -> None:
    same_name = (
        "  - model: llama3\n"
        "    targets: [{provider: local, model: llama3}, {provider: local, model: llama3, name: b}]\n"
    )
    config = load(CONFIG + same_name)
    clusters = clusters_by_name(translate(config))
    # No model to write and no length to fix: the Lua filter never reads the body of these attempts.
    for _, lb in lb_endpoints(clusters["route/llama3"]):
        rewrite = decode_rewrite(lb)
        assert (rewrite.model, rewrite.fix_length) == ("", False)
    # A route where one target renames: the others reset content-length, which a renamed attempt changed.
    seed = {decode_rewrite(lb).model: decode_rewrite(lb).fix_length for _, lb in lb_endpoints(clusters["route/seed"])}
    assert seed == {"chatgpt-4": True, "dep-35": True}


def test_the_body_model_is_a_ready_json_literal_even_for_non_ascii_names() -> None:
    config = load(CONFIG.replace("model: team-model", 'model: "mod\\u00e8le \\"x\\""'))
    _, lb = endpoint_by_target(clusters_by_name(translate(config))["route/ab"], "b")
    encoded = dict(parse_qsl(lb.metadata.filter_metadata["switchyard"].fields[REWRITE_METADATA_KEY].string_value))
    assert encoded["model"] == '"modèle \\"x\\""'
    assert json.loads(encoded["model"]) == 'modèle "x"'


def test_targets_out_of_service_are_unhealthy_endpoints_and_only_they(config: Config) -> None:
    route = config.routes[0]
    parked_key = target_key(route, route.targets[0])
    live = LiveState(out_of_service=frozenset({parked_key}))
    cluster = clusters_by_name(translate(config, live=live))[f"route/{route.model}"]
    statuses: dict[str, set[int]] = {}
    for locality in cluster.load_assignment.endpoints:
        for lb in locality.lb_endpoints:
            key = lb.metadata.filter_metadata["switchyard"].fields["key"].string_value
            statuses.setdefault(key, set()).add(lb.health_status)
    assert statuses.pop(parked_key) == {health_check_pb2.UNHEALTHY}
    assert set().union(*statuses.values()) == {health_check_pb2.UNKNOWN}  # healthy unless Envoy learns otherwise


def test_live_state_changes_only_the_clusters_of_the_route_concerned(config: Config) -> None:
    """What changes while running (health, weights) must leave listeners, routes and the other routes'
    clusters byte-identical: Envoy then rebuilds just that one cluster."""
    route = config.routes[0]
    before = build_snapshot(config, "1")
    after = build_snapshot(config, "2", live=LiveState(out_of_service=frozenset({target_key(route, route.targets[0])})))
    changed = {t for t in before.type_hashes if before.type_hashes[t] != after.type_hashes[t]}
    assert changed == {CLUSTER_TYPE}
    same = [
        a.name for a, b in zip(before.resources[CLUSTER_TYPE], after.resources[CLUSTER_TYPE], strict=True) if a == b
    ]
    assert same == [
        "route/ab",
        "route/ab@anthropic",
        "route/ab@responses",
        "route/ab@responses~a+c",
        "route/ab@anthropic~a",
        "route/ab@responses~a",
        "route/seed",
        "route/seed@anthropic",
        "route/seed@responses",
    ]


def test_every_answer_usage_is_read_and_per_output_token_routes_add_their_rule() -> None:
    """Usage accounting reads every JSON answer's usage (both APIs' names); the latency rule comes on top."""

    def listener_parts(text: str) -> tuple[set[tuple[str, str]], list[str]]:
        (listener,) = translate(load(text)).listeners
        hcm = HttpConnectionManager()
        listener.filter_chains[0].filters[0].typed_config.Unpack(hcm)
        as_dict = to_dict(hcm)
        json_rules = as_dict["http_filters"][1]["typed_config"]["response_rules"]["rules"]
        logs = [log["typed_config"]["common_config"]["log_name"] for log in as_dict.get("access_log", [])]
        return {(r["on_present"]["metadata_namespace"], r["on_present"]["key"]) for r in json_rules}, logs

    usage = {("switchyard.usage", key) for key in USAGE_KEYS}
    assert listener_parts(CONFIG) == (usage, ["switchyard_answers"])
    measured = CONFIG.replace("timeout: 500ms", "timeout: 500ms\n    latency: {measure: per_output_token}")
    assert listener_parts(measured) == (usage | {("switchyard", "completion_tokens")}, ["switchyard_answers"])


def test_anthropic_targets_serve_chat_and_messages_with_their_key_and_version_and_nothing_else() -> None:
    text = CONFIG.replace(
        "routes:\n",
        "  claude:\n    kind: anthropic\n    base_url: https://api.anthropic.com\n    api_key: sk-ant-translate\n"
        "routes:\n  - model: c\n    targets: [{name: t, provider: claude, model: claude-sonnet-4}]\n",
        1,
    )
    entry = rewrite_entry(translate(load(text)), "c", "t")
    assert set(entry.translations) == {"chat"}
    assert dict(entry.paths) == {
        "chat": "/v1/messages",
        "messages": "/v1/messages",
        "count_tokens": "/v1/messages/count_tokens",
    }
    assert set_headers(entry) == {"x-api-key": "sk-ant-translate", "anthropic-version": "2023-06-01"}
    assert sorted(entry.remove_headers) == [
        "api-key",
        "authorization",
        "x-amz-date",
        "x-amz-security-token",
        "x-goog-api-key",
    ]


def test_local_replies_take_the_anthropic_shape_for_anthropic_clients(resources: EnvoyResources) -> None:
    (listener,) = resources.listeners
    hcm = HttpConnectionManager()
    listener.filter_chains[0].filters[0].typed_config.Unpack(hcm)
    mappers = to_dict(hcm)["local_reply_config"]["mappers"]
    first = next(m for m in mappers if "and_filter" in m["filter"])
    cel = first["filter"]["and_filter"]["filters"][0]["extension_filter"]["typed_config"]["expression"]
    assert "messages:" in cel and "anthropic-error:" in cel
    assert first["body_format_override"]["json_format"]["type"] == "error"
    names = [r.name for r in envoy_routes(resources)]
    assert "anthropic-error:unknown_model" in names and "error:unknown_model" in names


MIXED = CONFIG.replace(
    "routes:\n",
    "  claude:\n    kind: anthropic\n    base_url: https://api.anthropic.com\n    api_key: sk-ant-translate\n"
    "routes:\n"
    "  - model: mixed\n"
    "    targets: [{name: claude, provider: claude, model: c}, {name: gpt, provider: openai, model: g}]\n"
    "  - model: only-claude\n"
    "    targets: [{name: claude, provider: claude, model: c}]\n",
    1,
)


def test_endpoints_some_targets_cannot_serve_go_to_a_cluster_of_the_others() -> None:
    """An embeddings call must not be tried on an Anthropic target, or it fails while the OpenAI one could serve."""
    resources = translate(load(MIXED))
    clusters = clusters_by_name(resources)
    assert {"route/mixed", "route/mixed~gpt"} <= set(clusters)
    narrowed = clusters["route/mixed~gpt"]
    assert [loc.locality.sub_zone for loc in narrowed.load_assignment.endpoints] == ["gpt"]
    assert envoy_route(resources, "embeddings:mixed").route.cluster == "route/mixed~gpt"
    assert envoy_route(resources, "embeddings:mixed").route.retry_policy.num_retries.value == 0
    assert envoy_route(resources, "chat:mixed").route.cluster == "route/mixed"
    assert envoy_route(resources, "messages:mixed").route.cluster == "route/mixed@anthropic"


def test_an_endpoint_no_target_serves_is_answered_400_by_envoy() -> None:
    resources = translate(load(MIXED))
    route = envoy_route(resources, "embeddings:only-claude")
    assert route.direct_response.status == 400
    assert "No target of model only-claude can serve /v1/embeddings" in route.direct_response.body.inline_string
    only_claude = [c for c in clusters_by_name(resources) if c.startswith("route/only-claude")]
    assert only_claude == ["route/only-claude", "route/only-claude@anthropic", "route/only-claude@responses"]


def test_routes_set_to_skip_send_requests_with_untranslatable_parameters_to_their_own_api_only() -> None:
    text = MIXED.replace("  - model: mixed\n", "  - model: mixed\n    on_unsupported_parameter: skip_target\n")
    resources = translate(load(text))
    chat = [r for r in envoy_routes(resources) if r.name == "chat:mixed"]
    assert [r.route.cluster for r in chat] == ["route/mixed~gpt", "route/mixed"], "the flagged route comes first"
    flag = chat[0].match.dynamic_metadata[1]
    assert (flag.path[0].key, flag.value.present_match) == ("own_api_only", True)
    messages = [r.route.cluster for r in envoy_routes(resources) if r.name == "messages:mixed"]
    assert messages == ["route/mixed@anthropic~claude", "route/mixed@anthropic"], "top_k stays on Anthropic"
    (listener,) = resources.listeners
    hcm = HttpConnectionManager()
    listener.filter_chains[0].filters[0].typed_config.Unpack(hcm)
    rules = to_dict(hcm)["http_filters"][1]["typed_config"]["request_rules"]["rules"]
    flagged_by = {r["selectors"][0]["key"] for r in rules if r["on_present"]["key"] == "own_api_only"}
    assert {"logprobs", "seed", "n", "top_k"} <= flagged_by
    assert "temperature" not in flagged_by, "nearly every request has one: only values above 1 are refused"


def test_reject_is_the_default_and_adds_no_flagging() -> None:
    resources = translate(load(MIXED))
    assert [r.route.cluster for r in envoy_routes(resources) if r.name == "chat:mixed"] == ["route/mixed"]


# --- the Responses API ---------------------------------------------------------------------------------------


def _responses_rewrite(resources: EnvoyResources, route: str, target: str) -> Rewrite:
    return decode_rewrite(endpoint_by_target(clusters_by_name(resources)[f"route/{route}@responses"], target)[1])


def test_responses_calls_reach_openai_and_azure_natively_at_their_responses_paths(table: EnvoyResources) -> None:
    openai = _responses_rewrite(table, "gpt-4", "first")
    assert (dict(openai.paths), dict(openai.translations)) == ({"responses": "/v1/responses"}, {})
    azure = _responses_rewrite(table, "gpt-4", "second")
    # Microsoft's v1 API: no deployment in the path, no api-version; the deployment is the body's model.
    assert (dict(azure.paths), dict(azure.translations)) == ({"responses": "/openai/v1/responses"}, {})
    assert azure.model == "dep-4o" and azure.set_headers == {"api-key": AZURE_KEY}
    encoded = endpoint_by_target(clusters_by_name(table)["route/gpt-4@responses"], "first")[1]
    fields = dict(parse_qsl(encoded.metadata.filter_metadata["switchyard"].fields[REWRITE_METADATA_KEY].string_value))
    assert "usage" not in fields, "the Responses API has no stream_options.include_usage to ask for"


def test_openai_compatible_servers_get_responses_calls_as_chat_completions_unless_they_say_otherwise() -> None:
    translated = _responses_rewrite(translate(load()), "gpt-4", "local/llama3")
    assert dict(translated.paths) == {"responses": "/v1/chat/completions"}
    (request,) = translated.translations.values()
    assert dict(parse_qsl(request))["provider_api"] == "openai" and request.startswith("client_api=responses&")
    native_config = load(
        CONFIG.replace(
            "    base_url: http://127.0.0.1:11434/v1\n",
            "    base_url: http://127.0.0.1:11434/v1\n    responses_api: true\n",
        )
    )
    native = _responses_rewrite(translate(native_config), "gpt-4", "local/llama3")
    assert (dict(native.paths), dict(native.translations)) == ({"responses": "/v1/responses"}, {})


def test_responses_api_is_a_setting_of_openai_compatible_providers_only() -> None:
    with pytest.raises(ConfigError, match="`responses_api` is for openai_compatible providers only"):
        load(
            CONFIG.replace(
                "    api_version: 2025-01-01-preview\n",
                "    api_version: 2025-01-01-preview\n    responses_api: true\n",
            )
        )
