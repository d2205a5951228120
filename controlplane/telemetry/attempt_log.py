"""Envoy's gRPC access log service: the router's per-attempt log and, where a route measures latency per
output token, the per-request answer log (see controlplane/resources/access_logs.py)."""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc

from controlplane.clients import CLIENT_TAG as CLIENT_TAG  # the answer log's tag naming the client (issue 14)
from controlplane.nodes import LoggingNode, node_view
from controlplane.telemetry.target_stats import Answer, Observation, StreamMeasures, TargetStatsRecorder
from switchyard.contract import ANSWER_LOG_NAME, OUTPUT_TOKENS_TAG, STREAM_TAGS, TARGET_KEY_TAG

log = logging.getLogger("switchyard.controlplane.telemetry")


class AttemptCounter:
    """Which attempt of its request an entry is. Envoy's per-attempt log carries no attempt number, but every
    attempt of a request shares its request id and is logged when it ends, so before the next one starts."""

    def __init__(self, remember: int = 20_000) -> None:
        self._attempts: OrderedDict[str, int] = OrderedDict()
        self._remember = remember

    def next_attempt(self, request_id: str) -> int:
        if not request_id:
            return 1
        attempt = self._attempts.pop(request_id, 0) + 1
        self._attempts[request_id] = attempt
        if len(self._attempts) > self._remember:
            self._attempts.popitem(last=False)
        return attempt


# Response code details of answers the gateway's own upstream filters made (an ext_proc that failed, the
# Lua rewrite refusing a body, our translator refusing a parameter): the target was never asked.
_GATEWAY_REPLIES = ("ext_proc", "lua_response", "switchyard_")


def _made_by_the_gateway(entry: accesslog_pb2.HTTPAccessLogEntry) -> bool:
    """The attempt ended in the gateway's own upstream filters: a local reply of ours (by its details), or no
    status and no upstream failure flagged while either nothing was sent to the target or the target had
    already answered (an ext_proc that died before the request left, or while translating the answer: seen
    in the chaos suite as details '', no flags, first byte sent and received). A target's own failures
    (refused, reset, timed out) carry a response flag; a target that got the request and never answered is
    its own failure."""
    if entry.response.response_code_details.startswith(_GATEWAY_REPLIES):
        return True
    common = entry.common_properties
    if entry.response.response_code.value != 0 or common.response_flags.ByteSize() != 0:
        return False
    never_sent = not common.HasField("time_to_first_upstream_tx_byte")
    answered = common.HasField("time_to_first_upstream_rx_byte")
    return never_sent or answered


def observation_of(entry: accesslog_pb2.HTTPAccessLogEntry, attempt: int = 1) -> Observation | None:
    common = entry.common_properties
    key = common.custom_tags.get(TARGET_KEY_TAG, "")
    if not key or key == "-":
        return None  # no endpoint was picked (e.g. no healthy upstream): nothing to say about a target
    if _made_by_the_gateway(entry):
        return None  # a crashed ext_proc must not eject a healthy provider
    status = entry.response.response_code.value
    latency = common.time_to_first_upstream_rx_byte.ToTimedelta().total_seconds() if status else None
    return Observation(
        target_key=key,
        status=status,
        latency_s=latency if latency else None,
        attempt=attempt,
        retry_after=entry.response.response_headers.get("retry-after", ""),
        at=common.start_time.ToDatetime().timestamp() if common.HasField("start_time") else 0.0,
    )


def stream_measures_of(entry: accesslog_pb2.HTTPAccessLogEntry) -> StreamMeasures | None:
    """What the ext_proc measured of the stream it translated for this request, if it did."""
    tags = entry.common_properties.custom_tags
    if tags.get(TARGET_KEY_TAG, "-") == "-":
        return None
    try:
        values = {key: float(tags[tag]) for key, tag in STREAM_TAGS.items() if tags.get(tag, "-") != "-"}
    except ValueError:
        return None
    if "ttft_ms" not in values:
        return None
    return StreamMeasures(
        target_key=tags[TARGET_KEY_TAG],
        ttft_s=values["ttft_ms"] / 1000,
        generation_s=values.get("generation_ms", 0.0) / 1000,
        output_tokens=int(values.get("output_tokens", 0)),
    )


