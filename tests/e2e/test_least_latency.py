"""least_latency end to end: live latency from Envoy's attempt log steers the weights Envoy routes by.

The mock answers one target in ~5 ms and the other in ~50 ms; the test only sends requests and reads which
target served them, so everything between (attempt log → moving averages → weights → xDS) is exercised.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from switchyard.supervisor.processes import free_port
from tests.support.harness import MockProvider, Stack, running_stack, wait_for

pytestmark = pytest.mark.e2e

FAST_MS, SLOW_MS = 5, 50


def _config(port: int, mock: MockProvider) -> str:
    return f"""
listen: 127.0.0.1:{port}
providers:
  p: {{kind: openai, base_url: "{mock.url}", api_key: sk-latency}}
routes:
  - model: quickest
    strategy: least_latency
    latency: {{decay: 0.2, warmup: 3, exploration: 5%}}
    targets:
      - {{name: east, provider: p, model: quickest-east}}
      - {{name: west, provider: p, model: quickest-west}}
  - model: first-token
    strategy: least_latency
    latency: {{measure: first_token, warmup: 3, exploration: 5%}}
    targets:
      - {{name: east, provider: p, model: first-token-east}}
      - {{name: west, provider: p, model: first-token-west}}
  - model: wordy
    strategy: least_latency
    latency: {{measure: per_output_token, exploration: 5%}}
    targets:
      - {{name: terse, provider: p, model: wordy-terse}}
      - {{name: verbose, provider: p, model: wordy-verbose}}
"""


def _latencies(mock: MockProvider, east_ms: int, west_ms: int) -> None:
    mock.set_rules(
        [
            {"match": {"model": "quickest-east"}, "latency_ms": east_ms},
            {"match": {"model": "quickest-west"}, "latency_ms": west_ms},
        ]
    )


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockProvider]:
    provider = MockProvider("latency", tmp_path_factory.mktemp("mock"))
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def stack(mock: MockProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(_config(free_port(), mock), Path(tmp_path_factory.mktemp("stack"))) as running:
        yield running


def served(stack: Stack, count: int, route: str = "quickest") -> Counter[str]:
    targets: Counter[str] = Counter()
    for _ in range(count):
        response = stack.chat(route)
        assert response.status_code == 200, response.text
        targets[response.headers["x-switchyard-target"]] += 1
    return targets


def weights(stack: Stack, model: str = "quickest") -> dict[str, int]:
    (route,) = [r for r in stack.status()["routes"] if r["model"] == model]
    return {t["name"]: t["weight"] for t in route["targets"]}


def await_lead(stack: Stack, route: str, leader: str, timeout: float) -> None:
    """Keep traffic flowing (the averages only move with it) until `leader` weighs most in `route`."""

    def leading() -> bool:
        served(stack, 10, route)
        current = weights(stack, route)
        return current[leader] == max(current.values()) and len(set(current.values())) > 1

    wait_for(leading, timeout, f"least_latency to favour {leader} in {route}")


def test_the_fast_target_takes_most_traffic_and_the_split_follows_a_swap_within_ten_seconds(
    stack: Stack, mock: MockProvider
) -> None:
    _latencies(mock, east_ms=FAST_MS, west_ms=SLOW_MS)

    # Warm-up: both targets measured (an even split until then), then the weights lean to the fast one.
    await_lead(stack, "quickest", "east", 20)
    assert weights(stack) == {"east": 950, "west": 50}, "the slower target keeps the 5% exploration share"
    warm = served(stack, 200)
    assert warm["east"] >= 160, f"at least 80% should go to the ~5 ms target: {warm}"
    assert warm["west"] >= 1, f"the slower target must keep being measured: {warm}"

    _latencies(mock, east_ms=SLOW_MS, west_ms=FAST_MS)
    swapped_at = time.monotonic()

    await_lead(stack, "quickest", "west", 10)
    took = time.monotonic() - swapped_at
    after = served(stack, 200)
    assert after["west"] >= 160, f"at least 80% should now go to west, {took:.1f}s after the swap: {after}"

    text = httpx.get(f"http://{stack.api}/metrics", timeout=10).text
    assert 'switchyard_target_weight{priority="0",route="quickest",target="west"} 950.0' in text


def test_per_output_token_ranks_by_time_per_token_not_by_time_to_answer(stack: Stack, mock: MockProvider) -> None:
    # verbose answers later (20 ms) but with 200 tokens: 0.1 ms a token; terse answers 2 tokens in 3 ms.
    mock.set_rules(
        [
            {"match": {"model": "wordy-verbose"}, "latency_ms": 20, "completion_tokens": 200},
            {"match": {"model": "wordy-terse"}, "latency_ms": 3, "completion_tokens": 2},
        ]
    )

    await_lead(stack, "wordy", "verbose", 20)
    shares = served(stack, 100, "wordy")
    assert shares["verbose"] >= 80, shares
    (route,) = [r for r in stack.status()["routes"] if r["model"] == "wordy"]
    verbose = next(t for t in route["targets"] if t["name"] == "verbose")
    assert route["latency_measure"] == "per_output_token"
    assert verbose["output_tokens"] >= 200 * 80
    assert verbose["latency_ms"] < 1.0, "about 0.1 ms per token, not the 20 ms to the answer"


def test_first_token_ranks_from_the_answer_log(stack: Stack, mock: MockProvider) -> None:
    """The same split as first_byte, measured from the per-request answer log instead of the attempt log."""
    mock.set_rules(
        [
            {"match": {"model": "first-token-east"}, "latency_ms": SLOW_MS},
            {"match": {"model": "first-token-west"}, "latency_ms": FAST_MS},
        ]
    )

    await_lead(stack, "first-token", "west", 20)
    shares = served(stack, 100, "first-token")
    assert shares["west"] >= 80, shares
