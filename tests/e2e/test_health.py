"""Passive health end to end: a failing target is ejected and comes back; a flaky primary never fails a request."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from switchyard.supervisor.processes import free_port
from tests.support.harness import MockProvider, Stack, running_stack, wait_for

pytestmark = pytest.mark.e2e

MESSAGES = [{"role": "user", "content": "hello"}]


def _config(port: int, mock: MockProvider) -> str:
    return f"""
listen: 127.0.0.1:{port}
providers:
  p: {{kind: openai, base_url: "{mock.url}", api_key: sk-health}}
routes:
  - model: recovering
    health: {{consecutive_failures: 2, ejection_time: 1s}}
    targets:
      - {{name: primary, provider: p, model: recovering-primary}}
      - {{name: backup, provider: p, model: recovering-backup}}
  - model: picky
    fallback_codes: [503]
    health: {{consecutive_failures: 2}}
    targets:
      - {{name: primary, provider: p, model: picky-primary}}
      - {{name: backup, provider: p, model: picky-backup}}
  - model: often-failing
    # Streaks of failures never eject here: only the failure rate can.
    health:
      consecutive_failures: 0
      failure_rate: {{threshold: 40%, min_requests: 8, window: 30s}}
      ejection_time: 5m
    targets:
      - {{name: primary, provider: p, model: often-failing-primary}}
      - {{name: backup, provider: p, model: often-failing-backup}}
  - model: patient
    health:
      consecutive_failures: 2
      failure_rate: {{threshold: 40%, min_requests: 4, window: 30s}}
    targets:
      - {{name: primary, provider: p, model: patient-primary}}
      - {{name: backup, provider: p, model: patient-backup}}
  - model: hanging
    timeout: 300ms
    health: {{consecutive_failures: 2}}
    targets:
      - {{name: primary, provider: p, model: hanging-primary}}
      - {{name: backup, provider: p, model: hanging-backup}}
  - model: flaky
    timeout: 2s
    # No ejection and short parks, so the primary keeps taking attempts and every failure kind is exercised.
    health: {{consecutive_failures: 0, rate_limited_for: 1s}}
    targets:
      - {{name: primary, provider: p, model: flaky-primary}}
      - {{name: backup, provider: p, model: flaky-backup}}