def answer_of(entry: accesslog_pb2.HTTPAccessLogEntry) -> Answer | None:
    """An answer served in one attempt, with its timings and output tokens where known; None for anything
    else: with several attempts the upstream timings mix them up."""
    common = entry.common_properties
    key = common.custom_tags.get(TARGET_KEY_TAG, "")
    if not key or key == "-" or common.upstream_request_attempt_count != 1:
        return None
    if entry.response.response_code.value != 200:
        return None
    sent = common.time_to_first_upstream_tx_byte.ToTimedelta().total_seconds()
    first = common.time_to_first_upstream_rx_byte.ToTimedelta().total_seconds()
    received = common.time_to_last_upstream_rx_byte.ToTimedelta().total_seconds()
    if received <= sent or first <= sent:
        return None
    try:
        tokens = int(float(common.custom_tags.get(OUTPUT_TOKENS_TAG, "0")))
    except ValueError:
        tokens = 0
    streamed = stream_measures_of(entry)
    return Answer(
        target_key=key,
        output_tokens=max(tokens, 0),
        duration_s=received - sent,
        first_token_s=streamed.ttft_s if streamed is not None else first - sent,
    )


class AttemptLogService(als_pb2_grpc.AccessLogServiceServicer):  # type: ignore[misc]
    def __init__(
        self,
        recorder: TargetStatsRecorder,
        on_answer: Callable[[accesslog_pb2.HTTPAccessLogEntry, str], None] = lambda _entry, _node: None,
    ) -> None:
        self.recorder = recorder
        self._on_answer = on_answer  # usage accounting: every answer, with the node that logged it
        self.attempts = AttemptCounter()
        # Attempts logged per Envoy node id: the identifier of each stream's first message names the node.
        self.attempts_by_node: Counter[str] = Counter()
        # Nodes with an attempt-log stream open to this control plane, whether or not their ADS stream is
        # here: a standby replica lists the nodes it hears from this way.
        self.logging_nodes: dict[str, LoggingNode] = {}
        # Told when a node starts or stops logging here (client request limits are divided by live nodes).
        self.on_nodes_changed: Callable[[], None] = lambda: None

    async def StreamAccessLogs(
        self, request_iterator: AsyncIterator[als_pb2.StreamAccessLogsMessage], context: grpc.aio.ServicerContext
    ) -> als_pb2.StreamAccessLogsResponse:
        log_name = ""
        node = ""
        try:
            async for message in request_iterator:
                if message.HasField("identifier") and not node:  # sent on a stream's first message
                    log_name = message.identifier.log_name
                    node = message.identifier.node.id
                    self._opened(message.identifier.node)
                self._record(log_name, node, message)
        finally:
            self._closed(node)
        return als_pb2.StreamAccessLogsResponse()

    def _opened(self, node: Any) -> None:
        known = self.logging_nodes.get(node.id)
        if known is None:
            listen = node_view(node).listen
            known = self.logging_nodes[node.id] = LoggingNode(node.id, None if listen is None else str(listen))
            self.on_nodes_changed()
        known.streams += 1

    def _closed(self, name: str) -> None:
        known = self.logging_nodes.get(name)
        if known is not None:
            known.streams -= 1
            if known.streams <= 0:
                del self.logging_nodes[name]
                self.on_nodes_changed()

    def _record(self, log_name: str, node: str, message: als_pb2.StreamAccessLogsMessage) -> None:
        for entry in message.http_logs.log_entry:
            if log_name == ANSWER_LOG_NAME:
                self._on_answer(entry, node)
                if (answer := answer_of(entry)) is not None:
                    self.recorder.record_answer(answer)
                if (measured := stream_measures_of(entry)) is not None:
                    self.recorder.record_stream(measured)
                continue
            if node:
                self.attempts_by_node[node] += 1
            attempt = self.attempts.next_attempt(entry.request.request_id)
            observation = observation_of(entry, attempt)
            if observation is not None:
                self.recorder.record(observation)
