"""The answer log's handler: one entry per client request, read once for everything it feeds (issue 21).

Envoy logs only the attempts that did not end 2xx to the attempt log (resources/access_logs.py): a 2xx answer
is always its request's last attempt, so the answer log's entry already says all the statistics and the
health judge need of it (target, status, attempt number, time to first byte), and every attempt is still
seen exactly once. That halves the entries per request, and this handler reads each field of an entry once:
Envoy formats all of it into one tag (controlplane/answer_summary.py), split once here; entries without it
(an Envoy still on an older config) are read field by field, the timings as plain numbers (protobuf's
ToTimedelta/ToDatetime cost more than everything else together).

Token counts (/v1/messages/count_tokens, /v1/responses/input_tokens; the route name says the endpoint) are
judged for health like any answer but feed no latency: least_latency ranks targets by how fast they generate.

The time to first byte of a 2xx attempt is measured from its first byte sent to the target: the attempt log
measured it from the attempt's start, which added the gateway's own filters and any connection set-up.
"""

from __future__ import annotations

from collections.abc import Sequence

from envoy.data.accesslog.v3 import accesslog_pb2
from google.protobuf.duration_pb2 import Duration

from controlplane import answer_summary as summary
from controlplane.answer_summary import (
    ATTEMPTS,
    DETAILS,
    FIRST_BYTE_US,
    LAST,
    OUTPUT_TOKENS,
    ROUTE,
    SEPARATOR,
    STATUS,
    TARGET,
)
from controlplane.clients import CLIENT_TAG
from controlplane.telemetry.guardrail_counts import GuardrailCounts
from controlplane.telemetry.target_stats import Answer, StreamMeasures, TargetStatsRecorder
from controlplane.usage.accounting import UsageAccounting
from controlplane.usage.record import TargetInfo, UsageRecord, usage_from_summary
from switchyard.config.model import ClientEndpoint, LatencyMeasure
from switchyard.contract import ANSWER_SUMMARY_TAG, OUTPUT_TOKENS_TAG, STREAM_TAGS, TARGET_KEY_TAG, route_name

_GATEWAY_REPLIES = ("ext_proc", "lua_response", "switchyard_")  # see attempt_log._made_by_the_gateway
_TTFT_TAG = STREAM_TAGS["ttft_ms"]
_TTFT = summary.STREAM["ttft_ms"]
# Routes of the token-counting endpoints (`<endpoint>:<model>`): their answers do not feed latency.
COUNTING_ROUTES = tuple(route_name(e.value, "") for e in ClientEndpoint if e.counts_tokens)


def _seconds(duration: Duration) -> float:
    return float(duration.seconds + duration.nanos / 1e9)


