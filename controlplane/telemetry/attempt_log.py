"""Envoy's gRPC access log service: the router's per-attempt log (attempts that did not end 2xx) and the
per-request answer log (see controlplane/resources/access_logs.py and answer_log.py).

Past capacity nothing is silent (issue 21): what arrives is queued, up to MAX_QUEUED_ENTRIES, for one
handler task. When the queue is full, an answer-log message is counted as not counted (its usage, its
served attempt) and dropped, while an attempt-log message (failures and 429s) is still judged at once:
health keeps working from what arrives, and memory stays bounded. Beyond what even the receiving can take,
gRPC's flow control holds Envoy back, and Envoy counts what it drops (`access_logs.grpc_access_log.
logs_dropped` in its own stats).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import grpc
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc

from controlplane.clients import CLIENT_TAG as CLIENT_TAG  # the answer log's tag naming the client (issue 14)
from controlplane.nodes import LoggingNode, node_view
from controlplane.telemetry import log_messages
from controlplane.telemetry.answer_log import COUNTING_ROUTES, AnswerLogHandler
from controlplane.telemetry.target_stats import Answer, Observation, StreamMeasures, TargetStatsRecorder
from controlplane.usage.accounting import UsageAccounting
from switchyard.contract import ANSWER_LOG_NAME, OUTPUT_TOKENS_TAG, STREAM_TAGS, TARGET_KEY_TAG

log = logging.getLogger("switchyard.controlplane.telemetry")

# Entries waiting for the handler. Health must be decided within a second: a backlog longer than about a
# second of a replica's capacity could only be judged too late, so the queue holds no more than that.
MAX_QUEUED_ENTRIES = 50_000


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
    """The attempt ended in the gateway's own upstream filters: a local reply of ours (by its details), or an
    ext_proc that died after the target had answered (seen in the chaos suite as details '', no flags, first
    byte sent and received)."""
    if entry.response.response_code_details.startswith(_GATEWAY_REPLIES):
        return True
    common = entry.common_properties
    if entry.response.response_code.value != 0 or common.response_flags.ByteSize() != 0:
        return False
    answered: bool = common.HasField("time_to_first_upstream_rx_byte")
    return answered


def cut_short(entry: accesslog_pb2.HTTPAccessLogEntry) -> bool:
    """The attempt ended before the target answered for a reason on the client's side: no status, no response
    flag, no reply of ours. A target's own failures (refused, reset, timed out, a connection closed) always
    carry a response flag; an attempt without one was cancelled under the target: its client hung up (a
    closed chat window, a stopped stream, a client timeout: measured on Envoy 1.40, the attempt log then has
    no status, no flag and no details), or an ext_proc died before the request left. Neither says anything of
    the target, and counting them as failures ejected healthy targets whose clients gave up."""
    common = entry.common_properties
    return (
        entry.response.response_code.value == 0
        and common.response_flags.ByteSize() == 0
        and not common.HasField("time_to_first_upstream_rx_byte")
        and not entry.response.response_code_details.startswith(_GATEWAY_REPLIES)
    )


def observation_of(entry: accesslog_pb2.HTTPAccessLogEntry, attempt: int = 1) -> Observation | None:
    common = entry.common_properties
    key = common.custom_tags.get(TARGET_KEY_TAG, "")
    if not key or key == "-":
        return None  # no endpoint was picked (e.g. no healthy upstream): nothing to say about a target
    if _made_by_the_gateway(entry) or cut_short(entry):
        return None  # a crashed ext_proc or a client that hung up must not eject a healthy provider
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


def add_to_server(service: AttemptLogService, server: grpc.aio.Server) -> None:
    """`service` as Envoy's AccessLogService, its messages decoded with only the fields the control plane
    reads (log_messages.py) rather than as Envoy's full StreamAccessLogsMessage."""
    method = grpc.stream_unary_rpc_method_handler(
        service.StreamAccessLogs,
        request_deserializer=log_messages.StreamAccessLogsMessage.FromString,
        response_serializer=als_pb2.StreamAccessLogsResponse.SerializeToString,
    )
    name = als_pb2.DESCRIPTOR.services_by_name["AccessLogService"].full_name
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, {"StreamAccessLogs": method}),))


