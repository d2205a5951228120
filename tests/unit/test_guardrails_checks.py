"""The built-in guardrail checks on positives and on the near-misses that must pass untouched.

A guardrail that masks order numbers as cards or version numbers as addresses breaks prompts; one that misses a
card written with spaces leaks it. Each case is a text a user could send, and what they would see come out.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from extproc.guardrails.checks import GuardrailSet
from extproc.guardrails.masking import Masker
from extproc.guardrails.matches import Match
from extproc.guardrails.patterns import GuardrailTimeoutError, PatternDetector, TermsDetector
from extproc.guardrails.pii import PiiDetector, iban_valid, luhn_valid
from extproc.guardrails.secrets import SecretsDetector
from extproc.guardrails.tokens import estimate_tokens
from switchyard.config.guardrails import PiiKind, SecretKind
from switchyard.config.model import Route
from switchyard.contract import WireApi
from tests.support.pii_sample import SAMPLE


def kinds_found(detector: Any, text: str) -> list[tuple[str, str]]:
    return [(m.kind, text[m.start : m.end]) for m in sorted(detector.find(text))]


PII = PiiDetector()


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("write to jane.doe+work@example.co.uk today", ("EMAIL", "jane.doe+work@example.co.uk")),
        ("card 4111 1111 1111 1111 exp 12/29", ("CARD", "4111 1111 1111 1111")),
        ("card 4111-1111-1111-1111.", ("CARD", "4111-1111-1111-1111")),
        ("amex 378282246310005", ("CARD", "378282246310005")),
        ("mastercard 5555555555554444", ("CARD", "5555555555554444")),
        ("IBAN GB82 WEST 1234 5698 7654 32 please", ("IBAN", "GB82 WEST 1234 5698 7654 32")),
        ("pay DE89370400440532013000", ("IBAN", "DE89370400440532013000")),
        ("host 192.168.10.200 is down", ("IP_ADDRESS", "192.168.10.200")),
        ("v6 2001:db8:85a3::8a2e:370:7334 up", ("IP_ADDRESS", "2001:db8:85a3::8a2e:370:7334")),
        ("call +44 20 7946 0958 now", ("PHONE", "+44 20 7946 0958")),
        ("call (555) 123-4567 now", ("PHONE", "(555) 123-4567")),
        ("call 555-123-4567 now", ("PHONE", "555-123-4567")),
        ("ruf an: +4915112345678", ("PHONE", "+4915112345678")),
    ],
)
def test_personal_data_is_found_with_its_kind(text: str, found: tuple[str, str]) -> None:
    assert kinds_found(PII, text) == [found]


@pytest.mark.parametrize(
    "text",
    [
        "order 4111 1111 1111 1112 shipped",  # 16 digits failing Luhn: not a card
        "tracking 1234567890123456",  # passes no Luhn, no card network
        "id 9111111111111111",  # Luhn-valid, but no card network starts with 9
        "GB82 WEST 1234 5698 7654 33",  # IBAN with a wrong checksum
        "DE8937040044053201300",  # IBAN one character short for Germany
        "version 1.2.3 and 10.0.19045",  # versions, not addresses or phones
        "at 12:30:45 on 2024-01-15",  # a time and a date
        "release 2024.10.21",
        "an address like user at example dot com",
        "999.1.1.1 is no address",
        "room 12-34",
        "sha 3f786850e387550fdab836ed7e6dc881de23001b",
    ],
)
def test_near_misses_are_not_personal_data(text: str) -> None:
    assert kinds_found(PII, text) == []


def test_luhn_and_iban_checksums() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("GB82WEST12345698765432") and iban_valid("gb82 west 1234 5698 7654 32")
    assert not iban_valid("GB82WEST12345698765433") and not iban_valid("XX82WEST12345698765432")


def test_only_the_configured_kinds_are_looked_for() -> None:
    text = "mail a@example.com, call +44 20 7946 0958"
    assert [kind for kind, _ in kinds_found(PiiDetector((PiiKind.EMAIL,)), text)] == ["EMAIL"]


SECRETS = SecretsDetector()
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # AWS's documentation example


@pytest.mark.parametrize(
    ("text", "kind", "secret"),
    [
        (
            "key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD ok",
            "OPENAI_KEY",
            "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD",
        ),
        (
            "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789",
            "ANTHROPIC_KEY",
            "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789",
        ),
        ("AKIAIOSFODNN7EXAMPLE is the id", "AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
        (f"aws_secret_access_key = {AWS_SECRET}", "AWS_SECRET_KEY", AWS_SECRET),
        (f'"SecretAccessKey": "{AWS_SECRET}"', "AWS_SECRET_KEY", AWS_SECRET),
        ("ghp_" + "a1B2" * 9, "GITHUB_TOKEN", "ghp_" + "a1B2" * 9),
        ("AIza" + "Sy" + "A" * 33, "GOOGLE_API_KEY", "AIza" + "Sy" + "A" * 33),
        (
            "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
            "JWT",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        ),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nabc+/=\n-----END RSA PRIVATE KEY-----\nbye",
            "PRIVATE_KEY",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nabc+/=\n-----END RSA PRIVATE KEY-----",
        ),
    ],
)
def test_secrets_are_found(text: str, kind: str, secret: str) -> None:
    assert (kind, secret) in kinds_found(SECRETS, text)


@pytest.mark.parametrize(
    "text",
    [
        "ask-anything-you-like about sk- prefixes",
        "the task-abcdefghijklmnopqrstuvwxyz is done",  # `sk-` inside a word
        AWS_SECRET,  # 40 characters with nothing naming them as a key
        "AKIA is a prefix",
        "eyJhbGciOiJIUzI1NiJ9 alone is no token",
        "-----BEGIN PUBLIC KEY-----",
    ],
)
def test_secret_near_misses_pass(text: str) -> None:
    assert kinds_found(SECRETS, text) == []


def test_secret_kinds_can_be_chosen() -> None:
    text = "AKIAIOSFODNN7EXAMPLE sk-proj-abcdefghijklmnopqrstuvwxyz0123"
    assert [k for k, _ in kinds_found(SecretsDetector((SecretKind.PROVIDER_KEY,)), text)] == ["OPENAI_KEY"]


def test_masking_is_typed_and_consistent_within_a_request() -> None:
    masker = Masker()
    first = "a@example.com wrote to b@example.com"
    second = "A@Example.com again; card 4111 1111 1111 1111 and 4111111111111111"
    assert masker.mask(first, PII.find(first)) == "[EMAIL_1] wrote to [EMAIL_2]"
    # one address in another case, one card with and without spaces: the same placeholders
    assert masker.mask(second, PII.find(second)) == "[EMAIL_1] again; card [CARD_1] and [CARD_1]"
    assert "example" not in repr(masker)
    assert Masker().mask(first, PII.find(first)).startswith("[EMAIL_1]")  # another request starts anew


def test_overlapping_matches_mask_once() -> None:
    masker = Masker()
    assert masker.mask("abcdef", [Match(0, 4, "A"), Match(2, 6, "B")]) == "[A_1]ef"


def test_terms_match_whole_words_and_phrases() -> None:
    detector = TermsDetector(("project falcon", "secret"), ignore_case=True)
    assert kinds_found(detector, "about Project   Falcon and the SECRET plan") == [
        ("TERM", "Project   Falcon"),
        ("TERM", "SECRET"),
    ]
    assert kinds_found(detector, "the secretary of project falconry") == []


def test_a_pathological_team_pattern_stops_at_its_budget() -> None:
    detector = PatternDetector(r"(a|aa)+$", ignore_case=False, budget=0.05)
    started = time.monotonic()
    with pytest.raises(GuardrailTimeoutError):
        detector.find("a" * 40 + "!")
    assert time.monotonic() - started < 2


def test_token_estimate_counts_ascii_by_four_and_other_characters_by_one() -> None:
    assert estimate_tokens(["abcd" * 10]) == 10
    assert estimate_tokens(["abc", "d"]) == 1
    assert estimate_tokens(["日本語"]) == 3


def _route(guardrails: list[dict[str, Any]]) -> GuardrailSet:
    route = Route.model_validate({"model": "m", "targets": [{"provider": "p", "model": "x"}], "guardrails": guardrails})
    return GuardrailSet(route.guardrails)


def _chat(*texts: str) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text} for text in texts]}


def test_request_mask_block_and_flag() -> None:
    rules = _route(
        [
            {"check": "pii", "action": "mask"},
            {"check": "secrets", "action": "block"},
            {"check": "terms", "terms": ["falcon"], "action": "flag", "label": "codenames"},
        ]
    )
    body = _chat("mail jane@example.com about falcon", "card 4111 1111 1111 1111")
    decision = asyncio.run(rules.check_request(WireApi.OPENAI, body, Masker()))
    assert decision.block is None
    assert [m["content"] for m in body["messages"]] == ["mail [EMAIL_1] about falcon", "card [CARD_1]"]
    assert {(e.rule, e.action, e.count) for e in decision.events} == {("codenames", "flag", 1), ("pii", "mask", 2)}

    secret = _chat(f"here: aws_secret_access_key={AWS_SECRET} and jane@example.com")
    decision = asyncio.run(rules.check_request(WireApi.OPENAI, secret, Masker()))
    assert decision.block is not None and decision.block.rule == "secrets"
    assert AWS_SECRET not in decision.block.message and "credential" in decision.block.message
    assert "jane@example.com" in secret["messages"][0]["content"]  # blocked before any mask: nothing is sent


def test_max_input_tokens_blocks_or_flags_over_the_limit() -> None:
    rules = _route([{"check": "max_input_tokens", "limit": 10}])
    assert asyncio.run(rules.check_request(WireApi.OPENAI, _chat("a" * 40), Masker())).block is None
    decision = asyncio.run(rules.check_request(WireApi.OPENAI, _chat("a" * 41), Masker()))
    assert decision.block is not None and decision.block.check == "max_input_tokens"


def test_json_schema_judges_the_answer() -> None:
    schema = {"type": "object", "required": ["answer"], "properties": {"answer": {"type": "string"}}}
    rules = _route([{"check": "json_schema", "schema": schema}])
    good = {"choices": [{"index": 0, "message": {"role": "assistant", "content": '{"answer": "yes"}'}}]}
    bad = {"choices": [{"index": 0, "message": {"role": "assistant", "content": '{"answer": 42}'}}]}
    prose = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Sure! Here it is"}}]}
    assert asyncio.run(rules.check_response(WireApi.OPENAI, good, Masker())).block is None
    for body in (bad, prose):
        block = asyncio.run(rules.check_response(WireApi.OPENAI, body, Masker())).block
        assert block is not None and block.check == "json_schema" and "answer contains" in block.message
    assert rules.check_answer_text('{"answer": "streamed"}').block is None
    assert rules.check_answer_text('{"answer": ').block is not None


def test_response_stage_rules_do_not_run_on_requests() -> None:
    rules = _route([{"check": "pii", "stage": "response"}])
    body = _chat("jane@example.com")
    asyncio.run(rules.check_request(WireApi.OPENAI, body, Masker()))
    assert body["messages"][0]["content"] == "jane@example.com"
    answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "mail jane@example.com"}}]}
    asyncio.run(rules.check_response(WireApi.OPENAI, answer, Masker()))
    assert answer["choices"][0]["message"]["content"] == "mail [EMAIL_1]"


def test_a_pathological_team_pattern_blocks_rather_than_hangs() -> None:
    rules = _route([{"check": "regex", "pattern": "(a|aa)+$", "label": "slow"}])
    decision = asyncio.run(rules.check_request(WireApi.OPENAI, _chat("a" * 5000 + "!"), Masker()))
    assert decision.block is not None and decision.block.failed and decision.block.rule == "slow"


def test_the_labelled_sample_is_found_exactly() -> None:
    for text, labels in SAMPLE:
        assert sorted(kinds_found(PII, text)) == sorted(labels), text


@pytest.mark.parametrize(
    "text",
    [
        "1 " * 200_000,
        "a@" + "b." * 200_000,
        "ab:" * 130_000,
        "+1 " * 130_000,
        "GB82 " * 80_000,
        "eyJ" * 130_000,
        "-----BEGIN PRIVATE KEY-----" * 15_000,
        "secret key " * 40_000,
    ],
)
def test_hostile_input_takes_linear_time(text: str) -> None:
    """Inputs built to make the patterns backtrack: hundreds of kilobytes must take well under a second each
    (the bound is loose for a loaded machine; a catastrophic pattern takes minutes)."""
    started = time.monotonic()
    PII.find(text)
    SECRETS.find(text)
    assert time.monotonic() - started < 5


def test_a_block_reply_is_a_400_in_the_clients_error_shape() -> None:
    from extproc.guardrails.checks import Block
    from extproc.guardrails.replies import block_reply

    block = Block("secrets", "secrets")
    status, body = block_reply(WireApi.OPENAI, block)
    error = json.loads(body)["error"]
    assert status == 400 and error["type"] == "invalid_request_error" and error["code"] == "guardrail_blocked"
    assert error["message"] == "blocked by guardrail 'secrets': the request contains a credential"
    status, body = block_reply(WireApi.ANTHROPIC, block)
    anthropic = json.loads(body)
    assert status == 400 and anthropic["type"] == "error"
    assert anthropic["error"] == {"type": "invalid_request_error", "message": block.message}
