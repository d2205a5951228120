"""Past its capacity the control plane loses nothing silently (issue 21): memory stays bounded, what is not
counted is counted as not counted and shown by `switchyard status`, and health keeps working from what arrives."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from envoy.service.accesslog.v3 import als_pb2

from controlplane.health import DEFAULT_POLICY, EJECTED
from controlplane.telemetry.attempt_log import AttemptLogService
from controlplane.telemetry.target_stats import TargetStatsRecorder
from switchyard.cli.status_view import render_status
from switchyard.contract import ANSWER_LOG_NAME, ATTEMPT_LOG_NAME, TARGET_KEY_TAG


def _message(log_name: str, status: int, count: int, first: bool) -> als_pb2.StreamAccessLogsMessage:
    message = als_pb2.StreamAccessLogsMessage()
    if first:
        message.identifier.node.id = "n1"
        message.identifier.log_name = log_name
    for i in range(count):
        entry = message.http_logs.log_entry.add()
        entry.request.request_id = f"{log_name}-{status}-{i}"
        entry.common_properties.custom_tags[TARGET_KEY_TAG] = "k"
        entry.common_properties.upstream_request_attempt_count = 1
        entry.common_properties.time_to_first_upstream_tx_byte.nanos = 1_000_000
        entry.common_properties.time_to_first_upstream_rx_byte.nanos = 6_000_000
        entry.response.response_code.value = status
    return message


async def _stream(messages: list[als_pb2.StreamAccessLogsMessage]) -> AsyncIterator[als_pb2.StreamAccessLogsMessage]:
    for message in messages:
        yield message


def test_answers_past_the_bound_are_counted_as_not_counted_and_failures_still_eject() -> None:
    recorder = TargetStatsRecorder(lambda _key: DEFAULT_POLICY)
    service = AttemptLogService(recorder, max_queued_entries=100)

    async def scenario() -> None:
        handler = asyncio.create_task(service.run())
        await asyncio.sleep(0)  # the handler is running; it gets no turn while the streams below deliver
        answers = [_message(ANSWER_LOG_NAME, 200, 50, first=i == 0) for i in range(5)]  # 250 answers
        await service.StreamAccessLogs(_stream(answers), None)
        assert service.queued_entries == 100, "two messages fill the bound of 100 entries"
        assert service.not_counted["answers"] == 150, "the other three are counted, not dropped silently"
        # the queue is full, yet three failures in a row still take the target out of service at once
        await service.StreamAccessLogs(_stream([_message(ATTEMPT_LOG_NAME, 502, 3, first=True)]), None)
        assert EJECTED in {out.state for out in recorder.health.out_of_service(time.time()).values()}
        handler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await handler

    asyncio.run(scenario())
    assert service.queued_entries == 0, "what was queued is handled when the handler stops"
    assert recorder.get("k").requests == 100 + 3, "every answer that fitted was counted, plus the failures"


def test_switchyard_status_says_what_was_not_counted() -> None:
    document = {
        "config": {"version": "1", "served_version": "1", "last_reload": None},
        "telemetry": {"answers_not_counted": 120, "usage_not_stored": 7, "queued_entries": 80},
        "nodes": [],
        "routes": [],
    }
    text = render_status(document)
    assert "120 answers not counted" in text
    assert "7 usage records not stored" in text
    quiet = render_status(document | {"telemetry": {"answers_not_counted": 0, "usage_not_stored": 0}})
    assert "not counted" not in quiet
