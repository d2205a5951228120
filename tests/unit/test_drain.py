"""The drain loop's decisions, on a fake clock with a scripted Envoy: when the listener closes, when the drain
ends, what it logs. No real time passes (the fake sleep moves the fake clock)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from switchyard.supervisor.drain import DrainSettings, Outcome, drain_envoy, progress_line, wait_for_drain
from switchyard.supervisor.envoy_admin import AdminError, EnvoyAdmin
from tests.support.fake_envoy_admin import FakeAdminHandler, UnixHTTPServer, serving

SETTINGS = DrainSettings(timeout=60.0, notice=5.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class FakeEnvoy:
    """Requests in flight as a function of the time since the drain started; every call recorded."""

    def __init__(
        self,
        clock: FakeClock,
        in_flight: Callable[[float], int | None] = lambda _: 0,
        second_signal_at: float | None = None,
        exits_at: float | None = None,
    ) -> None:
        self.clock = clock
        self.start = clock.now
        self._in_flight = in_flight
        self._second_signal_at = second_signal_at
        self._exits_at = exits_at
        self.closed_at: list[float] = []
        self.reads = 0

    @property
    def t(self) -> float:
        return self.clock.now - self.start

    def in_flight(self) -> int:
        self.reads += 1
        count = self._in_flight(self.t)
        if count is None:
            raise AdminError("no answer")
        return count

    def close_listener(self) -> None:
        self.closed_at.append(self.t)

    def interrupted(self) -> bool:
        return self._second_signal_at is not None and self.t >= self._second_signal_at

    def envoy_running(self) -> bool:
        return self._exits_at is None or self.t < self._exits_at


def _drain(envoy: FakeEnvoy, settings: DrainSettings = SETTINGS) -> tuple[Outcome, float, int | None]:
    result = wait_for_drain(envoy, settings, envoy.clock, envoy.clock.sleep)
    assert result.elapsed == pytest.approx(envoy.t)
    return result.outcome, result.elapsed, result.in_flight


def test_nothing_in_flight_waits_out_the_notice_then_stops() -> None:
    envoy = FakeEnvoy(FakeClock())
    outcome, elapsed, in_flight = _drain(envoy)
    assert outcome is Outcome.DRAINED and in_flight == 0
    assert envoy.closed_at == [pytest.approx(5.0)], "the listener closes once, when the notice is over"
    assert 5.0 < elapsed <= 5.0 + SETTINGS.settle + SETTINGS.poll_every


def test_without_a_notice_an_idle_gateway_stops_within_a_fraction_of_a_second() -> None:
    envoy = FakeEnvoy(FakeClock())
    outcome, elapsed, _ = _drain(envoy, DrainSettings(timeout=60, notice=0))
    assert outcome is Outcome.DRAINED
    assert envoy.closed_at == [0.0]
    assert elapsed <= 0.5


def test_waits_for_the_last_request_in_flight() -> None:
    envoy = FakeEnvoy(FakeClock(), in_flight=lambda t: 3 if t < 12.3 else 0)
    outcome, elapsed, _ = _drain(envoy)
    assert outcome is Outcome.DRAINED
    assert 12.3 <= elapsed <= 12.3 + SETTINGS.poll_every + 1e-9
    assert envoy.closed_at == [pytest.approx(5.0)]


def test_a_request_that_ends_during_the_notice_does_not_end_the_drain_early() -> None:
    """Load balancers may still send new connections until the notice is over: the listener stays open."""
    envoy = FakeEnvoy(FakeClock(), in_flight=lambda t: 1 if t < 1 else 0)
    outcome, elapsed, _ = _drain(envoy)
    assert outcome is Outcome.DRAINED and elapsed > 5.0


def test_zero_counts_only_once_settled_after_the_listener_closed() -> None:
    """A connection accepted just before the listener closed has not sent its request yet: 0 at that very
    moment does not end the drain; 0 a little later does, if nothing arrived."""
    envoy = FakeEnvoy(FakeClock(), in_flight=lambda t: 1 if 5.05 <= t < 5.5 else 0)
    outcome, elapsed, _ = _drain(envoy)
    assert outcome is Outcome.DRAINED and elapsed >= 5.5


def test_times_out_with_what_is_still_in_flight() -> None:
    envoy = FakeEnvoy(FakeClock(), in_flight=lambda _: 2)
    outcome, elapsed, in_flight = _drain(envoy)
    assert outcome is Outcome.TIMED_OUT and in_flight == 2
    assert elapsed == pytest.approx(60.0), "the timeout counts from the signal, the notice included"
    assert envoy.closed_at == [pytest.approx(5.0)]


def test_a_timeout_shorter_than_the_notice_closes_the_listener_at_the_timeout() -> None:
    envoy = FakeEnvoy(FakeClock(), in_flight=lambda _: 1)
    outcome, elapsed, _ = _drain(envoy, DrainSettings(timeout=2, notice=5))
    assert outcome is Outcome.TIMED_OUT and elapsed == pytest.approx(2.0)
    assert envoy.closed_at == [pytest.approx(2.0)]


def test_a_second_signal_ends_the_drain_at_once() -> None:
    envoy = FakeEnvoy(FakeClock(), in_flight=lambda _: 4, second_signal_at=7.0)
    outcome, elapsed, in_flight = _drain(envoy)
    assert outcome is Outcome.INTERRUPTED and in_flight == 4
    assert 7.0 <= elapsed <= 7.0 + SETTINGS.poll_every + 1e-9


def test_envoy_exiting_ends_the_drain() -> None:
    envoy = FakeEnvoy(FakeClock(), in_flight=lambda _: 4, exits_at=9.0)
    outcome, elapsed, _ = _drain(envoy)
    assert outcome is Outcome.ENVOY_GONE and 9.0 <= elapsed <= 9.0 + SETTINGS.poll_every + 1e-9


def test_an_admin_that_stops_answering_ends_the_drain_after_a_few_tries() -> None:
    envoy = FakeEnvoy(FakeClock(), in_flight=lambda t: 1 if t < 3 else None)
    outcome, elapsed, in_flight = _drain(envoy)
    assert outcome is Outcome.ADMIN_UNANSWERED and in_flight == 1, "the last count read is kept"
    assert 3.0 <= elapsed <= 3.0 + SETTINGS.admin_failures * SETTINGS.poll_every


def test_a_stats_read_failing_once_is_retried() -> None:
    envoy = FakeEnvoy(FakeClock(), in_flight=lambda t: None if 2 <= t < 2.3 else (1 if t < 8 else 0))
    outcome, elapsed, _ = _drain(envoy)
    assert outcome is Outcome.DRAINED and 8 <= elapsed <= 8.3


def test_polls_often_but_logs_about_once_a_second(caplog: pytest.LogCaptureFixture) -> None:
    envoy = FakeEnvoy(FakeClock(), in_flight=lambda t: 3 if t < 10 else 0)
    with caplog.at_level(logging.INFO, logger="switchyard.up"):
        _drain(envoy)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("draining:")]
    assert len(lines) in (10, 11), lines
    assert envoy.reads >= 45, "the stat is read every poll_every, more often than it is logged"
    assert lines[0].startswith("draining: 3 requests in flight; /healthz answers 503, new connections still")
    assert lines[6] == "draining: 3 requests in flight, 54s left"


def test_progress_lines() -> None:
    assert progress_line(3, 8.0, 5.0, 60.0) == "draining: 3 requests in flight, 52s left"
    assert progress_line(1, 7.5, 5.0, 60.0) == "draining: 1 request in flight, 53s left"
    assert progress_line(0, 1.2, 5.0, 60.0) == (
        "draining: 0 requests in flight; /healthz answers 503, new connections still accepted for 4s; 59s left"
    )
    assert progress_line(None, 61.0, 5.0, 60.0) == "draining: requests in flight unknown, 0s left"


# -- drain_envoy: the calls it makes to Envoy's admin, over a real (fake) admin socket ---------------------------


@pytest.fixture
def fake_admin(tmp_path: Path) -> Iterator[tuple[EnvoyAdmin, list[tuple[str, str]]]]:
    path = tmp_path / "admin.sock"
    with serving(UnixHTTPServer(str(path), FakeAdminHandler)) as seen:
        yield EnvoyAdmin(f"unix:{path}"), seen


def test_drain_envoy_fails_health_then_drains_then_closes_the_listener(
    fake_admin: tuple[EnvoyAdmin, list[tuple[str, str]]],
) -> None:
    admin, seen = fake_admin
    # The fake admin reports 3 requests in flight, forever: the drain ends at its (short) timeout.
    settings = DrainSettings(timeout=0.3, notice=0.1, poll_every=0.02)
    result = drain_envoy(admin, settings, lambda: True, lambda: False, "SIGTERM")
    assert result.outcome is Outcome.TIMED_OUT and result.in_flight == 3
    posts = [path for method, path in seen if method == "POST"]
    assert posts == ["/healthcheck/fail", "/drain_listeners?graceful&skip_exit", "/drain_listeners"]
    assert seen[:2] == [("POST", "/healthcheck/fail"), ("POST", "/drain_listeners?graceful&skip_exit")]
    assert all(path.startswith("/stats?filter=") for method, path in seen if method == "GET")


def test_drain_envoy_without_an_admin_gives_up_at_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    interrupted = threading.Event()
    with caplog.at_level(logging.WARNING, logger="switchyard.up"):
        result = drain_envoy(
            EnvoyAdmin(f"unix:{tmp_path / 'gone.sock'}"), SETTINGS, lambda: True, interrupted.is_set, "SIGTERM"
        )
    assert result.outcome is Outcome.ADMIN_UNANSWERED and result.elapsed == 0
    assert "SIGTERM: cannot drain" in caplog.text and "stopping at once" in caplog.text


def test_drain_timeout_zero_skips_the_drain(tmp_path: Path) -> None:
    result = drain_envoy(
        EnvoyAdmin(f"unix:{tmp_path / 'unused.sock'}"), DrainSettings(timeout=0), lambda: True, lambda: False, "SIGINT"
    )
    assert result.outcome is Outcome.TIMED_OUT and result.elapsed == 0
