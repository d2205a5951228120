"""The control plane's view of targets, from attempt observations (no Envoy)."""

from __future__ import annotations

import pytest

from controlplane.telemetry.attempt_log import AttemptCounter
from controlplane.telemetry.recorder import (
    LATENCY_DECAY,
    MAX_PARK_S,
    MIN_PARK_S,
    Observation,
    Recorder,
    retry_after_deadline,
)
from controlplane.telemetry.status import target_state

FALLBACK_CODES = {429, 500, 502, 503, 504}


def recorder() -> Recorder:
    return Recorder(lambda _key, status: status == 0 or status in FALLBACK_CODES)


def seen(
    status: int, latency: float | None = 0.1, attempt: int = 1, retry_after: str = "", at: float = 1000.0
) -> Observation:
    return Observation("k", status, latency if status else None, attempt, retry_after, at)


def test_failures_count_only_fallback_codes_and_missing_responses() -> None:
    r = recorder()
    for status in (200, 400, 404, 502, 0, 503):
        r.record(seen(status))
    stats = r.get("k")
    assert stats.requests == 6
    assert stats.failures == 3
    assert stats.consecutive_failures == 3  # a 400 means the target answered: it resets the streak
    assert dict(stats.by_status) == {200: 1, 400: 1, 404: 1, 502: 1, 0: 1, 503: 1}


def test_a_success_resets_consecutive_failures() -> None:
    r = recorder()
    for status in (502, 502, 200):
        r.record(seen(status))
    assert r.get("k").consecutive_failures == 0


def test_latency_is_a_plain_mean_during_warm_up_then_a_moving_average() -> None:
    r = recorder()
    for latency in (0.1, 0.2, 0.3):
        r.record(seen(200, latency))
    assert r.get("k").latency_s == pytest.approx(0.2)
    r.record(seen(200, 1.2))
    assert r.get("k").latency_s == pytest.approx(0.2 + LATENCY_DECAY * 1.0)


def test_failed_attempts_do_not_move_the_latency() -> None:
    r = recorder()
    r.record(seen(200, 0.1))
    r.record(seen(503, 5.0))
    assert r.get("k").latency_s == pytest.approx(0.1)


def test_fallbacks_are_attempts_after_the_first() -> None:
    r = recorder()
    r.record(seen(200, attempt=1))
    r.record(seen(200, attempt=2))
    r.record(seen(200, attempt=3))
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


def test_429_with_retry_after_marks_the_target_rate_limited_until_then() -> None:
    r = recorder()
    r.record(seen(429, retry_after="30", at=1000.0))
    stats = r.get("k")
    assert stats.rate_limited_until == 1030.0
    assert target_state(stats, 3, now=1010.0)[0] == "rate_limited"
    assert target_state(stats, 3, now=1031.0)[0] == "healthy"


def test_state_follows_the_routes_ejection_threshold() -> None:
    r = recorder()
    assert target_state(r.get("k"), 3, now=0)[0] == "no_traffic"
    for _ in range(3):
        r.record(seen(502))
    assert target_state(r.get("k"), 3, now=0) == ("failing", "3 failures in a row (last status 502)")
    assert target_state(r.get("k"), 0, now=0)[0] == "healthy", "with ejection off the target is never 'failing'"


def test_429_without_retry_after_parks_for_the_routes_default_and_long_retry_after_is_capped() -> None:
    parked: list[tuple[str, float]] = []
    r = Recorder(
        lambda _k, s: s in FALLBACK_CODES,
        default_park=lambda _key: 7.0,
        on_rate_limited=lambda k, u: parked.append((k, u)),
    )
    r.record(seen(429, at=1000.0))
    r.record(seen(429, retry_after="86400", at=2000.0))
    assert parked == [("k", 1007.0), ("k", 2000.0 + MAX_PARK_S)]


def test_a_zero_retry_after_still_parks_for_the_minimum() -> None:
    parked: list[tuple[str, float]] = []
    r = Recorder(lambda _k, s: s in FALLBACK_CODES, on_rate_limited=lambda k, u: parked.append((k, u)))
    r.record(seen(429, retry_after="0", at=1000.0))
    assert parked == [("k", 1000.0 + MIN_PARK_S)]
