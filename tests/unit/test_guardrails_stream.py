"""Streamed answers checked as they pass: whatever the chunk boundaries, what the client reads is masked whole.

The cases split one answer at every position, or into single characters, since the network decides where
Envoy's chunks end, and join what the guard released: the client must read the same masked text every time.
"""

from __future__ import annotations

from typing import Any

import pytest

from extproc.guardrails.checks import GuardrailSet
from extproc.guardrails.masking import Masker
from extproc.guardrails.stream import StreamGuard
from switchyard.config.model import Route

ANSWER = "Call me on +44 20 7946 0958 or mail jane@example.com; card 4111 1111 1111 1111. Bye!"
MASKED = "Call me on [PHONE_1] or mail [EMAIL_1]; card [CARD_1]. Bye!"


def _rules(guardrails: list[dict[str, Any]]) -> GuardrailSet:
    route = Route.model_validate({"model": "m", "targets": [{"provider": "p", "model": "x"}], "guardrails": guardrails})
    return GuardrailSet(route.guardrails)


MASK_ON_ANSWERS = _rules([{"check": "pii", "stage": "response", "action": "mask"}])


def _stream(guard: StreamGuard, chunks: list[str]) -> str:
    released = [guard.feed(chunk).text for chunk in chunks]
    return "".join(released) + guard.finish().text


@pytest.mark.parametrize("split", range(1, len(ANSWER)))
def test_a_split_anywhere_is_masked_whole(split: int) -> None:
    guard = MASK_ON_ANSWERS.stream(Masker(), window=32)
    assert _stream(guard, [ANSWER[:split], ANSWER[split:]]) == MASKED


def test_one_character_at_a_time_is_masked_whole() -> None:
    assert _stream(MASK_ON_ANSWERS.stream(Masker(), window=32), list(ANSWER)) == MASKED


def test_the_window_bounds_what_is_held_back() -> None:
    guard = MASK_ON_ANSWERS.stream(Masker(), window=32)
    text = "plain words without anything to mask, " * 10
    released = "".join(guard.feed(text[i : i + 7]).text for i in range(0, len(text), 7))
    assert len(text) - len(released) <= 32  # the rest was sent as it came
    assert released + guard.finish().text == text


def test_memory_stays_bounded_on_an_endless_match() -> None:
    guard = _rules([{"check": "regex", "pattern": "x+", "stage": "response", "action": "mask"}]).stream(
        Masker(), window=16
    )
    held = 0
    for _ in range(100):
        released = guard.feed("x" * 10).text
        held = 0 if released else held + 10
        assert held <= 4 * 16 + 10  # the client keeps receiving text, however long the match goes on
        assert "x" not in released  # and what it receives is masked


def test_a_block_rule_stops_the_stream_before_the_match_is_sent() -> None:
    guard = _rules([{"check": "secrets", "stage": "response", "action": "block"}]).stream(Masker(), window=64)
    sent = guard.feed("Here is the key: AKIAIOSF").text
    step = guard.feed("ODNN7EXAMPLE and more text " * 4)
    assert step.blocked_by == "secrets"
    assert "AKIA" not in sent + step.text
    assert guard.feed("later").blocked_by == "secrets" and guard.finish().text == ""


def test_flag_rules_report_what_they_found_and_change_nothing() -> None:
    guard = _rules([{"check": "pii", "stage": "response", "action": "flag"}]).stream(Masker(), window=32)
    steps = [guard.feed(ANSWER[:20]), guard.feed(ANSWER[20:]), guard.finish()]
    assert "".join(step.text for step in steps) == ANSWER
    assert any("pii" in step.flagged for step in steps)


def test_placeholders_continue_the_requests() -> None:
    masker = Masker()
    masker.placeholder("EMAIL", "jane@example.com")  # the prompt had it
    masker.placeholder("EMAIL", "joe@example.com")
    guard = MASK_ON_ANSWERS.stream(masker, window=32)
    assert _stream(guard, ["to joe@exa", "mple.com"]) == "to [EMAIL_2]"