class AttemptLogService(als_pb2_grpc.AccessLogServiceServicer):  # type: ignore[misc]
    def __init__(
        self,
        recorder: TargetStatsRecorder,
        on_answer: Callable[[accesslog_pb2.HTTPAccessLogEntry, str], None] = lambda _entry, _node: None,
        usage: UsageAccounting | None = None,
        max_queued_entries: int = MAX_QUEUED_ENTRIES,
    ) -> None:
        self.recorder = recorder
        self._on_answer = on_answer  # every answer, with the node that logged it (without `usage`)
        self._answers = AnswerLogHandler(recorder, usage)
        # What guardrails did, counted from the answer log's summaries (for /status and /metrics).
        self.guardrails = self._answers.guardrails
        self.attempts = AttemptCounter()
        self._queue: deque[tuple[str, str, als_pb2.StreamAccessLogsMessage, int]] = deque()
        self._queued_entries = 0
        self._max_queued_entries = max_queued_entries
        self._queue_changed = asyncio.Event()
        self._handler_running = False
        # Entries received but not counted because the handler was behind (by log: "answers", "attempts").
        self.not_counted: Counter[str] = Counter()
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
                self._receive(log_name, node, message)
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

    def _receive(self, log_name: str, node: str, message: als_pb2.StreamAccessLogsMessage) -> None:
        if not self._handler_running:  # no handler task (tests, tools): handle as it arrives
            self._record(log_name, node, message)
            return
        entries = len(message.http_logs.log_entry)
        if self._queued_entries + entries > self._max_queued_entries:
            if log_name == ANSWER_LOG_NAME:
                self.not_counted["answers"] += entries
            else:
                self._record(log_name, node, message)  # failures and 429s: health keeps working
            return
        self._queue.append((log_name, node, message, entries))
        self._queued_entries += entries
        self._queue_changed.set()

    @property
    def queued_entries(self) -> int:
        return self._queued_entries

    async def run(self) -> None:
        """The handler task: what arrives is handled in order, one message at a time, letting the streams'
        receivers in between (they are what counts what does not fit)."""
        self._handler_running = True
        try:
            while True:
                if not self._queue:
                    self._queue_changed.clear()
                    await self._queue_changed.wait()
                    continue
                log_name, node, message, entries = self._queue.popleft()
                self._queued_entries -= entries
                self._record(log_name, node, message)
                await asyncio.sleep(0)
        finally:
            self._handler_running = False
            while self._queue:  # what is still queued when the service stops is handled, not lost
                log_name, node, message, entries = self._queue.popleft()
                self._queued_entries -= entries
                self._record(log_name, node, message)

    def _record(self, log_name: str, node: str, message: als_pb2.StreamAccessLogsMessage) -> None:
        now = time.time()
        if log_name == ANSWER_LOG_NAME:
            if self._answers.usage is None:
                for entry in message.http_logs.log_entry:
                    self._on_answer(entry, node)
            served = self._answers.handle(message.http_logs.log_entry, node, now)
            if node and served:
                self.attempts_by_node[node] += served
            return
        for entry in message.http_logs.log_entry:
            if node:
                self.attempts_by_node[node] += 1
            attempt = self.attempts.next_attempt(entry.request.request_id)
            if cut_short(entry):
                self.recorder.record_abandoned(entry.common_properties.custom_tags.get(TARGET_KEY_TAG, ""))
                continue
            observation = observation_of(entry, attempt)
            if observation is not None:
                if observation.latency_s is not None and entry.common_properties.route_name.startswith(COUNTING_ROUTES):
                    observation = replace(observation, latency_s=None)  # a token count: no generation latency
                self.recorder.record(observation, now)
