"""The `clients:` section: who may call, with which keys, which models, and how much."""

from __future__ import annotations

import hashlib

import pytest

from switchyard.config.model import BudgetPeriod, key_digest
from tests.unit.test_config import BASE, load, problems_of

TEAM_A_KEY = "sk-team-a-0123456789"
DIGEST = hashlib.sha256(b"sk-team-b-0123456789").hexdigest()


def _with_clients(block: str) -> str:
    return BASE + "clients:\n" + block  # clients: is line 10


def test_without_clients_the_gateway_is_open() -> None:
    assert load(BASE).clients is None


def test_clients_with_literal_keys_digests_models_limits_and_budget() -> None:
    config = load(
        _with_clients(
            f"""\
  team-a:
    keys: ["${{TEAM_A_KEY}}"]
    models: [gpt-4]
    limits: {{requests_per_minute: 600, tokens_per_minute: 200000}}
    budget: {{usd: 500, per: month}}
  team-b:
    keys: ["sha256:{DIGEST.upper()}"]
"""
        ),
        {"TEAM_A_KEY": TEAM_A_KEY},
    )
    assert config.clients is not None
    team_a, team_b = config.clients["team-a"], config.clients["team-b"]
    assert team_a.key_digests() == (hashlib.sha256(TEAM_A_KEY.encode()).hexdigest(),)
    assert team_a.models == ("gpt-4",)
    assert team_a.limits.requests_per_minute == 600 and team_a.limits.tokens_per_minute == 200000
    assert team_a.budget is not None and team_a.budget.usd == 500 and team_a.budget.per is BudgetPeriod.MONTH
    assert team_b.key_digests() == (DIGEST,)  # digests are compared in lower case
    assert team_b.models is None and team_b.budget is None
    assert TEAM_A_KEY not in repr(config)  # keys are secrets: never in a repr or a log line


@pytest.mark.parametrize(
    ("block", "line", "path", "message"),
    [
        ("  a:\n    keys: [short]\n", 12, "clients.a.keys[0]", "at least 16 characters"),
        ("  a:\n    keys: ['sha256:12']\n", 12, "clients.a.keys[0]", "64 hex digits"),
        ("  a:\n    keys: []\n", 12, "clients.a.keys", "must not be empty"),
        ("  a:\n    keys: [sk-team-a-0123456789]\n    models: [gpt-5]\n", 13, "clients.a.models[0]",
         "no route for model 'gpt-5' (routes: gpt-4)"),
        ("  a:\n    keys: [sk-team-a-0123456789]\n  b:\n    keys: [sk-team-a-0123456789]\n", 14, "clients.b.keys[0]",
         "already used by client 'a'"),
        (f"  a:\n    keys: [sk-team-b-0123456789, 'sha256:{DIGEST}']\n", 12, "clients.a.keys[1]",
         "already used earlier in this list"),
        ("  a b:\n    keys: [sk-team-a-0123456789]\n", 11, "clients.a b", "a client name is"),
        ("  a:\n    keys: [sk-team-a-0123456789]\n    budget: {usd: 0}\n", 13, "clients.a.budget.usd",
         "greater than 0"),
        ("  a:\n    keys: [sk-team-a-0123456789]\n    budget: {usd: 5, per: year}\n", 13, "clients.a.budget.per",
         "day"),
        ("  a:\n    keys: [sk-team-a-0123456789]\n    limits: {requests_per_min: 5}\n", 13,
         "clients.a.limits.requests_per_min", ""),
        ("  a:\n    keys: [sk-team-a-0123456789]\n    limits: {burst: 5}\n", 13, "clients.a.limits",
         "needs `requests_per_minute`"),
        ("  a:\n    keys: [sk-team-a-0123456789]\n    limits: {requests_per_minute: 5, burst: 6}\n", 13,
         "clients.a.limits", "can only tighten"),
        ("  {}\n", 10, "clients", "is empty"),
    ],
)  # fmt: skip
def test_client_mistakes_point_at_their_line(block: str, line: int, path: str, message: str) -> None:
    found = problems_of(_with_clients(block))
    assert any(p.line == line and p.path == path and message in p.message for p in found), found


def test_key_digest_of_a_digest_is_itself() -> None:
    assert key_digest(f"sha256:{DIGEST}") == DIGEST
    assert key_digest("sk-team-b-0123456789") == DIGEST
