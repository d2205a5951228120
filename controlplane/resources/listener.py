"""The one listener: Envoy's HTTP connection manager and the filters every client request passes once.

Retries never re-run these (only the router's upstream filters, resources/upstream_filters.py, which run per
attempt), so everything else here concerns the client request as a whole: readiness, lifting the body's `model`
(and the flags the routes and Lua filters need) into dynamic metadata, client checks (controlplane/clients.py),
guardrails (resources/guardrails.py), the usage of the answer, and the router with its per-attempt log.
Malformed JSON and unknown models are answered here by Envoy without touching Python.
"""

from __future__ import annotations

from typing import Any

from controlplane import affinity, clients, errors_shape
from controlplane.envoy_api import METADATA_NAMESPACE, USAGE_METADATA_NAMESPACE, typed
from controlplane.envoy_code import route_key_lua, stream_usage_lua
from controlplane.resources import guardrails, responses_only, tracing
from controlplane.resources.access_logs import answer_log, attempt_log
from controlplane.resources.settings import DEFAULT_SETTINGS, TranslateSettings
from controlplane.resources.upstream_filters import router_upstream_filters
from switchyard.config import Config
from switchyard.config.model import OnUnsupported
from switchyard.contract import (
    CLIENT_USAGE_KEY,
    LISTENER_NAME,
    OWN_API_ONLY_KEY,
    PARAMETERS_THAT_MAY_NOT_TRANSLATE,
    READINESS_PATH,
    ROUTE_CONFIG_NAME,
    ROUTE_KEY_FILTER,
    STREAM_KEY,
    USAGE_DETAIL_KEYS,
    USAGE_DETAILS,
    USAGE_KEYS,
)

# The metadata key that flags a request carrying a parameter another API may not express (routes match on it).


