"""HealthJudge.judge_successes, which judges a log message's answers together (issue 21), decides exactly what
judging them one by one decides: the same targets out of service, for the same reason, with the same window."""

from __future__ import annotations

import random

import pytest

from controlplane.health import HealthJudge, TargetPolicy
from switchyard.config.model import FailureRate, Health


def _state(judge: HealthJudge) -> tuple[object, ...]:
    health = judge.get("k")
    return (health.out, health.consecutive_failures, health.recent_attempts, health.recent_failures,
            [tuple(bucket) for bucket in health.recent])  # fmt: skip


@pytest.mark.parametrize("seed", range(40))
def test_successes_judged_together_decide_as_one_by_one(seed: int) -> None:
    chance = random.Random(seed)
    rate = FailureRate(threshold=chance.choice([0.1, 0.3, 0.5, 1.0]), min_requests=chance.randint(1, 12), window=3)
    policy = TargetPolicy(health=Health(consecutive_failures=chance.randint(0, 4), failure_rate=rate))
    one_by_one, together = HealthJudge(lambda _key: policy), HealthJudge(lambda _key: policy)
    now = 1000.0
    for _ in range(60):
        now += chance.choice([0.0, 0.3, 1.0, 2.5, 11.0])
        if chance.random() < 0.5:
            for _ in range(chance.randint(1, 4)):
                one_by_one.judge_with("k", 502, "", now, policy)
                together.judge_with("k", 502, "", now, policy)
        else:
            count = chance.randint(1, 15)
            for _ in range(count):
                one_by_one.judge_with("k", 200, "", now, policy)
            together.judge_successes("k", count, now, policy)
        assert _state(together) == _state(one_by_one)


def test_the_success_that_fills_the_window_can_eject() -> None:
    """Nine failures, then ten answers in one message: the first answer brings the window to its minimum of
    ten with nine failed (0.9 >= 0.5), so the target is ejected, as one-by-one judging would."""
    policy = TargetPolicy(health=Health(consecutive_failures=0, failure_rate=FailureRate(min_requests=10)))
    judge = HealthJudge(lambda _key: policy)
    for _ in range(9):
        judge.judge_with("k", 502, "", 1000.0, policy)
    judge.judge_successes("k", 10, 1000.0, policy)
    out = judge.out_of_service(1000.0).get("k")
    assert out is not None and "9 of the last 10 attempts failed" in out.why
