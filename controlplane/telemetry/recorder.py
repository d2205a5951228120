"""Per-target statistics and health from attempt observations (pure; the access log service feeds it).

Envoy's outlier detection decides ejections per Envoy, counts every 5xx, and does not report them. The
recorder is the gateway-wide judge instead: it sees every Envoy's attempts, counts against a target only
what its route falls back on, and decides when a target is out of service (rate limited, failing in a row,
or failing too often) and when it comes back. The control plane turns that into EDS health.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from switchyard.config import Route
from switchyard.config.model import DEFAULT_FALLBACK_CODES, Health, Latency, LatencyMeasure
from switchyard.config.units import format_duration

MAX_PARK_S = 300.0  # a provider's Retry-After of hours must not take a target out of service for hours
MIN_PARK_S = 1.0  # each park change is a config push to every Envoy: "Retry-After: 0" must not cause a storm
RATE_LIMITED = "rate_limited"
EJECTED = "ejected"


@dataclass(frozen=True)
class StreamMeasures:
    """What the ext_proc measured of a stream it translated: tokens are visible only there."""

    target_key: str
    ttft_s: float
    generation_s: float  # from the first token to the end
    output_tokens: int


@dataclass(frozen=True)
class Observation:
    """One upstream attempt, as Envoy logged it."""

    target_key: str
    status: int  # 0: no response (reset, refused, timeout)
    latency_s: float | None  # to the first byte of the response, None without a response
    attempt: int  # 1 for the first attempt of a request, 2+ for fallbacks
    retry_after: str = ""
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Answer:
    """An answer a target gave in one attempt, as the answer log reports it."""

    target_key: str
    output_tokens: int  # 0 when the answer did not say (or was a stream)
    duration_s: float  # from the request's first byte sent upstream to the answer's last byte
    # to the first token where the gateway saw tokens (a stream it translated), else to the first byte
    first_token_s: float = 0.0


@dataclass(frozen=True)
class TargetPolicy:
    """What a target's route says about judging it."""

    fallback_codes: frozenset[int] = frozenset(DEFAULT_FALLBACK_CODES)
    health: Health = field(default_factory=Health)
    latency: Latency = field(default_factory=Latency)

    @classmethod
    def of(cls, route: Route) -> TargetPolicy:
        return cls(frozenset(route.fallback_codes), route.health, route.latency)

    def is_failure(self, status: int) -> bool:
        """No response, or a status the route falls back on. Anything else (a 400, say) is the client's
        problem, not the target's: it neither counts against the target nor ends its streak of failures."""
        return status == 0 or status in self.fallback_codes


DEFAULT_POLICY = TargetPolicy()


@dataclass(frozen=True)
class OutOfService:
    state: str  # RATE_LIMITED or EJECTED
    until: float
    why: str


# Upper bounds in seconds, from a cached answer to a long generation (the time to first byte of a
# non-streamed answer includes the whole generation).
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class LatencyHistogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    total_s: float = 0.0

    def observe(self, seconds: float) -> None:
        index = next((i for i, bound in enumerate(LATENCY_BUCKETS_S) if seconds <= bound), len(LATENCY_BUCKETS_S))
        self.counts[index] += 1
        self.total_s += seconds

    def as_dict(self) -> dict[str, Any]:
        """Cumulative counts per upper bound ("+Inf" last), as Prometheus histograms are exposed."""
        cumulative, running = {}, 0
        for bound, count in zip([*map(str, LATENCY_BUCKETS_S), "+Inf"], self.counts, strict=True):
            running += count
            cumulative[bound] = running
        return {"buckets": cumulative, "sum_s": round(self.total_s, 6)}


@dataclass
class TargetStats:
    requests: int = 0
    failures: int = 0
    fallbacks: int = 0  # attempts that were a request's second or later try
    consecutive_failures: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    latency_s: float | None = None
    latency_samples: int = 0
    latency_histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    ttft_histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    time_per_output_token_histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    output_tokens: int = 0
    last_status: int | None = None
    out: OutOfService | None = None
    # failure-rate window: one [second, attempts, failures] bucket per second that saw an attempt
    recent: deque[list[int]] = field(default_factory=deque)

    def observe_latency(self, seconds: float, settings: Latency) -> None:
        self.latency_samples += 1
        if self.latency_s is None:
            self.latency_s = seconds
        elif self.latency_samples <= settings.warmup:
            self.latency_s += (seconds - self.latency_s) / self.latency_samples
        else:
            self.latency_s += settings.decay * (seconds - self.latency_s)

    def warm_latency(self, settings: Latency) -> float | None:
        """The average once it has seen its warm-up samples; before that it is too noisy to route on."""
        return self.latency_s if self.latency_samples >= settings.warmup else None

    def out_at(self, now: float) -> OutOfService | None:
        return self.out if self.out is not None and self.out.until > now else None


def describe_status(status: int | None) -> str:
    if status is None:
        return "none"
    return "no response (reset, refused or timed out)" if status == 0 else str(status)


