"""One answer's counts and cost from the answer log's tags, in each client API's names (issue 19): cached tokens
counted apart from the plain prompt and priced apart, with `price.cache_read` / `cache_write` defaulting to the
input price; the YAML that sets them; the /metrics family that shows them."""

from __future__ import annotations

import pytest

from controlplane.usage.accounting import UsageAccounting
from controlplane.usage.api import UsageCollector
from controlplane.usage.record import TargetInfo, TokenCounts, token_counts, usage_from_tags
from controlplane.usage.sqlite import SqliteUsageStore
from switchyard.config.model import Price
from switchyard.contract import STREAM_TAGS, USAGE_TAGS
from tests.unit.test_config import BASE, edit, load, problems_of, the_problem


def usage_tags(**counts: int) -> dict[str, str]:
    return {USAGE_TAGS[key]: str(value) for key, value in counts.items()}


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        pytest.param(
            usage_tags(prompt_tokens=2048, completion_tokens=9, cached_tokens=1024),
            TokenCounts(2048, 9, 1024, 0),
            id="openai-chat: prompt_tokens include the cached ones",
        ),
        pytest.param(
            usage_tags(prompt_tokens=300, completion_tokens=9, cached_tokens=100, cache_write_tokens=50),
            TokenCounts(300, 9, 100, 50),
            id="openai-chat translated from Anthropic: cache writes named too",
        ),
        pytest.param(
            usage_tags(input_tokens=2048, output_tokens=9, cached_tokens=1024),
            TokenCounts(2048, 9, 1024, 0),
            id="responses: input_tokens include the cached ones",
        ),
        pytest.param(
            usage_tags(input_tokens=25, output_tokens=15, cache_read_input_tokens=50, cache_creation_input_tokens=25),
            TokenCounts(100, 15, 50, 25),
            id="anthropic: input_tokens leave the cache reads and writes out",
        ),
        pytest.param(usage_tags(prompt_tokens=12, completion_tokens=3), TokenCounts(12, 3, 0, 0), id="no caching"),
        pytest.param(
            {
                STREAM_TAGS["input_tokens"]: "100",
                STREAM_TAGS["output_tokens"]: "7",
                STREAM_TAGS["cache_read_tokens"]: "50",
                STREAM_TAGS["cache_write_tokens"]: "25",
                # what the Lua filter read of the client's translated stream: the ext_proc's counts win
                **usage_tags(input_tokens=25, output_tokens=7),
            },
            TokenCounts(100, 7, 50, 25),
            id="translated stream: the ext_proc's counts",
        ),
    ],
)
def test_cached_tokens_are_counted_apart_in_every_api(tags: dict[str, str], expected: TokenCounts) -> None:
    assert token_counts(tags) == expected


def answer_cost(price: Price, **counts: int) -> float:
    target = TargetInfo("claude", "primary", "claude-sonnet", price)
    return usage_from_tags(usage_tags(**counts), target, "node", "req", 0, 0, 0.1).cost_usd


def test_each_count_costs_its_own_price() -> None:
    price = Price(input=3, output=15, cache_read=0.3, cache_write=3.75)
    cost = answer_cost(
        price,
        input_tokens=1_000_000,
        output_tokens=1_000_000,
        cache_read_input_tokens=2_000_000,
        cache_creation_input_tokens=4_000_000,
    )
    assert cost == pytest.approx(3 + 15 + 2 * 0.3 + 4 * 3.75)


def test_cache_prices_default_to_the_input_price() -> None:
    cached = answer_cost(Price(input=3, output=15), prompt_tokens=1_000_000, cached_tokens=600_000)
    uncached = answer_cost(Price(input=3, output=15), prompt_tokens=1_000_000)
    assert cached == uncached == pytest.approx(3)


def test_the_yaml_price_takes_cache_prices() -> None:
    config = load(edit("model: gpt-4o}", "model: gpt-4o, price: {input: 2.5, output: 10, cache_read: 1.25}}"))
    price = config.routes[0].targets[0].price
    assert price is not None and (price.cache_read_or_input, price.cache_write_or_input) == (1.25, 2.5)


@pytest.mark.parametrize(
    ("price", "path", "fragment"),
    [
        ("{input: 1, output: 2, cache_read: -1}", "routes[0].targets[0].price.cache_read", "greater than or equal"),
        ("{input: 1, output: 2, cache_reads: 1}", "routes[0].targets[0].price.cache_reads", "unknown key"),
    ],
)
def test_a_wrong_cache_price_is_reported_at_its_path_and_line(price: str, path: str, fragment: str) -> None:
    problem = the_problem(problems_of(edit("model: gpt-4o}", f"model: gpt-4o, price: {price}}}")), path, fragment)
    assert problem.line == BASE.count("\n")


def test_metrics_show_cache_reads_and_writes_in_a_family_of_their_own() -> None:
    usage = UsageAccounting(SqliteUsageStore(":memory:"))
    target = TargetInfo("claude", "primary", "claude-sonnet", None)
    tags = usage_tags(input_tokens=25, output_tokens=15, cache_read_input_tokens=50, cache_creation_input_tokens=25)
    usage.add_answer(tags, target, "node", "req", 0, 0, 0.1)
    families = {family.name: family for family in UsageCollector(usage).collect()}
    cache = {(s.labels["kind"], s.name): s.value for s in families["switchyard_client_cache_tokens"].samples}
    assert cache == {
        ("read", "switchyard_client_cache_tokens_total"): 50,
        ("write", "switchyard_client_cache_tokens_total"): 25,
    }
    prompt = [s.value for s in families["switchyard_client_tokens"].samples if s.labels["kind"] == "prompt"]
    assert prompt == [100]


def test_a_message_of_answers_counts_as_the_answers_one_by_one() -> None:
    """The answer log's batch path (add_records, once per client, route, target and minute) and the single-answer
    path (add) must agree on every counter: tokens, cached tokens, spend and the ledger."""
    target = TargetInfo("claude", "primary", "claude-sonnet", Price(input=3, output=15, cache_read=0.3))
    records = [
        usage_from_tags(
            usage_tags(
                input_tokens=10 + n, output_tokens=n, cache_read_input_tokens=5 * n, cache_creation_input_tokens=n
            ),
            target,
            "node",
            f"req-{n}",
            60 * (n // 3),
            n,
            0.1,
        )
        for n in range(7)
    ]
    one_by_one, batched = UsageAccounting(SqliteUsageStore(":memory:")), UsageAccounting(SqliteUsageStore(":memory:"))
    for record in records:
        one_by_one.add(record)
    batched.add_records(records)
    assert batched.tokens == one_by_one.tokens
    assert batched.cache_tokens == one_by_one.cache_tokens and batched.cache_tokens
    assert batched.spend == pytest.approx(one_by_one.spend)
