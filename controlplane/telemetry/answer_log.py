"""The answer log's handler: one entry per client request, read once for everything it feeds (issue 21).

Envoy logs only the attempts that did not end 2xx to the attempt log (resources/access_logs.py): a 2xx answer
is always its request's last attempt, so the answer log's entry already says all the statistics and the
health judge need of it (target, status, attempt number, time to first byte), and every attempt is still
seen exactly once. That halves the entries per request, and this handler reads each field of an entry once:
the custom tags into one dict, the timings as plain numbers (protobuf's ToTimedelta/ToDatetime cost more
than everything else together), the usage through UsageAccounting.add_answer.

The time to first byte of a 2xx attempt is measured from its first byte sent to the target: the attempt log
measured it from the attempt's start, which added the gateway's own filters and any connection set-up.
"""

from __future__ import annotations

from collections.abc import Sequence

from envoy.data.accesslog.v3 import accesslog_pb2
from google.protobuf.duration_pb2 import Duration

from controlplane.telemetry.target_stats import Answer, StreamMeasures, TargetStatsRecorder
from controlplane.usage.accounting import UsageAccounting
from switchyard.config.model import LatencyMeasure
from switchyard.contract import OUTPUT_TOKENS_TAG, STREAM_TAGS, TARGET_KEY_TAG

_GATEWAY_REPLIES = ("ext_proc", "lua_response", "switchyard_")  # see attempt_log._made_by_the_gateway
_TTFT_TAG = STREAM_TAGS["ttft_ms"]


def _seconds(duration: Duration) -> float:
    return float(duration.seconds + duration.nanos / 1e9)


class AnswerLogHandler:
    """Feeds the statistics, the health judge and usage accounting from answer-log entries."""

    def __init__(self, recorder: TargetStatsRecorder, usage: UsageAccounting | None) -> None:
        self.recorder = recorder
        self.usage = usage

    def handle(self, entries: Sequence[accesslog_pb2.HTTPAccessLogEntry], node: str, now: float) -> int:
        """The entries of one message from `node`; returns how many were attempts a target served (for the
        per-node attempt count)."""
        served = 0
        refusals_to_check = False
        usage = self.usage
        for entry in entries:
            common = entry.common_properties
            tags = dict(common.custom_tags)
            key = tags.get(TARGET_KEY_TAG)
            if not key or key == "-":
                continue  # no endpoint was picked (a local reply, no healthy target): no target, no usage
            response = entry.response
            status = response.response_code.value
            attempts = common.upstream_request_attempt_count or 1
            sent = _seconds(common.time_to_first_upstream_tx_byte)
            first = _seconds(common.time_to_first_upstream_rx_byte)
            if 200 <= status < 300 and not response.response_code_details.startswith(_GATEWAY_REPLIES):
                served += 1
                latency = first - sent if first > sent else None
                self.recorder.record_attempt(key, status, latency, attempts, "", now)
            if usage is not None and (target := usage.target(key)) is not None:
                start, ended = common.start_time, common.time_to_last_downstream_tx_byte
                request_id = entry.request.request_id
                refusals_to_check |= usage.add_answer(
                    tags, target, node, request_id, start.seconds, start.nanos, _seconds(ended)
                )
            if _TTFT_TAG in tags:
                self._stream(key, tags)
            if attempts == 1 and status == 200:
                self._answer(key, tags, sent, first, _seconds(common.time_to_last_upstream_rx_byte))
        if refusals_to_check and usage is not None:
            usage.check_refusals()
        return served

    def _stream(self, key: str, tags: dict[str, str]) -> None:
        """What the ext_proc measured of a stream it translated (attempt_log.stream_measures_of, on the dict)."""
        try:
            values = {name: float(tags[tag]) for name, tag in STREAM_TAGS.items() if tags.get(tag, "-") != "-"}
        except ValueError:
            return
        if "ttft_ms" in values:
            self.recorder.record_stream(
                StreamMeasures(
                    key,
                    values["ttft_ms"] / 1000,
                    values.get("generation_ms", 0.0) / 1000,
                    int(values.get("output_tokens", 0)),
                )
            )

    def _answer(self, key: str, tags: dict[str, str], sent: float, first: float, received: float) -> None:
        """attempt_log.answer_of on values already read; skipped when it would change nothing (no tokens to
        count on a route that ranks by first byte, the common case)."""
        if received <= sent or first <= sent:
            return
        try:
            tokens = max(int(float(tags.get(OUTPUT_TOKENS_TAG, "0"))), 0)
        except ValueError:
            tokens = 0
        streamed_ttft = tags.get(_TTFT_TAG, "-")
        measure = self.recorder.policy_of(key).latency.measure
        if tokens == 0 and measure is LatencyMeasure.FIRST_BYTE:
            return
        try:
            first_token = float(streamed_ttft) / 1000 if streamed_ttft != "-" else first - sent
        except ValueError:
            first_token = first - sent
        self.recorder.record_answer(Answer(key, tokens, received - sent, first_token))