class AnswerLogHandler:
    """Feeds the statistics, the health judge and usage accounting from answer-log entries."""

    def __init__(self, recorder: TargetStatsRecorder, usage: UsageAccounting | None) -> None:
        self.recorder = recorder
        self.usage = usage
        self.guardrails = GuardrailCounts()

    def handle(self, entries: Sequence[accesslog_pb2.HTTPAccessLogEntry], node: str, now: float) -> int:
        """The entries of one message from `node`; returns how many were attempts a target served (for the
        per-node attempt count).

        This loop runs once per client request of the whole fleet (issue 21), so what depends only on the
        target (its usage name, whether its route ranks by first byte) is looked up once per message and
        target, and each entry costs two tag lookups, one split and the usage record."""
        served = 0
        refusals_to_check = False
        usage = self.usage
        targets = usage.targets if usage is not None else {}
        records: list[UsageRecord] = []
        # By target: its served answers (statistics and health take them in one go), its usage name, whether
        # its route ranks by first byte only
        by_key: dict[str, tuple[list[tuple[int, float | None, int]], TargetInfo | None, bool]] = {}
        for entry in entries:
            tags = entry.common_properties.custom_tags
            text = tags.get(ANSWER_SUMMARY_TAG)
            if text is None:  # an Envoy still on a config from before the summary
                served, refused = self._handle_fields(entry, node, now, served)
                refusals_to_check |= refused
                continue
            fields = text.split(SEPARATOR, LAST)
            for stage, index in summary.GUARDRAILS.items():
                if fields[index]:  # before the target: a request the guardrails refused reached none
                    self.guardrails.add(stage, fields[index])
            key = fields[TARGET]
            if not key:
                continue  # no endpoint was picked (a local reply, no healthy target): no target, no usage
            known = by_key.get(key)
            if known is None:
                first_byte_only = self.recorder.policy_of(key).latency.measure is LatencyMeasure.FIRST_BYTE
                known = by_key[key] = ([], targets.get(key), first_byte_only)
            answers, target, first_byte_only = known
            status_text = fields[STATUS]
            status = int(status_text) if status_text else 0
            attempts_text = fields[ATTEMPTS]
            attempts = int(attempts_text) if attempts_text else 1
            # A token count generates nothing: its time says nothing of the target's generation latency.
            timed = not fields[ROUTE].startswith(COUNTING_ROUTES)
            if 200 <= status < 300 and not fields[DETAILS].startswith(_GATEWAY_REPLIES):
                served += 1
                first_byte = fields[FIRST_BYTE_US]
                latency = int(first_byte) / 1e6 if timed and first_byte and first_byte[0] != "-" else None
                answers.append((status, latency or None, attempts))
            if target is not None:
                records.append(usage_from_summary(fields, target, node, tags.get(CLIENT_TAG, "")))
            if fields[_TTFT]:
                self._summary_stream(key, fields)
            # No output tokens on a route ranking by first byte: the answer would change nothing
            if attempts == 1 and status == 200 and timed and (fields[OUTPUT_TOKENS] or not first_byte_only):
                self._summary_answer(key, fields)
        for key, (answers, _, _) in by_key.items():
            if answers:
                self.recorder.record_served(key, answers, now)
        if records and usage is not None:
            refusals_to_check |= usage.add_records(records)
        if refusals_to_check and usage is not None:
            usage.check_refusals()
        return served

    def _summary_stream(self, key: str, fields: list[str]) -> None:
        """_stream on an answer summary's fields."""
        try:
            values = {name: float(fields[index]) for name, index in summary.STREAM.items() if fields[index]}
        except ValueError:
            return
        self._record_stream(key, values)

    def _summary_answer(self, key: str, fields: list[str]) -> None:
        """_answer on an answer summary's fields: skipped when it would change nothing (no tokens to count on a
        route that ranks by first byte, the common case)."""
        tokens_text = fields[summary.OUTPUT_TOKENS]
        try:
            tokens = max(int(float(tokens_text)), 0) if tokens_text else 0
        except ValueError:
            tokens = 0
        if tokens == 0 and self.recorder.policy_of(key).latency.measure is LatencyMeasure.FIRST_BYTE:
            return
        first_byte, upstream = fields[summary.FIRST_BYTE_US], fields[summary.UPSTREAM_US]
        try:
            first = int(first_byte) / 1e6 if first_byte else 0.0
            received = int(upstream) / 1e6 if upstream else 0.0
        except ValueError:
            return
        if received <= 0 or first <= 0:
            return
        streamed_ttft = fields[_TTFT]
        try:
            first_token = float(streamed_ttft) / 1000 if streamed_ttft else first
        except ValueError:
            first_token = first
        self.recorder.record_answer(Answer(key, tokens, received, first_token))

    def _handle_fields(
        self, entry: accesslog_pb2.HTTPAccessLogEntry, node: str, now: float, served: int
    ) -> tuple[int, bool]:
        """One entry without a summary, read field by field: (served so far, whether to check refusals)."""
        refused = False
        usage = self.usage
        common = entry.common_properties
        tags = dict(common.custom_tags)
        key = tags.get(TARGET_KEY_TAG)
        if not key or key == "-":
            return served, refused  # no endpoint was picked (a local reply, no healthy target)
        response = entry.response
        status = response.response_code.value
        attempts = common.upstream_request_attempt_count or 1
        sent = _seconds(common.time_to_first_upstream_tx_byte)
        first = _seconds(common.time_to_first_upstream_rx_byte)
        timed = not common.route_name.startswith(COUNTING_ROUTES)
        if 200 <= status < 300 and not response.response_code_details.startswith(_GATEWAY_REPLIES):
            served += 1
            latency = first - sent if first > sent and timed else None
            self.recorder.record_attempt(key, status, latency, attempts, "", now)
        if usage is not None and (target := usage.target(key)) is not None:
            start, ended = common.start_time, common.time_to_last_downstream_tx_byte
            request_id = entry.request.request_id
            refused = usage.add_answer(tags, target, node, request_id, start.seconds, start.nanos, _seconds(ended))
        if _TTFT_TAG in tags:
            self._stream(key, tags)
        if attempts == 1 and status == 200 and timed:
            self._answer(key, tags, sent, first, _seconds(common.time_to_last_upstream_rx_byte))
        return served, refused

    def _stream(self, key: str, tags: dict[str, str]) -> None:
        """What the ext_proc measured of a stream it translated (attempt_log.stream_measures_of, on the dict)."""
        try:
            values = {name: float(tags[tag]) for name, tag in STREAM_TAGS.items() if tags.get(tag, "-") != "-"}
        except ValueError:
            return
        self._record_stream(key, values)

    def _record_stream(self, key: str, values: dict[str, float]) -> None:
        """A translated stream's measures, whichever way the entry carried them; none without a first token."""
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
