"""Each strategy's placement of a route's targets, without Envoy; and what the translation makes of it."""

from __future__ import annotations

import textwrap

import pytest

from controlplane.strategies import Placement, placements
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
    (cluster,) = translate(load_config_text(text)).clusters
    levels = {
        locality.priority: sorted(e.metadata.filter_metadata["switchyard"].fields["target"].string_value
                                  for e in locality.lb_endpoints)
        for locality in cluster.load_assignment.endpoints
    }  # fmt: skip
    assert levels == {0: ["cheap"], 1: ["also-mid", "mid"], 2: ["pricey"]}


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
