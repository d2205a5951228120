"""The access-log messages as the control plane decodes them (controlplane/telemetry/log_messages.py): the fields
it keeps are Envoy's, and entries as Envoy fills them give the same statistics, health and usage decoded either
way. A field a handler reads but the cut left out fails here, not in production."""

from __future__ import annotations

import time
from typing import Any

from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2
from google.protobuf.descriptor import Descriptor

from controlplane import answer_summary as summary
from controlplane.clients import CLIENT_TAG
from controlplane.health import HealthJudge, TargetPolicy
from controlplane.target_keys import target_key
from controlplane.telemetry import log_messages
from controlplane.telemetry.attempt_log import AttemptLogService
from controlplane.telemetry.target_stats import TargetStatsRecorder
from controlplane.usage.accounting import UsageAccounting
from controlplane.usage.sqlite import SqliteUsageStore
from switchyard.config import load_config_text
from switchyard.contract import ANSWER_LOG_NAME, ANSWER_SUMMARY_TAG, ATTEMPT_LOG_NAME, STREAM_TAGS, TARGET_KEY_TAG
from switchyard.contract import USAGE_TAGS as USAGE

_CONFIG = load_config_text(
    """
listen: 127.0.0.1:8080
providers: {p: {kind: openai, base_url: "http://127.0.0.1:9", api_key: k}}
routes:
  - model: m
    strategy: least_latency
    latency: {measure: first_token, warmup: 1}
    health: {consecutive_failures: 2, failure_rate: {threshold: 0.5, min_requests: 4, window: 10s}}
    targets: [{name: a, provider: p, model: x}, {name: b, provider: p, model: y}]
""",
    source="test",
)
_ROUTE = _CONFIG.routes[0]
A, B = (target_key(_ROUTE, target) for target in _ROUTE.targets)
START = 1_796_601_193_795_204_000


def _filled(status: int, request_id: str) -> accesslog_pb2.HTTPAccessLogEntry:
    """An entry with everything Envoy fills whether or not the control plane reads it."""
    entry = accesslog_pb2.HTTPAccessLogEntry(protocol_version=accesslog_pb2.HTTPAccessLogEntry.HTTP11)
    common = entry.common_properties
    for field in ("downstream_remote_address", "upstream_remote_address", "upstream_local_address"):
        address = getattr(common, field).socket_address
        address.address, address.port_value = "10.0.0.1", 443
    common.start_time.FromNanoseconds(START)
    for field, nanos in (("time_to_first_upstream_tx_byte", 569_303), ("time_to_first_upstream_rx_byte", 5_515_708),
                         ("time_to_last_upstream_rx_byte", 5_571_011), ("time_to_last_downstream_tx_byte", 5_630_672),
                         ("duration", 5_632_936)):  # fmt: skip
        getattr(common, field).FromNanoseconds(nanos)
    common.upstream_cluster, common.route_name, common.stream_id = "route/m", "chat:m", request_id
    common.metadata.filter_metadata["switchyard.usage"].update({"prompt_tokens": 9, "completion_tokens": 4})
    common.downstream_wire_bytes_sent, common.upstream_wire_bytes_received = 434, 321
    entry.request.request_method, entry.request.path, entry.request.request_id = 2, "/v1/chat/completions", request_id
    entry.response.response_code.value = status
    entry.response.response_code_details = "via_upstream"
    entry.response.response_headers_bytes = 152
    return entry


def _answer(key: str, request_id: str, attempts: int = 1, ttft_ms: str = "", tokens: str = "4") -> bytes:
    entry = _filled(200, request_id)
    fields = [""] * len(summary.FIELDS)
    values = {"target": key, "status": "200", "details": "via_upstream", "attempts": str(attempts),
              "first_byte_us": "4946", "upstream_us": "5001", "start": "1796601193.795204000", "duration_us": "5630",
              "output_tokens": tokens, "stream_ttft_ms": ttft_ms, "usage_prompt_tokens": "9",
              "usage_completion_tokens": tokens, "request_id": request_id, "route": "chat:m"}  # fmt: skip
    for name, value in values.items():
        fields[summary.INDEX[name]] = value
    entry.common_properties.custom_tags[ANSWER_SUMMARY_TAG] = summary.SEPARATOR.join(fields)
    entry.common_properties.custom_tags[CLIENT_TAG] = "team-a"
    entry.common_properties.upstream_request_attempt_count = attempts
    return bytes(entry.SerializeToString())


def _answer_without_summary(key: str, request_id: str) -> bytes:
    """As an Envoy still on a config from before the summary logs an answer: tag by tag."""
    entry = _filled(200, request_id)
    tags = entry.common_properties.custom_tags
    tags.update({TARGET_KEY_TAG: key, CLIENT_TAG: "team-b", USAGE["input_tokens"]: "7", USAGE["output_tokens"]: "3"})
    tags[STREAM_TAGS["ttft_ms"]] = "150"
    entry.common_properties.upstream_request_attempt_count = 1
    return bytes(entry.SerializeToString())


