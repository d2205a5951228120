"""Config → Envoy resources: a pure function, unit-testable without Envoy and pinned by a golden file.

Design (see shared notes on Envoy as an LLM failover data plane):
- one listener whose filters run once per client request (resources/listener.py), lifting the body's `model`
  into dynamic metadata so that routes (resources/routes.py) match on it and malformed JSON and unknown
  models are answered by Envoy without touching Python;
- one cluster per serving group of a route (resources/clusters.py); each config priority becomes an Envoy
  priority level whose endpoints carry the targets' weights, so Envoy's own retry machinery does failover
  within one client request (controlplane/failover.py);
- each cluster's *upstream* filter chain runs again for every attempt and rewrites the request for whichever
  target Envoy picked (resources/upstream_filters.py);
- two gRPC access logs bring attempts and answers back to the control plane (resources/access_logs.py).

The names below are shared with the other processes and languages (ext_proc, Lua, telemetry) and with the
resource modules, which import them from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.envoy_api import Cluster, Listener, RouteConfiguration, to_message
from controlplane.live_state import NO_LIVE_STATE, LiveState
from controlplane.serving_groups import serving_groups
from switchyard.bootstrap import CONTROLPLANE_CLUSTER as CONTROLPLANE_CLUSTER  # xDS, and the attempt log going back
from switchyard.config import ClientEndpoint, Config, Route

LISTENER_NAME = "switchyard_http"
ROUTE_CONFIG_NAME = "switchyard_routes"
EXTPROC_CLUSTER = "switchyard_extproc"  # defined in the bootstrap, next to the ext_proc processes
ATTEMPT_LOG_NAME = "switchyard_attempts"
ANSWER_LOG_NAME = "switchyard_answers"
TARGET_KEY_TAG = "switchyard_target"
OUTPUT_TOKENS_TAG = "switchyard_output_tokens"
# What the ext_proc measured of a translated stream (extproc/exchange.py), by key in its metadata → log tag
STREAM_TAGS = {
    "ttft_ms": "switchyard_ttft_ms",
    "output_tokens": "switchyard_stream_tokens",
    "input_tokens": "switchyard_stream_input_tokens",
    "generation_ms": "switchyard_generation_ms",
}
# The usage an answer reported, in either API's names (JSON answers: json_to_metadata; streams:
# envoy/lua/stream_usage.lua), by key in the usage metadata → log tag
USAGE_KEYS = (
    "prompt_tokens",
    "completion_tokens",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
USAGE_TAGS = {key: f"switchyard_usage_{key}" for key in USAGE_KEYS}
# Request members lifted into metadata for the Lua filters: whether the client streams (the rewrite then asks
# OpenAI targets for usage) and whether it asked for usage itself (else the usage-only chunk is kept from it).
STREAM_KEY = "stream"
CLIENT_USAGE_KEY = "client_usage"
TARGET_HEADER = "x-switchyard-target"
# Endpoint metadata key holding the target's rewrite, and the request header it travels in to the Lua filter.
REWRITE_METADATA_KEY = "rewrite"
REWRITE_HEADER = "x-switchyard-rewrite"
ATTEMPTS_HEADER = "x-switchyard-attempts"


@dataclass(frozen=True)
class TranslateSettings:
    """What the translation needs beyond the YAML: facts about where it runs."""

    tls_ca_file: str = "/etc/ssl/certs/ca-certificates.crt"
    extproc_message_timeout_s: float = 2.0
    # False only to measure the floor of this design (`make bench`): no upstream filters at all, so requests
    # reach providers with the client's path, model and credentials.
    rewrite_attempts: bool = True


DEFAULT_SETTINGS = TranslateSettings()


@dataclass(frozen=True)
class EnvoyResources:
    listeners: tuple[Listener, ...]
    route_configs: tuple[RouteConfiguration, ...]
    clusters: tuple[Cluster, ...]


def route_name(endpoint: ClientEndpoint, route: Route) -> str:
    """`<endpoint>:<model>`: the Lua rewrite reads the client endpoint from it (an attempt's path is no guide:
    an earlier attempt may have rewritten it), and so do the local-reply mappers that pick the error shape."""
    return f"{endpoint.value}:{route.model}"


def translate(
    config: Config, settings: TranslateSettings = DEFAULT_SETTINGS, live: LiveState = NO_LIVE_STATE
) -> EnvoyResources:
    """`live` health verdicts and latency change only the endpoints of the routes they concern: listeners,
    routes and every other cluster stay byte-identical, so Envoy leaves them alone. Refused clients and the
    node count (with `clients:` only) change the routes' client table and request limits (clients.py)."""
    # Imported here rather than at the top: the resource modules import the names defined above.
    from controlplane.resources.clusters import cluster
    from controlplane.resources.listener import listener
    from controlplane.resources.routes import route_configuration

    return EnvoyResources(
        listeners=(to_message(listener(config), Listener),),
        route_configs=(to_message(route_configuration(config, live), RouteConfiguration),),
        clusters=tuple(
            to_message(cluster(config, group, settings, live), Cluster)
            for route in config.routes
            for group in serving_groups(config, route)
        ),
    )
