"""The YAML's `tracing:` → Envoy's own OpenTelemetry tracer: no Python on the request path, nothing when off.

One trace per sampled client request, joined to the client's trace by its W3C `traceparent` (Envoy takes it
from the request and sends one onwards to the provider):
- the client span (Envoy's downstream span, kind SERVER): the route, the client, the model asked for, the
  operation, the attempts, and the usage the answer reported (GenAI semantic conventions where they have a
  name, `switchyard.*` otherwise);
- one span per attempt (`spawn_upstream_span`, kind CLIENT, named `router <cluster> egress`): the target Envoy
  picked, its provider and model, the attempt's number; Envoy's own tags say how it ended (`http.status_code`,
  `error`, `response_flags` such as UF or UT, `retry.count` on the attempts after the first), and
  `switchyard.upstream_failure` why a connection failed: when another attempt follows, that is why. (The
  formatter's %RESPONSE_CODE% is 0 on an attempt that was retried, measured: its answer never went out.)
- with guardrails in the config, `switchyard.guardrails.request` and `.response` on the client span: what the
  rules did (`rule/check/action/count`, as the guard filter reports it; never the matched text);
- a translated attempt's ext_proc stream as a span of its own (Envoy's gRPC client span, `async
  envoy.service.ext_proc.v3.ExternalProcessor.Process egress`), a child of the client span: Envoy hands
  upstream filters the request's span, not the attempt's.
Tags are formatter values Envoy evaluates when a span ends; the attempt spans evaluate them against the
attempt, so `%UPSTREAM_METADATA%` names each attempt's own target. Tags a request does not have (no client,
no usage) stay empty. No tag holds a key, a header value or prompt text.

The tracer lives in the listener's connection manager, so turning tracing on or off (or changing it) is a
listener update: Envoy drains the open connections into the new config, as for any listener change.
"""

from __future__ import annotations

from typing import Any

from controlplane.envoy_api import METADATA_NAMESPACE, USAGE_METADATA_NAMESPACE, typed
from switchyard.config import ClientEndpoint, Config, Route
from switchyard.config.model import Provider, ProviderKind, Target
from switchyard.contract import (
    CLIENT_METADATA_KEY,
    GUARDRAILS_METADATA_NAMESPACE,
    GUARDRAILS_STAGES,
    MODEL_KEY,
    OTLP_CLUSTER,
    WireApi,
)

# Endpoint metadata keys, set only with tracing on (so the clusters of a gateway without it stay as they were).
PROVIDER_NAME_KEY = "gen_ai_provider"
TARGET_MODEL_KEY = "target_model"

# gen_ai.provider.name as the semantic conventions spell the providers they list.
_PROVIDER_NAMES = {
    ProviderKind.OPENAI: "openai",
    ProviderKind.AZURE_OPENAI: "azure.ai.openai",
    ProviderKind.ANTHROPIC: "anthropic",
    ProviderKind.GEMINI: "gcp.gemini",
    ProviderKind.BEDROCK: "aws.bedrock",
}
_OPERATIONS = {
    ClientEndpoint.CHAT: "chat",
    ClientEndpoint.COMPLETIONS: "text_completion",
    ClientEndpoint.EMBEDDINGS: "embeddings",
    ClientEndpoint.MESSAGES: "chat",
    ClientEndpoint.RESPONSES: "chat",
}
# The answer's usage members, as the client's API names them (json_to_metadata and stream_usage.lua lift them).
_USAGE = {
    WireApi.OPENAI: {"gen_ai.usage.input_tokens": "prompt_tokens", "gen_ai.usage.output_tokens": "completion_tokens"},
    WireApi.ANTHROPIC: {
        "gen_ai.usage.input_tokens": "input_tokens",
        "gen_ai.usage.output_tokens": "output_tokens",
        "gen_ai.usage.cache_read.input_tokens": "cache_read_input_tokens",
        "gen_ai.usage.cache_creation.input_tokens": "cache_creation_input_tokens",
    },
    WireApi.RESPONSES: {"gen_ai.usage.input_tokens": "input_tokens", "gen_ai.usage.output_tokens": "output_tokens"},
}