class Recorder:
    """`policy_of(key)` gives the rules of the target's route; `on_health_change()` is called whenever a
    target goes out of service, so whoever steers traffic can act at once instead of at its next tick."""

    def __init__(
        self,
        policy_of: Callable[[str], TargetPolicy] = lambda _key: DEFAULT_POLICY,
        on_health_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._policy_of = policy_of
        self._on_health_change = on_health_change
        self.targets: dict[str, TargetStats] = {}

    def record(self, observation: Observation, now: float | None = None) -> None:
        now = time.time() if now is None else now
        policy = self._policy_of(observation.target_key)
        stats = self.targets.setdefault(observation.target_key, TargetStats())
        stats.requests += 1
        stats.by_status[observation.status] += 1
        stats.last_status = observation.status
        if observation.attempt > 1:
            stats.fallbacks += 1
        failed = policy.is_failure(observation.status)
        if failed:
            stats.failures += 1
        elif observation.latency_s is not None:
            stats.latency_histogram.observe(observation.latency_s)
            if policy.latency.measure is LatencyMeasure.FIRST_BYTE:
                stats.observe_latency(observation.latency_s, policy.latency)
        if observation.status == 429 and failed:
            self._park(stats, observation, now, policy)
        else:
            # 429s are judged by their Retry-After alone: ejecting as well would outlast what the provider asked
            self._judge(stats, failed, now, policy.health)

    def record_stream(self, measured: StreamMeasures) -> None:
        stats = self.targets.setdefault(measured.target_key, TargetStats())
        stats.ttft_histogram.observe(measured.ttft_s)
        stats.output_tokens += measured.output_tokens
        if measured.output_tokens > 1:
            stats.time_per_output_token_histogram.observe(measured.generation_s / (measured.output_tokens - 1))

    def record_answer(self, answer: Answer) -> None:
        stats = self.targets.setdefault(answer.target_key, TargetStats())
        stats.output_tokens += answer.output_tokens
        policy = self._policy_of(answer.target_key)
        if policy.latency.measure is LatencyMeasure.PER_OUTPUT_TOKEN and answer.output_tokens > 0:
            stats.observe_latency(answer.duration_s / answer.output_tokens, policy.latency)
        elif policy.latency.measure is LatencyMeasure.FIRST_TOKEN and answer.first_token_s > 0:
            stats.observe_latency(answer.first_token_s, policy.latency)

    def _park(self, stats: TargetStats, observation: Observation, now: float, policy: TargetPolicy) -> None:
        until = retry_after_deadline(observation.retry_after, now)
        if until is None:
            until = now + policy.health.rate_limited_for
        until = min(max(until, now + MIN_PARK_S), now + MAX_PARK_S)
        header = f"Retry-After: {observation.retry_after}" if observation.retry_after else "no Retry-After"
        self._take_out(stats, OutOfService(RATE_LIMITED, until, f"answered 429 ({header})"), now)

    def _judge(self, stats: TargetStats, failed: bool, now: float, health: Health) -> None:
        stats.consecutive_failures = stats.consecutive_failures + 1 if failed else 0
        if health.failure_rate is not None:
            _count(stats.recent, now, failed, health.failure_rate.window)
        if stats.out_at(now) is not None:
            return  # attempts made in panic mode while out of service must not stack up ejections
        limit = health.consecutive_failures
        if limit and stats.consecutive_failures >= limit:
            why = f"{stats.consecutive_failures} failures in a row (last: {describe_status(stats.last_status)})"
            stats.consecutive_failures = 0
            self._take_out(stats, OutOfService(EJECTED, now + health.ejection_time, why), now)
            return
        rate = health.failure_rate
        if rate is None:
            return
        attempts = sum(bucket[1] for bucket in stats.recent)
        failures = sum(bucket[2] for bucket in stats.recent)
        if attempts >= rate.min_requests and failures >= rate.threshold * attempts:
            why = f"{failures} of the last {attempts} attempts failed (within {format_duration(rate.window)})"
            stats.recent.clear()
            self._take_out(stats, OutOfService(EJECTED, now + health.ejection_time, why), now)

    def _take_out(self, stats: TargetStats, mark: OutOfService, now: float) -> None:
        current = stats.out_at(now)
        if current is not None and current.until >= mark.until:
            return
        stats.out = mark
        self._on_health_change()

    def get(self, key: str) -> TargetStats:
        return self.targets.get(key, TargetStats())

    def out_of_service(self, now: float) -> Mapping[str, OutOfService]:
        return {key: out for key, stats in self.targets.items() if (out := stats.out_at(now)) is not None}

    def warm_latencies(self) -> Mapping[str, float]:
        return {
            key: latency
            for key, stats in self.targets.items()
            if (latency := stats.warm_latency(self._policy_of(key).latency)) is not None
        }


def _count(recent: deque[list[int]], now: float, failed: bool, window: float) -> None:
    second = int(now)
    if recent and recent[-1][0] == second:
        recent[-1][1] += 1
        recent[-1][2] += failed
    else:
        recent.append([second, 1, int(failed)])
    while recent and recent[0][0] <= second - window:
        recent.popleft()


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
