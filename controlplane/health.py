"""Is a target in service? The gateway-wide health judge, from every Envoy's attempts (pure, no I/O).

Envoy's own outlier detection (controlplane/failover.py) ejects per Envoy, counts every 5xx alike and reports
nothing. The health judge sees the attempts of every node that logs to this control plane, counts against a
target only what its route falls back on (`failover.is_failure`), and decides when the target is out of
service and when it comes back:
- a 429 parks it for its `Retry-After` (else the route's `rate_limited_for`), within MIN_PARK_S..MAX_PARK_S;
- `consecutive_failures` in a row, or a `failure_rate` over its window, eject it for the route's
  `ejection_time`;
- it comes back by itself when that time is up: `out_of_service(now)` no longer names it.

How a verdict reaches Envoy: the server puts `out_of_service(now)` into the live state (live_state.py), the
pure translation marks those targets' endpoints UNHEALTHY in their route's clusters (resources/clusters.py),
and the resulting snapshot's clusters are pushed to every node over ADS. `on_health_change` wakes the server
as soon as a target goes out, rather than at its next look.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from controlplane import failover
from switchyard.config import Route
from switchyard.config.model import DEFAULT_FALLBACK_CODES, Health, Latency
from switchyard.config.units import format_duration

MAX_PARK_S = 300.0  # a provider's Retry-After of hours must not take a target out of service for hours
MIN_PARK_S = 1.0  # each park change is a config push to every Envoy: "Retry-After: 0" must not cause a storm
RATE_LIMITED = "rate_limited"
EJECTED = "ejected"


@dataclass(frozen=True)
class TargetPolicy:
    """What a target's route says about judging it: which statuses are failures and when they take it out
    of service, and (for the statistics) how its latency is measured."""

    fallback_codes: frozenset[int] = frozenset(DEFAULT_FALLBACK_CODES)
    health: Health = field(default_factory=Health)
    latency: Latency = field(default_factory=Latency)

    @classmethod
    def of(cls, route: Route) -> TargetPolicy:
        return cls(frozenset(route.fallback_codes), route.health, route.latency)


DEFAULT_POLICY = TargetPolicy()


@dataclass(frozen=True)
class OutOfService:
    state: str  # RATE_LIMITED or EJECTED
    until: float
    why: str


@dataclass
class TargetHealth:
    consecutive_failures: int = 0
    out: OutOfService | None = None
    # failure-rate window: one [second, attempts, failures] bucket per second that saw an attempt
    recent: deque[list[int]] = field(default_factory=deque)
    # the sums of `recent`'s attempts and failures, kept as buckets come and go rather than summed per attempt
    recent_attempts: int = 0
    recent_failures: int = 0

    def out_at(self, now: float) -> OutOfService | None:
        return self.out if self.out is not None and self.out.until > now else None


def describe_status(status: int | None) -> str:
    if status is None:
        return "none"
    return "no response (reset, refused or timed out)" if status == 0 else str(status)


class HealthJudge:
    """`policy_of(key)` gives the rules of the target's route; `on_health_change()` is called whenever a
    target goes out of service, so whoever steers traffic can act at once instead of at its next tick."""

    def __init__(
        self,
        policy_of: Callable[[str], TargetPolicy] = lambda _key: DEFAULT_POLICY,
        on_health_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._policy_of = policy_of
        self._on_health_change = on_health_change
        self.targets: dict[str, TargetHealth] = {}

    def judge(self, key: str, status: int, retry_after: str = "", now: float | None = None) -> None:
        """One attempt to the target `key` ended with `status` (0: no response)."""
        self.judge_with(key, status, retry_after, time.time() if now is None else now, self._policy_of(key))

    def judge_with(self, key: str, status: int, retry_after: str, now: float, policy: TargetPolicy) -> None:
        """`judge` with the target's policy already looked up (the statistics recorder has it)."""
        health = self.targets.get(key)
        if health is None:
            health = self.targets[key] = TargetHealth()
        failed = failover.is_failure(status, policy.fallback_codes)
        if status == 429 and failed:
            self._park(health, retry_after, now, policy)
        else:
            # 429s are judged by their Retry-After alone: ejecting as well would outlast what the provider asked
            self._judge(health, status, failed, now, policy.health)

    def judge_successes(self, key: str, count: int, now: float, policy: TargetPolicy) -> None:
        """`judge_with` for `count` attempts at `now` that did not fail (the answers of one log message), with the
        same outcome as judging them one by one (tests/unit/test_health_batch.py). A success only ends a streak
        and adds to the failure-rate window, and among `count` successes only the first one that brings the
        window to `min_requests` can eject: each later one lowers the failure ratio."""
        health = self.targets.get(key)
        if health is None:
            health = self.targets[key] = TargetHealth()
        health.consecutive_failures = 0
        rate = policy.health.failure_rate
        if rate is None or count <= 0:
            return
        window = rate.window
        _count(health, now, False, window)  # the first one, as _judge would, window trimmed to `now`
        if health.out_at(now) is None and self._rate_ejects(health, now, policy.health):
            _count(health, now, False, window, count - 1)
            return
        rest = count - 1
        if rest <= 0:
            return
        needed = max(1, rate.min_requests - health.recent_attempts)  # the success that may eject, if any
        if needed <= rest and health.out_at(now) is None:
            attempts = health.recent_attempts + needed
            if health.recent_failures >= rate.threshold * attempts:
                _count(health, now, False, window, needed)
                self._rate_ejects(health, now, policy.health)
                _count(health, now, False, window, rest - needed)
                return
        _count(health, now, False, window, rest)

    def _rate_ejects(self, health: TargetHealth, now: float, rules: Health) -> bool:
        """The failure-rate check of _judge: ejects the target (and says so) when the window's rate is over."""
        rate = rules.failure_rate
        if rate is None:
            return False
        attempts, failures = health.recent_attempts, health.recent_failures
        if attempts >= rate.min_requests and failures >= rate.threshold * attempts:
            why = f"{failures} of the last {attempts} attempts failed (within {format_duration(rate.window)})"
            health.recent.clear()
            health.recent_attempts = health.recent_failures = 0
            self._take_out(health, OutOfService(EJECTED, now + rules.ejection_time, why), now)
            return True
        return False

    def _park(self, health: TargetHealth, retry_after: str, now: float, policy: TargetPolicy) -> None:
        until = retry_after_deadline(retry_after, now)
        if until is None:
            until = now + policy.health.rate_limited_for
        until = min(max(until, now + MIN_PARK_S), now + MAX_PARK_S)
        header = f"Retry-After: {retry_after}" if retry_after else "no Retry-After"
        self._take_out(health, OutOfService(RATE_LIMITED, until, f"answered 429 ({header})"), now)

    def _judge(self, health: TargetHealth, status: int, failed: bool, now: float, rules: Health) -> None:
        health.consecutive_failures = health.consecutive_failures + 1 if failed else 0
        if rules.failure_rate is not None:
            _count(health, now, failed, rules.failure_rate.window)
        if health.out_at(now) is not None:
            return  # attempts made in panic mode while out of service must not stack up ejections
        limit = rules.consecutive_failures
        if limit and health.consecutive_failures >= limit:
            why = f"{health.consecutive_failures} failures in a row (last: {describe_status(status)})"
            health.consecutive_failures = 0
            self._take_out(health, OutOfService(EJECTED, now + rules.ejection_time, why), now)
            return
        self._rate_ejects(health, now, rules)

    def _take_out(self, health: TargetHealth, mark: OutOfService, now: float) -> None:
        current = health.out_at(now)
        if current is not None and current.until >= mark.until:
            return
        health.out = mark
        self._on_health_change()

    def get(self, key: str) -> TargetHealth:
        return self.targets.get(key, TargetHealth())

    def out_of_service(self, now: float) -> Mapping[str, OutOfService]:
        return {key: out for key, health in self.targets.items() if (out := health.out_at(now)) is not None}


def _count(health: TargetHealth, now: float, failed: bool, window: float, attempts: int = 1) -> None:
    """`attempts` more attempts at `now` in the failure-rate window (all failed, or none), older ones let go."""
    if attempts <= 0:
        return
    recent = health.recent
    second = int(now)
    failures = attempts if failed else 0
    if recent and recent[-1][0] == second:
        recent[-1][1] += attempts
        recent[-1][2] += failures
    else:
        recent.append([second, attempts, failures])
    health.recent_attempts += attempts
    health.recent_failures += failures
    while recent and recent[0][0] <= second - window:
        _, attempts, failures = recent.popleft()
        health.recent_attempts -= attempts
        health.recent_failures -= failures


def retry_after_deadline(value: str, now: float) -> float | None:
    """`Retry-After` as seconds or an HTTP date → an absolute time; None when absent or unreadable."""
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return now + int(value)
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