def _tag(name: str, value: str) -> dict[str, Any]:
    return {"tag": name, "value": value}


def _dynamic(namespace: str, key: str) -> str:
    return f"%DYNAMIC_METADATA({namespace}:{key})%"


def _target(key: str) -> str:
    return f"%UPSTREAM_METADATA({METADATA_NAMESPACE}:{key})%"


def connection_manager_fields(config: Config) -> dict[str, Any]:
    """The connection manager's `tracing`, or nothing with tracing off."""
    if config.tracing is None:
        return {}
    tracer = typed(
        "envoy.config.trace.v3.OpenTelemetryConfig",
        grpc_service={"envoy_grpc": {"cluster_name": OTLP_CLUSTER}, "timeout": "1s"},
        service_name=config.tracing.service_name,
    )
    return {
        "tracing": {
            "provider": {"name": "envoy.tracers.opentelemetry", "typed_config": tracer},
            "random_sampling": {"value": config.tracing.sampling * 100},
            "spawn_upstream_span": True,
            "custom_tags": [
                _tag("gen_ai.request.model", _dynamic(METADATA_NAMESPACE, MODEL_KEY)),
                _tag("switchyard.client", _dynamic(METADATA_NAMESPACE, CLIENT_METADATA_KEY)),
                _tag("switchyard.target", _target("target")),
                _tag("gen_ai.provider.name", _target(PROVIDER_NAME_KEY)),
                _tag("gen_ai.response.model", _target(TARGET_MODEL_KEY)),
                _tag("switchyard.attempts", "%UPSTREAM_REQUEST_ATTEMPT_COUNT%"),
                # An attempt that got no answer (reset, refused, TLS): why, next to Envoy's own `response_flags`.
                _tag("switchyard.upstream_failure", "%UPSTREAM_TRANSPORT_FAILURE_REASON%"),
            ],
        }
    }


def route_fields(config: Config, endpoint: ClientEndpoint, route: Route) -> dict[str, Any]:
    """A route's own tags (its model, the operation, where its API keeps usage), or nothing with tracing off."""
    if config.tracing is None:
        return {}
    tags = [_tag("switchyard.route", route.model)]
    operation = _OPERATIONS.get(endpoint, endpoint.value)
    tags.append(_tag("gen_ai.operation.name", operation))
    tags.extend(_tag(name, _dynamic(USAGE_METADATA_NAMESPACE, key)) for name, key in _USAGE[endpoint.api].items())
    if config.has_guardrails:  # what the rules did, by stage: `rule/check/action/count`, never the matched text
        tags.extend(
            _tag(f"switchyard.guardrails.{stage}", _dynamic(GUARDRAILS_METADATA_NAMESPACE, stage))
            for stage in GUARDRAILS_STAGES
        )
    return {"tracing": {"custom_tags": tags}}


def endpoint_metadata(config: Config, provider: Provider, target: Target) -> dict[str, str]:
    """What an attempt span says of its target beyond its name, or nothing with tracing off."""
    if config.tracing is None:
        return {}
    return {PROVIDER_NAME_KEY: _PROVIDER_NAMES.get(provider.kind, provider.kind.value), TARGET_MODEL_KEY: target.model}


def otlp_cluster(config: Config) -> dict[str, Any] | None:
    """The OTLP receiver, over HTTP/2 (gRPC) in plaintext."""
    if config.tracing is None:
        return None
    host, _, port = config.tracing.otlp.rpartition(":")
    host = host.strip("[]")
    return {
        "name": OTLP_CLUSTER,
        "type": "STRICT_DNS",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": OTLP_CLUSTER,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": {"socket_address": {"address": host, "port_value": int(port)}}}}
                    ]
                }
            ],
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": typed(
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                explicit_http_config={"http2_protocol_options": {}},
            )
        },
    }