"""


@pytest.fixture
def mock(tmp_path: Path) -> Iterator[MockProvider]:
    provider = MockProvider("health", tmp_path)
    yield provider
    provider.stop()


@pytest.fixture
def stack(mock: MockProvider, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(_config(free_port(), mock), tmp_path) as running:
        yield running


def test_failing_target_is_ejected_then_comes_back_on_its_own(stack: Stack, mock: MockProvider) -> None:
    mock.set_rules([{"match": {"model": "recovering-primary"}, "status": 503, "times": 2}])

    assert [stack.chat("recovering").headers["x-switchyard-attempts"] for _ in range(2)] == ["2", "2"]
    wait_for(lambda: stack.chat("recovering").headers["x-switchyard-attempts"] == "1", 5, "the ejection")
    assert len(mock.requests("recovering-primary")) == 2, "an ejected target gets no attempt"

    # The primary answers again (its rule is spent); after the 1s ejection it takes its traffic back.
    wait_for(lambda: stack.chat("recovering").headers["x-switchyard-target"] == "primary", 10, "the recovery")


def test_thousand_requests_with_a_30_percent_failing_primary_all_succeed(stack: Stack, mock: MockProvider) -> None:
    failures = [
        {"match": {"model": "flaky-primary"}, "status": 500, "rate": 0.06},
        {"match": {"model": "flaky-primary"}, "status": 502, "rate": 0.06},
        {"match": {"model": "flaky-primary"}, "status": 503, "rate": 0.07},
        {"match": {"model": "flaky-primary"}, "status": 429, "rate": 0.06, "retry_after": ""},
        {"match": {"model": "flaky-primary"}, "reset": True, "rate": 0.06},
    ]  # about 30% of attempts fail, mixed
    mock.set_rules(failures)

    def call(_: int) -> int:
        return stack.chat("flaky").status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = Counter(pool.map(call, range(1000)))

    assert statuses == Counter({200: 1000}), statuses
    actions = Counter(r["action"] for r in mock.requests("flaky-primary"))
    assert {"status:500", "status:502", "status:503", "status:429", "reset"} <= set(actions), actions


def test_a_5xx_outside_the_fallback_codes_is_passed_on_and_never_ejects_the_target(
    stack: Stack, mock: MockProvider
) -> None:
    mock.set_rules([{"match": {"model": "picky-primary"}, "status": 500, "times": 5}])

    responses = [stack.chat("picky") for _ in range(5)]
    assert [r.status_code for r in responses] == [500] * 5, "500 is not a fallback code here: the client gets it"
    assert mock.requests("picky-backup") == []

    # Neither Envoy (its consecutive-5xx ejection is off) nor the control plane held the 500s against it.
    after = stack.chat("picky")
    assert (after.status_code, after.headers["x-switchyard-target"]) == (200, "primary")
    wait_for(lambda: stack.target_status("picky", "primary")["requests"] == 6, 10, "the attempt log")
    primary = stack.target_status("picky", "primary")
    assert (primary["state"], primary["failures"]) == ("healthy", 0)


def test_a_high_failure_rate_ejects_a_target_even_without_a_streak(stack: Stack, mock: MockProvider) -> None:
    # About half the attempts fail, at random: over the window that is above the 40% threshold.
    mock.set_rules([{"match": {"model": "often-failing-primary"}, "status": 502, "rate": 0.5}])

    def ejected() -> bool:
        assert stack.chat("often-failing").status_code == 200
        return bool(stack.target_status("often-failing", "primary")["state"] == "ejected")

    wait_for(ejected, 20, "the failure rate to eject the primary")
    primary = stack.target_status("often-failing", "primary")
    assert "attempts failed (within 30s)" in primary["why"]

    tried_before = len(mock.requests("often-failing-primary"))
    for _ in range(5):
        response = stack.chat("often-failing")
        assert (response.headers["x-switchyard-target"], response.headers["x-switchyard-attempts"]) == ("backup", "1")
    assert len(mock.requests("often-failing-primary")) == tried_before, "an ejected target gets no attempt"


def test_requests_their_clients_gave_up_on_never_count_against_the_target(stack: Stack, mock: MockProvider) -> None:
    """A client that hangs up (a closed chat window, a cancelled stream, a client timeout) leaves the attempt
    unanswered: that is not the target failing, and it must not eject a healthy target."""
    mock.set_rules([{"match": {"model": "patient-primary"}, "latency_ms": 3000}])
    try:
        with httpx.Client(base_url=stack.client.base_url, timeout=0.3) as impatient:
            for _ in range(6):
                with pytest.raises(httpx.TimeoutException):
                    impatient.post("/v1/chat/completions", json={"model": "patient", "messages": MESSAGES})
        wait_for(lambda: len(mock.requests("patient-primary")) == 6, 10, "the six attempts to reach the target")
    finally:
        mock.set_rules([])

    def logged() -> bool:
        return int(stack.target_status("patient", "primary")["abandoned"]) == 6

    wait_for(logged, 10, "the six abandoned attempts to reach the control plane")
    primary = stack.target_status("patient", "primary")
    assert (primary["state"], primary["requests"], primary["failures"]) == ("no_traffic", 0, 0), primary
    metrics = httpx.get(f"http://{stack.api}/metrics", timeout=10).text
    assert 'switchyard_target_abandoned_total{route="patient",target="primary"} 6.0' in metrics
    served = stack.chat("patient")
    assert (served.status_code, served.headers["x-switchyard-target"], served.headers["x-switchyard-attempts"]) == (
        200,
        "primary",
        "1",
    )


def test_a_target_that_never_answers_in_time_still_fails_and_is_ejected(stack: Stack, mock: MockProvider) -> None:
    """The other side of the test above: an attempt Envoy gives up on (the route's timeout) is the target's
    failure, however its client fares (here it gets the backup's answer)."""
    mock.set_rules([{"match": {"model": "hanging-primary"}, "hang": True}])
    try:
        for _ in range(2):
            served = stack.chat("hanging")
            assert (served.status_code, served.headers["x-switchyard-target"]) == (200, "backup")
        wait_for(lambda: stack.target_status("hanging", "primary")["state"] == "ejected", 10, "the primary ejected")
    finally:
        mock.set_rules([])
    primary = stack.target_status("hanging", "primary")
    assert (primary["failures"], primary["abandoned"]) == (2, 0), primary
