"""The control plane's view of targets, from attempt observations (no Envoy)."""

from __future__ import annotations

import pytest
from envoy.data.accesslog.v3 import accesslog_pb2

from controlplane.health import (
    EJECTED,
    MAX_PARK_S,
    MIN_PARK_S,
    RATE_LIMITED,
    HealthJudge,
    TargetPolicy,
    retry_after_deadline,
)
from controlplane.telemetry.attempt_log import AttemptCounter, answer_of, cut_short, observation_of
from controlplane.telemetry.status import target_state
from controlplane.telemetry.target_stats import Answer, Observation, StreamMeasures, TargetStatsRecorder
from switchyard.config.model import FailureRate, Health, Latency, LatencyMeasure
from switchyard.contract import OUTPUT_TOKENS_TAG, TARGET_KEY_TAG

NO_EJECTION = Health(consecutive_failures=0, failure_rate=None)


def recorder(health: Health = NO_EJECTION, latency: Latency | None = None) -> tuple[TargetStatsRecorder, list[int]]:
    """A recorder of key "k" judged by the default fallback codes, and the list its health changes land in."""
    changes: list[int] = []
    policy = TargetPolicy(health=health, latency=latency or Latency())
    judge = HealthJudge(lambda _key: policy, lambda: changes.append(1))
    return TargetStatsRecorder(lambda _key: policy, judge), changes


def seen(status: int, latency: float | None = 0.1, attempt: int = 1, retry_after: str = "") -> Observation:
    return Observation("k", status, latency if status else None, attempt, retry_after)


def test_failures_count_only_fallback_codes_and_missing_responses() -> None:
    r, _ = recorder()
    for status in (200, 400, 404, 502, 0, 503):
        r.record(seen(status), now=1000.0)
    stats = r.get("k")
    assert stats.requests == 6
    assert stats.failures == 3
    assert r.health.get("k").consecutive_failures == 3  # a 400 means the target answered: it resets the streak
    assert dict(stats.by_status) == {200: 1, 400: 1, 404: 1, 502: 1, 0: 1, 503: 1}


def test_a_code_outside_the_fallback_codes_is_not_held_against_the_target() -> None:
    policy = TargetPolicy(fallback_codes=frozenset({429, 503}), health=Health(consecutive_failures=2))
    r = TargetStatsRecorder(lambda _key: policy)
    for _ in range(5):
        r.record(seen(500), now=1000.0)
    assert r.get("k").failures == 0
    assert r.health.out_of_service(1000.0) == {}


def test_latency_is_a_plain_mean_during_warm_up_then_a_moving_average_with_the_routes_decay() -> None:
    r, _ = recorder(latency=Latency(decay=0.5, warmup=3))
    for latency in (0.1, 0.2, 0.3):
        r.record(seen(200, latency), now=1000.0)
    assert r.get("k").latency_s == pytest.approx(0.2)
    r.record(seen(200, 1.2), now=1000.0)
    assert r.get("k").latency_s == pytest.approx(0.2 + 0.5 * 1.0)


def test_latency_is_offered_for_routing_only_after_the_warm_up() -> None:
    r, _ = recorder(latency=Latency(warmup=3))
    r.record(seen(200, 0.1), now=1000.0)
    r.record(seen(200, 0.1), now=1000.0)
    assert r.warm_latencies() == {}
    r.record(seen(200, 0.1), now=1000.0)
    assert r.warm_latencies() == {"k": pytest.approx(0.1)}


def test_failed_attempts_do_not_move_the_latency_but_successes_fill_the_histogram() -> None:
    r, _ = recorder()
    r.record(seen(200, 0.1), now=1000.0)
    r.record(seen(503, 5.0), now=1000.0)
    r.record(seen(200, 0.004), now=1000.0)
    stats = r.get("k")
    assert stats.latency_samples == 2
    histogram = stats.latency_histogram.as_dict()
    assert histogram["buckets"]["0.005"] == 1
    assert histogram["buckets"]["0.1"] == 2
    assert histogram["buckets"]["+Inf"] == 2
    assert histogram["sum_s"] == pytest.approx(0.104)


