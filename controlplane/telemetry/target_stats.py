"""Per-target statistics from attempt observations (pure; the access log service feeds it).

What `/status` and `/metrics` show of each target, and the latency averages least_latency ranks by: attempts
by status, fallbacks, latency (first byte, first token or per output token, as the route measures it) and the
histograms. Whether a target is in service is not decided here but by the health judge (controlplane/health.py),
which every recorded attempt is handed to.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controlplane import failover
from controlplane.health import DEFAULT_POLICY, HealthJudge, TargetPolicy
from switchyard.config.model import Latency, LatencyMeasure


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


_AFTER_THE_FIRST = (1).__lt__  # an attempt number > 1: a fallback

# Upper bounds in seconds, from a cached answer to a long generation (the time to first byte of a
# non-streamed answer includes the whole generation).
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class LatencyHistogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS_S) + 1))
    total_s: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(LATENCY_BUCKETS_S, seconds)] += 1  # the first bucket whose bound >= seconds
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
    abandoned: int = 0  # attempts cancelled before an answer because their client hung up: not the target's doing
    by_status: Counter[int] = field(default_factory=Counter)
    latency_s: float | None = None
    latency_samples: int = 0
    latency_histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    ttft_histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    time_per_output_token_histogram: LatencyHistogram = field(default_factory=LatencyHistogram)
    output_tokens: int = 0
    last_status: int | None = None

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


class TargetStatsRecorder:
    """`policy_of(key)` gives the rules of the target's route; every attempt recorded is also judged by
    `health` (a judge of its own, with the same rules, when none is given)."""

    def __init__(
        self,
        policy_of: Callable[[str], TargetPolicy] = lambda _key: DEFAULT_POLICY,
        health: HealthJudge | None = None,
    ) -> None:
        self._policy_of = policy_of
        self.health = HealthJudge(policy_of) if health is None else health
        self.targets: dict[str, TargetStats] = {}

    def record(self, observation: Observation, now: float | None = None) -> None:
        self.record_attempt(
            observation.target_key,
            observation.status,
            observation.latency_s,
            observation.attempt,
            observation.retry_after,
            time.time() if now is None else now,
        )

    def record_attempt(
        self, key: str, status: int, latency_s: float | None, attempt: int, retry_after: str, now: float
    ) -> None:
        """`record` without building an Observation: the answer log's handler calls it once per answer."""
        policy = self._policy_of(key)
        stats = self.targets.get(key)
        if stats is None:
            stats = self.targets[key] = TargetStats()
        stats.requests += 1
        stats.by_status[status] += 1
        stats.last_status = status
        if attempt > 1:
            stats.fallbacks += 1
        if failover.is_failure(status, policy.fallback_codes):
            stats.failures += 1
        elif latency_s is not None:
            stats.latency_histogram.observe(latency_s)
            if policy.latency.measure is LatencyMeasure.FIRST_BYTE:
                stats.observe_latency(latency_s, policy.latency)
        self.health.judge_with(key, status, retry_after, now, policy)

    def record_abandoned(self, key: str) -> None:
        """An attempt its client gave up on before the target answered: counted, never judged (see
        attempt_log.cut_short)."""
        if not key or key == "-":
            return
        stats = self.targets.get(key)
        if stats is None:
            stats = self.targets[key] = TargetStats()
        stats.abandoned += 1

    def record_served(self, key: str, served: list[tuple[int, float | None, int]], now: float) -> None:
        """record_attempt for the (status, latency, attempt) of the answers of one log message a target served:
        the policy looked up once, the statuses and fallbacks counted in C, and the health judge told of all
        of them at once (issue 21). A 2xx a route falls back on (never configured in practice) is judged one
        by one."""
        policy = self._policy_of(key)
        codes = policy.fallback_codes
        statuses, latencies, attempts = zip(*served, strict=True)
        if any(failover.is_failure(status, codes) for status in set(statuses)):
            for status, latency, attempt in served:
                self.record_attempt(key, status, latency, attempt, "", now)
            return
        stats = self.targets.get(key)
        if stats is None:
            stats = self.targets[key] = TargetStats()
        stats.requests += len(served)
        stats.by_status.update(statuses)
        stats.fallbacks += sum(map(_AFTER_THE_FIRST, attempts))
        histogram = stats.latency_histogram
        counts, total = histogram.counts, histogram.total_s
        settings = policy.latency
        ranks_first_byte = settings.measure is LatencyMeasure.FIRST_BYTE
        for latency in latencies:
            if latency is not None:
                counts[bisect_left(LATENCY_BUCKETS_S, latency)] += 1  # LatencyHistogram.observe
                total += latency
                if ranks_first_byte:
                    stats.observe_latency(latency, settings)
        histogram.total_s = total
        stats.last_status = statuses[-1]
        self.health.judge_successes(key, len(served), now, policy)

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

    def policy_of(self, key: str) -> TargetPolicy:
        return self._policy_of(key)

    def get(self, key: str) -> TargetStats:
        return self.targets.get(key, TargetStats())

    def warm_latencies(self) -> Mapping[str, float]:
        return {
            key: latency
            for key, stats in self.targets.items()
            if (latency := stats.warm_latency(self._policy_of(key).latency)) is not None
        }