def listener(config: Config, settings: TranslateSettings = DEFAULT_SETTINGS) -> dict[str, Any]:
    counts_tokens = config.measures_output_tokens
    skips = any(r.on_unsupported_parameter is OnUnsupported.SKIP_TARGET for r in config.routes)
    hcm = typed(
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        stat_prefix="switchyard",
        codec_type="AUTO",
        rds={
            "route_config_name": ROUTE_CONFIG_NAME,
            "config_source": {"ads": {}, "resource_api_version": "V3"},
        },
        http_filters=[
            _readiness_filter(),
            {
                "name": "envoy.filters.http.json_to_metadata",
                "typed_config": typed(
                    "envoy.extensions.filters.http.json_to_metadata.v3.JsonToMetadata",
                    request_rules={
                        "rules": [
                            {
                                "selectors": [{"key": "model"}],
                                "on_present": {"metadata_namespace": METADATA_NAMESPACE, "key": "model"},
                                "on_missing": errors_shape.flag(errors_shape.MISSING_MODEL),
                                "on_error": errors_shape.flag(errors_shape.INVALID_JSON),
                            },
                            *_stream_rules(),
                            *(_own_api_only_rules() if skips else []),
                            *responses_only.listener_rules(),
                            *affinity.listener_rules(config),
                        ],
                        "allow_empty_content_type": True,
                        "allow_content_types": ["application/json", "text/plain"],
                    },
                    response_rules=_usage_rules(counts_tokens),
                ),
            },
            _route_key_filter(),
            *affinity.listener_filters(config),
            *clients.listener_filters(config),
            # After the client check (it names the client) and before stream_usage.lua, which then reads a
            # streamed answer before the guard changes it (answers pass the filters in reverse order).
            *guardrails.listener_filters(config),
            _stream_usage_filter(),
            {
                "name": "envoy.filters.http.router",
                "typed_config": typed(
                    "envoy.extensions.filters.http.router.v3.Router",
                    suppress_envoy_headers=True,
                    upstream_log=[attempt_log()],
                    **_upstream_http_filters(settings),
                ),
            },
        ],
        local_reply_config=errors_shape.local_reply_config(config),
        access_log=[answer_log(config)],
        # Streams can legitimately idle between tokens; routes set their own idle timeout from the YAML.
        stream_idle_timeout="300s",
        request_timeout="0s",
        server_name="switchyard",
        **tracing.connection_manager_fields(config),
    )
    return {
        "name": LISTENER_NAME,
        "address": {"socket_address": {"address": config.listen_host, "port_value": config.listen_port}},
        "per_connection_buffer_limit_bytes": config.max_request_body + 65536,
        "filter_chains": [
            {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
        ],
    }


def _upstream_http_filters(settings: TranslateSettings) -> dict[str, Any]:
    filters = router_upstream_filters(settings)
    return {"upstream_http_filters": filters} if filters else {}


def _readiness_filter() -> dict[str, Any]:
    """`GET /healthz` on the client port, for load balancers: 200 while serving, 503 from the moment a drain
    starts (the supervisor tells Envoy's admin `/healthcheck/fail`), while requests in flight still finish."""
    return {
        "name": "envoy.filters.http.health_check",
        "typed_config": typed(
            "envoy.extensions.filters.http.health_check.v3.HealthCheck",
            pass_through_mode=False,
            headers=[{"name": ":path", "string_match": {"exact": READINESS_PATH}}],
        ),
    }


def _own_api_only_rules() -> list[dict[str, Any]]:
    """Flag requests carrying a parameter another API may not express, for routes that skip such targets.

    Each rule copies the parameter's value into one key that the routes match on by presence. Measured on
    Envoy 1.40: a constant `value` in `on_present` flagged requests without the parameter too, and presence
    only counts primitive values, so object parameters are looked at through a primitive member. A map
    without a fixed member (`logit_bias`) cannot be: such requests are refused by the target with a 400."""
    rules = []
    for name in sorted(PARAMETERS_THAT_MAY_NOT_TRANSLATE):
        if name in _NO_PRIMITIVE_MEMBER:
            continue
        path = [{"key": name}, *({"key": member} for member in _PRIMITIVE_MEMBER.get(name, ()))]
        rules.append(
            {"selectors": path, "on_present": {"metadata_namespace": METADATA_NAMESPACE, "key": OWN_API_ONLY_KEY}}
        )
    return rules


_PRIMITIVE_MEMBER = {"response_format": ("type",), "thinking": ("type",)}
_NO_PRIMITIVE_MEMBER = frozenset({"logit_bias"})


def _stream_rules() -> list[dict[str, Any]]:
    """`stream` and `stream_options.include_usage` of the request, for the Lua filters (see STREAM_KEY)."""
    return [
        {"selectors": [{"key": "stream"}], "on_present": {"metadata_namespace": METADATA_NAMESPACE, "key": STREAM_KEY}},
        {
            "selectors": [{"key": "stream_options"}, {"key": "include_usage"}],
            "on_present": {"metadata_namespace": METADATA_NAMESPACE, "key": CLIENT_USAGE_KEY},
        },
    ]


def _usage_rules(counts_tokens: bool) -> dict[str, Any]:
    """A whole answer's `usage`, lifted into metadata for the answer log: what usage accounting counts (OpenAI's
    cached tokens from its details object), and (routes measuring per output token) `completion_tokens` for the
    latency average.

    Only JSON answers match: a matching body is held until complete (harmless, the client waits for all of it
    anyway) while an event stream passes through untouched (stream_usage.lua reads those). A charset parameter
    must still match."""

    def rule(key: str, namespace: str, *within: str) -> dict[str, Any]:
        return {
            "selectors": [{"key": name} for name in ("usage", *within, key)],
            "on_present": {"metadata_namespace": namespace, "key": key, "type": "NUMBER"},
        }

    rules = [rule(key, USAGE_METADATA_NAMESPACE) for key in USAGE_KEYS if key not in USAGE_DETAIL_KEYS]
    rules.extend(rule(key, USAGE_METADATA_NAMESPACE, details) for details in USAGE_DETAILS for key in USAGE_DETAIL_KEYS)
    if counts_tokens:
        rules.append(rule("completion_tokens", METADATA_NAMESPACE))
    return {"rules": rules, "allow_content_types_regex": {"regex": "application/json(;.*)?"}}


def _route_key_filter() -> dict[str, Any]:
    """envoy/lua/route_key.lua, right after json_to_metadata: the request's routing key, once the model is lifted,
    which the virtual host looks up in one step (controlplane/resources/route_index.py)."""
    lua = typed("envoy.extensions.filters.http.lua.v3.Lua", default_source_code={"inline_string": route_key_lua()})
    return {"name": ROUTE_KEY_FILTER, "typed_config": lua}


def _stream_usage_filter() -> dict[str, Any]:
    """envoy/lua/stream_usage.lua: the usage of streamed answers, on their way to the client.

    Envoy skips it for every answer that is not an event stream (a matcher on the response's content-type,
    which the script checks first anyway): a Lua filter costs a coroutine and a call into the script per answer
    even when the script returns at once, and most answers are whole JSON (issue 21)."""
    lua = typed("envoy.extensions.filters.http.lua.v3.Lua", default_source_code={"inline_string": stream_usage_lua()})
    return {
        "name": "switchyard.stream_usage",
        "typed_config": typed(
            "envoy.extensions.common.matching.v3.ExtensionWithMatcher",
            xds_matcher=_skip_unless_event_stream(),
            extension_config={"name": "envoy.filters.http.lua", "typed_config": lua},
        ),
    }


def _skip_unless_event_stream() -> dict[str, Any]:
    content_type = typed("envoy.type.matcher.v3.HttpResponseHeaderMatchInput", header_name="content-type")
    event_stream = {
        "single_predicate": {
            "input": {"name": "content_type", "typed_config": content_type},
            "value_match": {"contains": "text/event-stream"},
        }
    }
    skip = typed("envoy.extensions.filters.common.matcher.action.v3.SkipFilter")
    return {
        "matcher_list": {
            "matchers": [
                {
                    "predicate": {"not_matcher": event_stream},
                    "on_match": {"action": {"name": "skip", "typed_config": skip}},
                }
            ]
        }
    }