def test_fallbacks_are_attempts_after_the_first() -> None:
    r, _ = recorder()
    for attempt in (1, 2, 3):
        r.record(seen(200, attempt=attempt), now=1000.0)
    assert r.get("k").fallbacks == 2


def test_attempt_counter_numbers_the_attempts_of_each_request() -> None:
    counter = AttemptCounter(remember=2)
    assert [counter.next_attempt(r) for r in ("a", "a", "b", "a")] == [1, 2, 1, 3]
    counter.next_attempt("c")  # forgets the oldest ("b")
    assert counter.next_attempt("b") == 1
    assert counter.next_attempt("") == 1


@pytest.mark.parametrize(
    ("header", "expected"),
    [("30", 1030.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480.0), ("", None), ("soon", None)],
)
def test_retry_after_as_seconds_or_http_date(header: str, expected: float | None) -> None:
    assert retry_after_deadline(header, 1000.0) == expected


def test_429_with_retry_after_parks_the_target_until_then_and_it_comes_back_by_itself() -> None:
    r, changes = recorder()
    r.record(seen(429, retry_after="30"), now=1000.0)
    (mark,) = r.health.out_of_service(1010.0).values()
    assert (mark.state, mark.until) == (RATE_LIMITED, 1030.0)
    assert changes == [1]
    assert target_state(r.get("k"), r.health.get("k"), now=1010.0) == (
        RATE_LIMITED,
        "answered 429 (Retry-After: 30); back in 20s",
    )
    assert r.health.out_of_service(1031.0) == {}
    assert target_state(r.get("k"), r.health.get("k"), now=1031.0) == ("healthy", "last status 429")


def test_429_without_retry_after_parks_for_the_routes_default_and_long_retry_after_is_capped() -> None:
    r, _ = recorder(Health(consecutive_failures=0, failure_rate=None, rate_limited_for=7.0))
    r.record(seen(429), now=1000.0)
    assert r.health.get("k").out is not None and r.health.get("k").out.until == 1007.0
    r.record(seen(429, retry_after="86400"), now=2000.0)
    assert r.health.get("k").out is not None and r.health.get("k").out.until == 2000.0 + MAX_PARK_S


def test_a_zero_retry_after_still_parks_for_the_minimum() -> None:
    r, _ = recorder()
    r.record(seen(429, retry_after="0"), now=1000.0)
    assert r.health.get("k").out is not None and r.health.get("k").out.until == 1000.0 + MIN_PARK_S


def test_consecutive_failures_eject_for_the_ejection_time() -> None:
    r, changes = recorder(Health(consecutive_failures=3, failure_rate=None, ejection_time=10.0))
    for status in (502, 0):
        r.record(seen(status), now=1000.0)
    assert r.health.out_of_service(1000.0) == {}
    assert target_state(r.get("k"), r.health.get("k"), now=1000.0)[0] == "failing"
    r.record(seen(503), now=1000.0)
    (mark,) = r.health.out_of_service(1000.0).values()
    assert (mark.state, mark.until) == (EJECTED, 1010.0)
    assert mark.why == "3 failures in a row (last: 503)"
    assert changes == [1]
    assert r.health.out_of_service(1010.5) == {}


def test_429s_neither_eject_nor_end_a_streak_of_failures() -> None:
    r, _ = recorder(Health(consecutive_failures=2, failure_rate=None, rate_limited_for=1.0))
    r.record(seen(502), now=1000.0)
    r.record(seen(429), now=1000.0)
    assert r.health.get("k").consecutive_failures == 1
    r.record(seen(502), now=1001.5)
    assert r.health.get("k").out is not None and r.health.get("k").out.state == EJECTED


