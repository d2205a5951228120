"""The graceful drain of `switchyard up`: nothing in flight is lost on a planned stop.

On the first Ctrl-C/SIGTERM the supervisor tells Envoy's admin:

1. `POST /healthcheck/fail`: `GET /healthz` on the client port answers 503 from now on (the listener's
   health_check filter), and every response asks its client to close the connection (HTTP/1
   `connection: close`, HTTP/2 GOAWAY). Requests still flow.
2. `POST /drain_listeners?graceful&skip_exit`: Envoy's drain sequence starts (strategy `immediate`: every
   connection is told at once, where its protocol can be told; an idle HTTP/1 connection stays open until its
   next response, which carries `connection: close`). In Envoy 1.40, `skip_exit` means the listeners are never
   stopped by Envoy's drain timer (`--drain-time-s`, left to LDS listener updates): the supervisor stops them.
3. After the notice (`--drain-notice`, time for load balancers to see the 503), `POST /drain_listeners`: the
   listener stops accepting at once (connect is refused); connections already open keep going.
4. Then it waits, polling `http.switchyard.downstream_rq_active`, until no request is in flight or the
   drain timeout (`--drain-timeout`) is up, and only then stops Envoy, the ext_procs and the control plane.

`wait_for_drain` makes the decisions of step 3-4; the clock, the sleep and the stats are injected, so the
unit tests drive it without real time or a real Envoy.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from switchyard.supervisor.envoy_admin import AdminError, EnvoyAdmin

log = logging.getLogger("switchyard.up")

# The listener's HTTP connection manager has stat_prefix "switchyard" (controlplane/translate.py).
IN_FLIGHT_STAT = "http.switchyard.downstream_rq_active"


@dataclass(frozen=True)
class DrainSettings:
    timeout: float = 60.0  # from the signal to the stop of Envoy, at most
    notice: float = 5.0  # the listener keeps accepting this long after /healthz turned 503
    poll_every: float = 0.2
    log_every: float = 1.0
    # "Nothing in flight" counts once seen this long after the listener closed: a connection accepted at the
    # last moment has sent its request by then.
    settle: float = 0.2
    admin_failures: int = 3  # stats reads failing in a row before the drain gives up on the admin


class Outcome(Enum):
    DRAINED = "drained"
    TIMED_OUT = "timed out"
    INTERRUPTED = "interrupted by a second signal"
    ENVOY_GONE = "Envoy exited"
    ADMIN_UNANSWERED = "Envoy's admin does not answer"


@dataclass(frozen=True)
class DrainResult:
    outcome: Outcome
    elapsed: float
    in_flight: int | None  # the last count read, None if none was


class DrainSource(Protocol):
    def in_flight(self) -> int:
        """Requests Envoy is serving now; raises AdminError when the admin does not answer."""
        ...

    def close_listener(self) -> None:
        """Stop accepting new connections (the notice is over); must not raise."""
        ...

    def interrupted(self) -> bool:
        """A second signal came: stop at once."""
        ...

    def envoy_running(self) -> bool: ...


def _requests(count: int) -> str:
    return f"{count} request{'' if count == 1 else 's'} in flight"


def wait_for_drain(
    source: DrainSource,
    settings: DrainSettings,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> DrainResult:
    start = clock()
    notice = min(settings.notice, settings.timeout)
    closed_at: float | None = None
    failures = 0
    in_flight: int | None = None
    next_log = start
    while True:
        now = clock()
        elapsed = now - start
        if source.interrupted():
            return DrainResult(Outcome.INTERRUPTED, elapsed, in_flight)
        if not source.envoy_running():
            return DrainResult(Outcome.ENVOY_GONE, elapsed, in_flight)
        if closed_at is None and elapsed >= notice:
            source.close_listener()
            closed_at = now
        try:
            in_flight = source.in_flight()
            failures = 0
        except AdminError as error:
            failures += 1
            log.warning("draining: cannot read %s (%s)", IN_FLIGHT_STAT, error)
            if failures >= settings.admin_failures:
                return DrainResult(Outcome.ADMIN_UNANSWERED, elapsed, in_flight)
        else:
            if closed_at is not None and in_flight == 0 and now - closed_at >= settings.settle:
                return DrainResult(Outcome.DRAINED, elapsed, 0)
        if elapsed >= settings.timeout:
            return DrainResult(Outcome.TIMED_OUT, elapsed, in_flight)
        if now >= next_log:
            log.info("%s", progress_line(in_flight, elapsed, notice, settings.timeout))
            while next_log <= now:
                next_log += settings.log_every
        sleep(max(0.0, min(settings.poll_every, settings.timeout - elapsed)))


def progress_line(in_flight: int | None, elapsed: float, notice: float, timeout: float) -> str:
    """E.g. "draining: 3 requests in flight, 52s left"; during the notice, also how long the listener accepts."""
    what = "requests in flight unknown" if in_flight is None else _requests(in_flight)
    left = f"{math.ceil(max(0.0, timeout - elapsed))}s left"
    if elapsed < notice:
        closes = math.ceil(notice - elapsed)
        return f"draining: {what}; /healthz answers 503, new connections still accepted for {closes}s; {left}"
    return f"draining: {what}, {left}"


class _EnvoySource:
    def __init__(self, admin: EnvoyAdmin, envoy_running: Callable[[], bool], interrupted: Callable[[], bool]) -> None:
        self._admin = admin
        self.envoy_running = envoy_running
        self.interrupted = interrupted

    def in_flight(self) -> int:
        return self._admin.stat(IN_FLIGHT_STAT)

    def close_listener(self) -> None:
        try:
            self._admin.drain_listeners(graceful=False)
        except AdminError as error:
            log.warning("draining: could not close the listener (%s); it accepts until Envoy stops", error)
        else:
            log.info("draining: the listener no longer accepts new connections")


def drain_envoy(
    admin: EnvoyAdmin,
    settings: DrainSettings,
    envoy_running: Callable[[], bool],
    interrupted: Callable[[], bool],
    reason: str,
) -> DrainResult:
    """Steps 1-4 of the module docstring; returns once Envoy may be stopped."""
    if settings.timeout <= 0:
        log.info("%s: stopping at once (--drain-timeout 0)", reason)
        return DrainResult(Outcome.TIMED_OUT, 0.0, None)
    try:
        admin.healthcheck_fail()
        admin.drain_listeners(graceful=True, skip_exit=True)
    except AdminError as error:
        log.warning("%s: cannot drain (%s); stopping at once", reason, error)
        return DrainResult(Outcome.ADMIN_UNANSWERED, 0.0, None)
    notice = min(settings.notice, settings.timeout)
    closes = f"accepts new connections for {notice:g}s more (--drain-notice), then closes" if notice else "closes now"
    log.info(
        "%s: draining. /healthz answers 503; the listener %s; requests in flight get up to %gs (--drain-timeout). "
        "A second Ctrl-C/SIGTERM stops at once.",
        reason,
        closes,
        settings.timeout,
    )
    result = wait_for_drain(_EnvoySource(admin, envoy_running, interrupted), settings)
    log_result(result)
    return result


def log_result(result: DrainResult) -> None:
    took = f"after {result.elapsed:.1f}s"
    if result.outcome is Outcome.DRAINED:
        log.info("drained %s: nothing in flight; stopping", took)
    elif result.outcome is Outcome.TIMED_OUT:
        cut = "what is still in flight" if result.in_flight is None else _requests(result.in_flight)
        log.warning("drain timeout %s: stopping anyway, cutting %s", took, cut)
    else:
        log.warning("drain ended %s: %s; stopping now", took, result.outcome.value)