def _attempt(key: str, status: int, request_id: str, retry_after: str = "") -> bytes:
    entry = _filled(status, request_id)
    entry.common_properties.custom_tags[TARGET_KEY_TAG] = key
    if retry_after:
        entry.response.response_headers["retry-after"] = retry_after
    if status == 0:  # reset before any answer
        entry.response.ClearField("response_code")
        entry.common_properties.ClearField("time_to_first_upstream_rx_byte")
        entry.common_properties.response_flags.upstream_remote_reset = True
    return bytes(entry.SerializeToString())


def _message(log_name: str, entries: list[bytes]) -> bytes:
    message = als_pb2.StreamAccessLogsMessage()
    message.identifier.node.id, message.identifier.log_name = "node-1", log_name
    for entry in entries:
        message.http_logs.log_entry.add().MergeFromString(entry)
    return bytes(message.SerializeToString())


def _handled(decode: Any, messages: list[bytes]) -> tuple[TargetStatsRecorder, UsageAccounting]:
    policies = {A: TargetPolicy.of(_ROUTE), B: TargetPolicy.of(_ROUTE)}
    health = HealthJudge(policies.__getitem__)
    recorder = TargetStatsRecorder(policies.__getitem__, health)
    usage = UsageAccounting(SqliteUsageStore(":memory:"))
    usage.configure(_CONFIG)
    service = AttemptLogService(recorder, usage=usage)
    for data in messages:
        message = decode(data)
        service._receive(message.identifier.log_name, message.identifier.node.id, message)
    return recorder, usage


def _judged(recorder: TargetStatsRecorder) -> dict[str, Any]:
    """Each target's health as judged, but for the instant it ends (the two runs happen at different times)."""
    return {
        key: (
            health.consecutive_failures,
            health.recent_attempts,
            health.recent_failures,
            health.out and health.out.why,
        )
        for key, health in recorder.health.targets.items()
    }


def test_each_kept_field_has_envoys_number_and_type() -> None:
    pairs: list[tuple[Descriptor, Descriptor]] = [
        (log_messages.StreamAccessLogsMessage.DESCRIPTOR, als_pb2.StreamAccessLogsMessage.DESCRIPTOR)
    ]
    seen = set()
    while pairs:
        ours, envoys = pairs.pop()
        if ours.full_name in seen:
            continue
        seen.add(ours.full_name)
        for field in ours.fields:
            original = envoys.fields_by_name[field.name]
            shape = (field.number, field.type, field.is_repeated)
            assert shape == (original.number, original.type, original.is_repeated), field.full_name
            if field.message_type is not None and field.message_type.full_name.startswith(log_messages.PACKAGE):
                pairs.append((field.message_type, original.message_type))
            elif field.message_type is not None:
                assert field.message_type.full_name == original.message_type.full_name
    assert len(seen) >= 6, "the message, its entries, an entry, its common properties, request and response"


def test_entries_as_envoy_fills_them_give_the_same_health_statistics_and_usage_decoded_either_way() -> None:
    messages = [
        _message(ANSWER_LOG_NAME, [_answer(A, f"r{i}") for i in range(5)]),
        _message(ANSWER_LOG_NAME, [_answer(B, "r9", attempts=2, ttft_ms="120"), _answer_without_summary(A, "r10")]),
        _message(ATTEMPT_LOG_NAME, [_attempt(A, 502, "r9"), _attempt(B, 429, "r11", retry_after="30")]),
        _message(ATTEMPT_LOG_NAME, [_attempt(A, 0, "r12"), _attempt(A, 503, "r13")]),
    ]
    full_recorder, full_usage = _handled(als_pb2.StreamAccessLogsMessage.FromString, messages)
    cut_recorder, cut_usage = _handled(log_messages.StreamAccessLogsMessage.FromString, messages)
    assert cut_recorder.targets == full_recorder.targets
    assert cut_recorder.targets[A].by_status == {200: 6, 502: 1, 0: 1, 503: 1}
    assert cut_recorder.targets[B].fallbacks == 1 and cut_recorder.targets[B].ttft_histogram.as_dict()["sum_s"] > 0
    assert _judged(cut_recorder) == _judged(full_recorder)
    out = cut_recorder.health.out_of_service(time.time())
    assert set(out) == {A, B}, "A ejected after two failures in a row, B parked by its 429's Retry-After"
    assert list(cut_usage._pending) == list(full_usage._pending)
    assert cut_usage.tokens == full_usage.tokens
    assert sum(cut_usage.tokens.values()) == 6 * 9 + 6 * 4 + 7 + 3
