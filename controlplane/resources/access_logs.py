"""The two gRPC access logs Envoy streams back to the control plane: how it learns what happened to traffic.

The attempt log (one entry per upstream attempt that did not end 2xx, in the router) feeds health; the answer
log (one entry per client request, in the connection manager) feeds usage accounting, the per-token measures,
and the statistics, health and latency of the attempt that served the answer.
Both are read by controlplane/telemetry/attempt_log.py and controlplane/usage/record.py.
"""

from __future__ import annotations

from typing import Any

from controlplane import answer_summary, clients
from controlplane.envoy_api import METADATA_NAMESPACE, typed
from switchyard.config import Config
from switchyard.contract import (
    ANSWER_LOG_NAME,
    ANSWER_SUMMARY_TAG,
    ATTEMPT_LOG_NAME,
    CONTROLPLANE_CLUSTER,
    TARGET_KEY_TAG,
)

# Envoy sends what it buffered every 0.25 s, or sooner once this much is buffered: large enough that a busy
# node sends a few large messages a second rather than hundreds of small ones (each message costs the control
# plane a gRPC read and a handler turn; issue 21).
LOG_BUFFER_BYTES = 256 * 1024


def _grpc_log(
    name: str, tags: list[dict[str, Any]], log_filter: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """Envoy buffers the entries and streams them to the control plane asynchronously: no request waits."""
    return {
        "name": "envoy.access_loggers.http_grpc",
        **({} if log_filter is None else {"filter": log_filter}),
        "typed_config": typed(
            "envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig",
            common_config={
                "log_name": name,
                "transport_api_version": "V3",
                "grpc_service": {"envoy_grpc": {"cluster_name": CONTROLPLANE_CLUSTER}},
                "buffer_flush_interval": "0.250s",
                "buffer_size_bytes": LOG_BUFFER_BYTES,
                "custom_tags": tags,
            },
            **extra,
        ),
    }


def _status(op: str, value: int) -> dict[str, Any]:
    runtime_key = f"switchyard.attempt_log.status_{op.lower()}"
    return {
        "status_code_filter": {"comparison": {"op": op, "value": {"default_value": value, "runtime_key": runtime_key}}}
    }


def attempt_log() -> dict[str, Any]:
    """One log entry per upstream attempt that did not end 2xx (no response counts as status 0): how the
    control plane learns each target's failures and statuses. The target is the key in the picked endpoint's
    metadata; `retry-after` says how long a 429 asks for. A 2xx attempt is always its request's last, and the
    answer log's entry says all of it (controlplane/telemetry/answer_log.py): logging it here as well would
    double what every request costs Envoy and the control plane (issue 21)."""
    not_2xx = {"or_filter": {"filters": [_status("LE", 199), _status("GE", 300)]}}
    target_tag = {
        "tag": TARGET_KEY_TAG,
        "metadata": {"kind": {"host": {}}, "metadata_key": {"key": METADATA_NAMESPACE, "path": [{"key": "key"}]}},
    }
    return _grpc_log(ATTEMPT_LOG_NAME, [target_tag], not_2xx, additional_response_headers_to_log=["retry-after"])


def answer_log(config: Config) -> dict[str, Any]:
    """One entry per client request, about the answer that reached the client: the attempt that served it
    (target, status, attempts, timings), the usage it reported (usage accounting), its output tokens (routes
    measuring per output token) and what the ext_proc measured of a stream it translated (time to first token,
    generation time, tokens). The router's per-attempt log cannot carry most of it: metadata set by filters,
    even the upstream ext_proc's, lands on the request, which only this log sees.

    All of it is one tag formatted by Envoy (controlplane/answer_summary.py), read by the control plane with
    one lookup and one split; the client, with a clients section, is a tag of its own."""
    value = answer_summary.envoy_format(guardrails=config.has_guardrails, output_tokens=config.measures_output_tokens)
    summary = {"tag": ANSWER_SUMMARY_TAG, "value": value}
    return _grpc_log(ANSWER_LOG_NAME, [summary, *clients.answer_log_tags(config)])
