"""Per-target statistics from attempt observations (pure; the access log service feeds it).

Envoy's outlier detection decides ejections per Envoy and does not report them; this recorder gives the
gateway-wide view an operator (and later the latency and health strategies) needs: what each target answered,
how fast, and whether it is failing right now.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

LATENCY_DECAY = 0.1  # weight of the newest sample in the moving average
LATENCY_WARMUP = 3  # samples averaged plainly before the moving average takes over


@dataclass(frozen=True)
class Observation:
    """One upstream attempt, as Envoy logged it."""

    target_key: str
    status: int  # 0: no response (reset, refused, timeout)
    latency_s: float | None  # to the first byte of the response, None without a response
    attempt: int  # 1 for the first attempt of a request, 2+ for fallbacks
    retry_after: str = ""
    at: float = field(default_factory=time.time)


@dataclass
class TargetStats:
    requests: int = 0
    failures: int = 0
    fallbacks: int = 0  # attempts that were a request's second or later try
    consecutive_failures: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    latency_s: float | None = None
    latency_samples: int = 0
    last_status: int | None = None
    rate_limited_until: float | None = None

    def observe_latency(self, seconds: float) -> None:
        self.latency_samples += 1
        if self.latency_s is None:
            self.latency_s = seconds
        elif self.latency_samples <= LATENCY_WARMUP:
            self.latency_s += (seconds - self.latency_s) / self.latency_samples
        else:
            self.latency_s += LATENCY_DECAY * (seconds - self.latency_s)


MAX_PARK_S = 300.0  # a provider's Retry-After of hours must not take a target out of service for hours
MIN_PARK_S = 1.0  # each park change is a config push to every Envoy: "Retry-After: 0" must not cause a storm


class Recorder:
    """`is_failure(key, status)` says whether a status counts against that target: its route's fallback codes,
    or no response at all. A status outside them (a 400, say) is the client's problem, not the target's.

    A 429 parks the target until its Retry-After (or for `default_park(key)` seconds without one), and
    `on_rate_limited(key, until)` tells whoever steers traffic."""

    def __init__(
        self,
        is_failure: Callable[[str, int], bool],
        default_park: Callable[[str], float] = lambda _key: 10.0,
        on_rate_limited: Callable[[str, float], None] = lambda _key, _until: None,
    ) -> None:
        self._is_failure = is_failure
        self._default_park = default_park
        self._on_rate_limited = on_rate_limited
        self.targets: dict[str, TargetStats] = {}

    def record(self, observation: Observation) -> None:
        stats = self.targets.setdefault(observation.target_key, TargetStats())
        stats.requests += 1
        stats.by_status[observation.status] += 1
        stats.last_status = observation.status
        if observation.attempt > 1:
            stats.fallbacks += 1
        if self._is_failure(observation.target_key, observation.status):
            stats.failures += 1
            stats.consecutive_failures += 1
        else:
            stats.consecutive_failures = 0
            if observation.latency_s is not None:
                stats.observe_latency(observation.latency_s)
        if observation.status == 429:
            until = retry_after_deadline(observation.retry_after, observation.at)
            if until is None:
                until = observation.at + self._default_park(observation.target_key)
            until = min(max(until, observation.at + MIN_PARK_S), observation.at + MAX_PARK_S)
            stats.rate_limited_until = until
            self._on_rate_limited(observation.target_key, until)

    def get(self, key: str) -> TargetStats:
        return self.targets.get(key, TargetStats())


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
