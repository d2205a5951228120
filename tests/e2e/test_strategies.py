"""Strategies end to end: who serves, in what share, and who takes over when the chosen target fails."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchyard.supervisor.processes import free_port
from tests.support.harness import MockProvider, Stack, running_stack

pytestmark = pytest.mark.e2e


def _config(port: int, mock: MockProvider) -> str:
    return f"""
listen: 127.0.0.1:{port}
providers:
  p: {{kind: openai, base_url: "{mock.url}", api_key: sk-strategies}}
routes:
  - model: rr
    strategy: round_robin
    targets:
      - {{name: one, provider: p, model: rr-one, weight: 10}}
      - {{name: two, provider: p, model: rr-two}}
      - {{name: three, provider: p, model: rr-three}}
  - model: cost
    strategy: lowest_cost
    health: {{consecutive_failures: 0}}
    targets:
      - {{name: premium, provider: p, model: cost-premium, price: {{input: 5, output: 15}}}}
      - {{name: budget, provider: p, model: cost-budget, price: {{input: 0.15, output: 0.6}}}}
      - {{name: standard, provider: p, model: cost-standard, price: {{input: 1, output: 4}}}}
"""


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockProvider]:
    provider = MockProvider("strategies", tmp_path_factory.mktemp("mock"))
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def stack(mock: MockProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(_config(free_port(), mock), Path(tmp_path_factory.mktemp("stack"))) as running:
        yield running


def test_round_robin_gives_every_target_an_equal_share_whatever_the_weights(stack: Stack) -> None:
    served = Counter(stack.chat("rr").headers["x-switchyard-target"] for _ in range(300))

    assert set(served) == {"one", "two", "three"}
    for target, count in served.items():
        assert 85 <= count <= 115, f"{target} served {count} of 300: {served}"


def test_lowest_cost_serves_from_the_cheapest_then_falls_back_to_the_next_cheapest(
    stack: Stack, mock: MockProvider
) -> None:
    assert {stack.chat("cost").headers["x-switchyard-target"] for _ in range(10)} == {"budget"}
    assert mock.requests("cost-premium") == [] and mock.requests("cost-standard") == []

    mock.set_rules([{"match": {"model": "cost-budget"}, "status": 503}])
    response = stack.chat("cost")

    assert response.status_code == 200
    assert response.headers["x-switchyard-target"] == "standard"
    assert response.headers["x-switchyard-attempts"] == "2"
    assert mock.requests("cost-premium") == []
