"""Each strategy's placement of a route's targets, without Envoy; and what the translation makes of it."""

from __future__ import annotations

import textwrap

import pytest

from controlplane.strategies import Placement, Signals, placements
from controlplane.translate import translate
from switchyard.config import ConfigError, Route, load_config_text

PROVIDERS = """
providers:
  p: {kind: openai_compatible, base_url: "http://127.0.0.1:9"}
"""


def route(body: str) -> Route:
    text = PROVIDERS + "routes:\n  - model: m\n" + textwrap.indent(textwrap.dedent(body).strip() + "\n", "    ")
    (only,) = load_config_text(text).routes
    return only


THREE = """
targets:
  - {name: a, provider: p, model: a, weight: 5}
  - {name: b, provider: p, model: b, weight: 2, priority: 7}
  - {name: c, provider: p, model: c}
"""


def test_priority_tries_targets_in_list_order_unless_told_otherwise() -> None:
    assert placements(route("strategy: priority" + THREE)) == (Placement(0, 5), Placement(7, 2), Placement(2, 1))


def test_weighted_shares_one_level_by_weight() -> None:
    assert placements(route("strategy: weighted" + THREE)) == (Placement(0, 5), Placement(7, 2), Placement(0, 1))


def test_round_robin_ignores_weights() -> None:
    assert placements(route("strategy: round_robin" + THREE)) == (Placement(0, 1), Placement(7, 1), Placement(0, 1))


PRICED = """
strategy: lowest_cost
targets:
  - {name: pricey, provider: p, model: a, price: {input: 5, output: 15}}
  - {name: cheap, provider: p, model: b, price: {input: 0.15, output: 0.6}}
  - {name: mid, provider: p, model: c, price: {input: 1, output: 4}}
  - {name: also-mid, provider: p, model: d, price: {input: 1, output: 4}}
"""


def test_lowest_cost_ranks_by_blended_price_and_ties_share_a_level() -> None:
    placed = placements(route(PRICED))
    assert [p.priority for p in placed] == [2, 0, 1, 1]
    assert {p.weight for p in placed} == {1}


def test_output_price_matters_less_than_input_at_three_to_one() -> None:
    # Blended at 3 input tokens per output token: (3*1 + 10)/4 = 3.25 against (3*3 + 1)/4 = 2.5.
    placed = placements(
        route(
            """
            strategy: lowest_cost
            targets:
              - {name: cheap-output, provider: p, model: a, price: {input: 1, output: 10}}
              - {name: cheap-input, provider: p, model: b, price: {input: 3, output: 1}}
            """
        )
    )
    assert [p.priority for p in placed] == [1, 0]


def test_lowest_cost_becomes_envoy_priority_levels() -> None:
    text = PROVIDERS + "routes:\n  - model: m\n" + textwrap.indent(textwrap.dedent(PRICED).strip() + "\n", "    ")
    clusters = translate(load_config_text(text)).clusters
    assert [c.name for c in clusters] == ["route/m", "route/m@anthropic", "route/m@responses"]  # each client API
    for cluster in clusters:
        levels: dict[int, list[str]] = {}
        for locality in cluster.load_assignment.endpoints:
            levels.setdefault(locality.priority, []).append(locality.locality.sub_zone)
        by_level = {level: sorted(names) for level, names in levels.items()}
        assert by_level == {0: ["cheap"], 1: ["also-mid", "mid"], 2: ["pricey"]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (PRICED.replace(", price: {input: 5, output: 15}", ""), "missing on pricey"),
        (PRICED.replace("model: a,", "model: a, priority: 1,"), "remove their `priority`"),
    ],
)
def test_lowest_cost_configuration_errors(body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        route(body)


def test_unknown_strategy_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError, match="round_robin"):
        route("strategy: fastest" + THREE)


FAST_AND_SLOW = """
strategy: least_latency
latency: {exploration: 10%}
targets:
  - {name: slow, provider: p, model: a}
  - {name: fast, provider: p, model: b}
  - {name: backup, provider: p, model: c, priority: 1}
"""


def test_least_latency_gives_the_fastest_all_but_the_exploration_share() -> None:
    placed = placements(route(FAST_AND_SLOW), Signals(latency_s=(0.050, 0.005, None)))
    assert placed[:2] == (Placement(0, 100), Placement(0, 900))
    assert placed[2].priority == 1, "an explicit priority keeps its level: a fallback, not a contender"


def test_least_latency_follows_a_swap() -> None:
    placed = placements(route(FAST_AND_SLOW), Signals(latency_s=(0.005, 0.050, None)))
    assert placed[:2] == (Placement(0, 900), Placement(0, 100))


def test_least_latency_splits_evenly_until_anything_is_measured() -> None:
    placed = placements(route(FAST_AND_SLOW), Signals(latency_s=(None, None, None)))
    assert placed[0].weight == placed[1].weight


def test_least_latency_explores_a_target_it_has_not_measured_yet() -> None:
    placed = placements(route(FAST_AND_SLOW), Signals(latency_s=(None, 0.005, None)))
    assert placed[:2] == (Placement(0, 100), Placement(0, 900))


def test_least_latency_shares_the_lead_between_near_equal_targets() -> None:
    placed = placements(route(FAST_AND_SLOW), Signals(latency_s=(0.0100, 0.0105, None)))
    assert placed[0].weight == placed[1].weight, "5% apart is noise: no flip-flopping of all traffic"


def test_least_latency_with_no_exploration_keeps_the_slower_target_at_the_minimum_weight() -> None:
    body = FAST_AND_SLOW.replace("exploration: 10%", "exploration: 0")
    placed = placements(route(body), Signals(latency_s=(0.050, 0.005, None)))
    assert placed[:2] == (Placement(0, 1), Placement(0, 1000))


def test_other_strategies_ignore_latency() -> None:
    signals = Signals(latency_s=(0.5, 0.001, 0.001))
    assert placements(route("strategy: weighted" + THREE), signals) == placements(route("strategy: weighted" + THREE))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("latency: {exploration: 1.0}", "less than 1"),
        ("latency: {exploration: lots}", "must be a valid number"),
        ("latency: {exploration: lots%}", "expected a share like 0.5 or 50%"),
        ("latency: {decay: 0}", "greater than 0"),
        ("health: {failure_rate: {threshold: 0}}", "greater than 0"),
        ("health: {failure_rate: {min_requests: 0}}", "greater than or equal to 1"),
    ],
)
def test_latency_and_health_settings_are_checked(body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        route(body + THREE)


def test_failure_rate_is_on_by_default_and_can_be_turned_off() -> None:
    assert route(THREE).health.failure_rate is not None
    assert route("health: {failure_rate: null}" + THREE).health.failure_rate is None
    assert route("health: {failure_rate: {threshold: 25%}}" + THREE).health.failure_rate.threshold == 0.25  # type: ignore[union-attr]