def test_attempts_made_while_out_of_service_do_not_stack_ejections() -> None:
    r, changes = recorder(Health(consecutive_failures=1, failure_rate=None, ejection_time=10.0))
    r.record(seen(502), now=1000.0)
    for _ in range(5):  # panic mode: every target out, Envoy still tries them
        r.record(seen(502), now=1001.0)
    assert r.health.get("k").out is not None and r.health.get("k").out.until == 1010.0
    assert changes == [1]


def test_a_failure_rate_over_the_window_ejects_once_enough_attempts_were_seen() -> None:
    rate = FailureRate(threshold=0.5, min_requests=10, window=10.0)
    r, _ = recorder(Health(consecutive_failures=0, failure_rate=rate, ejection_time=5.0))
    for i in range(9):  # alternate: never two failures in a row, 5 of 9 failed, but below min_requests
        r.record(seen(502 if i % 2 == 0 else 200), now=1000.0 + i * 0.1)
    assert r.health.out_of_service(1001.0) == {}
    r.record(seen(200), now=1001.0)  # 5 of 10 failed: the threshold is reached
    (mark,) = r.health.out_of_service(1001.0).values()
    assert mark.state == EJECTED and mark.until == 1006.0
    assert mark.why == "5 of the last 10 attempts failed (within 10s)"


def test_failures_older_than_the_window_no_longer_count() -> None:
    rate = FailureRate(threshold=0.5, min_requests=4, window=2.0)
    r, _ = recorder(Health(consecutive_failures=0, failure_rate=rate))
    for _ in range(3):
        r.record(seen(502), now=1000.0)
    for _ in range(3):
        r.record(seen(200), now=1005.0)
    assert r.health.out_of_service(1005.0) == {}, "the failures were 5s ago, outside the 2s window"


def test_a_target_never_tried_has_no_traffic() -> None:
    r, _ = recorder()
    assert target_state(r.get("k"), r.health.get("k"), now=0.0) == ("no_traffic", "no attempt seen yet")


def test_per_output_token_routes_rank_by_answer_time_per_token_and_count_tokens() -> None:
    r, _ = recorder(latency=Latency(measure=LatencyMeasure.PER_OUTPUT_TOKEN, warmup=1))
    r.record(seen(200, 0.5), now=1000.0)  # first byte: histogram only, not the ranking average
    assert r.get("k").latency_s is None
    r.record_answer(Answer("k", output_tokens=200, duration_s=0.02))
    stats = r.get("k")
    assert stats.latency_s == pytest.approx(0.0001)
    assert stats.output_tokens == 200
    assert stats.latency_histogram.as_dict()["buckets"]["0.5"] == 1


def test_first_byte_routes_count_tokens_but_keep_ranking_by_first_byte() -> None:
    r, _ = recorder()
    r.record(seen(200, 0.05), now=1000.0)
    r.record_answer(Answer("k", output_tokens=10, duration_s=0.5))
    assert r.get("k").latency_s == pytest.approx(0.05)
    assert r.get("k").output_tokens == 10


def _answer_entry(tokens: str, attempts: int = 1, status: int = 200) -> accesslog_pb2.HTTPAccessLogEntry:
    entry = accesslog_pb2.HTTPAccessLogEntry()
    common = entry.common_properties
    common.custom_tags[TARGET_KEY_TAG] = "k"
    if tokens:
        common.custom_tags[OUTPUT_TOKENS_TAG] = tokens
    common.upstream_request_attempt_count = attempts
    common.time_to_first_upstream_tx_byte.FromMilliseconds(2)
    common.time_to_first_upstream_rx_byte.FromMilliseconds(12)
    common.time_to_last_upstream_rx_byte.FromMilliseconds(52)
    entry.response.response_code.value = status
    return entry


def test_answer_log_entries_become_answers_only_for_one_attempt_successes_with_usage() -> None:
    assert answer_of(_answer_entry("42")) == Answer("k", 42, pytest.approx(0.05), pytest.approx(0.01))
    assert answer_of(_answer_entry("42.0")) is not None
    assert answer_of(_answer_entry("")) == Answer("k", 0, pytest.approx(0.05), pytest.approx(0.01)), "a stream"
    assert answer_of(_answer_entry("42", attempts=2)) is None, "a fallback's timings mix both attempts"
    assert answer_of(_answer_entry("42", status=500)) is None


def test_translated_stream_measures_fill_the_genai_histograms_and_token_count() -> None:
    r, _ = recorder()
    r.record_stream(StreamMeasures("k", ttft_s=0.2, generation_s=0.9, output_tokens=10))
    stats = r.get("k")
    assert stats.ttft_histogram.as_dict()["buckets"]["0.25"] == 1
    assert stats.time_per_output_token_histogram.as_dict()["sum_s"] == pytest.approx(0.1)
    assert stats.output_tokens == 10
    assert stats.latency_s is None, "routing keeps ranking by the attempt log's first byte"


def test_first_token_routes_rank_by_the_measured_time_to_first_token_of_answers() -> None:
    r, _ = recorder(latency=Latency(measure=LatencyMeasure.FIRST_TOKEN, warmup=1))
    r.record(seen(200, 0.001), now=1000.0)  # the attempt log's first byte: not what this route ranks by
    assert r.get("k").latency_s is None
    r.record_answer(Answer("k", output_tokens=0, duration_s=0.5, first_token_s=0.2))
    assert r.get("k").latency_s == pytest.approx(0.2)


def test_a_translated_streams_answer_takes_its_time_to_first_token_from_the_ext_proc() -> None:
    entry = _answer_entry("")
    entry.common_properties.custom_tags["switchyard_ttft_ms"] = "150"
    answer = answer_of(entry)
    assert answer is not None and answer.first_token_s == pytest.approx(0.15)


@pytest.mark.parametrize(
    "details",
    ["ext_proc_error_gRPC_error_14{upstream_connect_error}", "lua_response", "switchyard_translation"],
)
def test_answers_the_gateway_made_itself_say_nothing_about_the_target(details: str) -> None:
    entry = _answer_entry("", status=503)
    entry.response.response_code_details = details
    assert observation_of(entry) is None
    entry.response.response_code_details = "via_upstream"
    observed = observation_of(entry)
    assert observed is not None and observed.status == 503


def test_an_attempt_that_never_left_the_gateway_says_nothing_about_the_target() -> None:
    entry = accesslog_pb2.HTTPAccessLogEntry()
    entry.common_properties.custom_tags[TARGET_KEY_TAG] = "k"
    assert observation_of(entry) is None, "no status, nothing sent, no upstream failure: the ext_proc died"
    assert cut_short(entry)
    entry.common_properties.response_flags.upstream_connection_failure = True
    refused = observation_of(entry)
    assert refused is not None and refused.status == 0, "a target that refuses the connection is its own failure"
    assert not cut_short(entry)
    entry.common_properties.response_flags.upstream_connection_failure = False
    entry.common_properties.time_to_first_upstream_tx_byte.FromMilliseconds(1)
    assert observation_of(entry) is None, "sent, then no answer and no flag: its client hung up"
    assert cut_short(entry)
    entry.common_properties.response_flags.upstream_request_timeout = True
    timed_out = observation_of(entry)
    assert timed_out is not None and timed_out.status == 0, "sent, then no answer in time: the target's"
    entry.common_properties.response_flags.upstream_request_timeout = False
    entry.common_properties.time_to_first_upstream_rx_byte.FromMilliseconds(5)
    assert observation_of(entry) is None, "answered, then no status: the ext_proc died translating the answer"
    entry.common_properties.response_flags.upstream_remote_reset = True
    reset = observation_of(entry)
    assert reset is not None and reset.status == 0, "a target that resets mid-answer is its own failure"
