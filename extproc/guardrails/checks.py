"""Running a request's or an answer's guardrails: what each rule found, and what the client gets.

Rules run in the order block, flag, mask, whatever their order in the YAML: a block or a flag judges the text
as the client wrote it, before any mask changed it. The first block ends the checks. What a decision records is
rule names and counts, never what matched: it goes to logs and metrics.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from extproc.guardrails.masking import Masker
from extproc.guardrails.matches import Match
from extproc.guardrails.patterns import GuardrailTimeoutError
from extproc.guardrails.plugins import PluginFailedError, PluginText, run_plugin
from extproc.guardrails.rules import PluginLoader, Rule, build_rule
from extproc.guardrails.slots import TextSlot, request_slots, response_slots
from extproc.guardrails.stream import DEFAULT_WINDOW, StreamGuard
from extproc.guardrails.tokens import estimate_tokens
from switchyard.config.guardrails import Guardrail as GuardrailConfig
from switchyard.config.guardrails import GuardrailAction, MaxInputTokensGuardrail, OnGuardrailError, PluginGuardrail
from switchyard.contract import WireApi

_ORDER = {GuardrailAction.BLOCK: 0, GuardrailAction.FLAG: 1, GuardrailAction.MASK: 2}
_WHAT = {
    "pii": "personal data",
    "secrets": "a credential",
    "regex": "text the route does not allow",
    "terms": "a term the route does not allow",
    "max_input_tokens": "more input than the route allows",
    "json_schema": "text that does not match the expected JSON schema",
    "plugin": "content the plugin refused",
}


@dataclass(frozen=True)
class Block:
    rule: str
    check: str
    failed: bool = False  # the check itself failed or overran (on_error: block), rather than found something
    where: str = "request"  # or "answer"

    @property
    def message(self) -> str:
        """For the client's 400: the rule, never the matched text."""
        if self.failed:
            return f"blocked by guardrail {self.rule!r}: the check could not complete in time"
        return (
            f"blocked by guardrail {self.rule!r}: the {self.where} contains {_WHAT.get(self.check, 'refused content')}"
        )


@dataclass(frozen=True)
class RuleEvent:
    rule: str
    check: str
    action: str  # mask, block, flag, or error (a check that failed open)
    count: int


@dataclass
class Decision:
    block: Block | None = None
    events: list[RuleEvent] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(event.action == GuardrailAction.MASK for event in self.events)


class GuardrailSet:
    """The rules of one (client, route), built once per config and shared by its requests."""

    def __init__(self, configs: Sequence[GuardrailConfig], load: PluginLoader | None = None) -> None:
        ordered = sorted(configs, key=lambda config: _ORDER[config.action])
        self.rules = [build_rule(config, load) if load else build_rule(config) for config in ordered]

    async def check_request(self, api: WireApi, body: dict[str, Any], masker: Masker) -> Decision:
        """Checks `body` (the client's request) and masks it in place."""
        rules = [rule for rule in self.rules if rule.stage.on_request]
        return await self._check(rules, request_slots(api, body), masker, "request")

    async def check_response(self, api: WireApi, body: dict[str, Any], masker: Masker) -> Decision:
        """Checks a whole answer in the client's API and masks it in place."""
        rules = [rule for rule in self.rules if rule.stage.on_response]
        return await self._check(rules, response_slots(api, body), masker, "answer")

    def stream(self, masker: Masker, window: int = DEFAULT_WINDOW) -> StreamGuard:
        """The span rules of a streamed answer; `json_schema` judges the whole text at the end (`check_text`)."""
        return StreamGuard(self.rules, masker, window)

    def check_answer_text(self, text: str) -> Decision:
        """The `json_schema` rules on a whole answer's text (a stream's, once it ended)."""
        decision = Decision()
        for rule in self.rules:
            if rule.validator is not None and not _valid_json(rule.validator, text) and _record(decision, rule, 1):
                break
        return decision

    async def _check(self, rules: Sequence[Rule], slots: list[TextSlot], masker: Masker, where: str) -> Decision:
        decision = Decision()
        for rule in rules:
            if isinstance(rule.config, MaxInputTokensGuardrail):
                count = int(estimate_tokens(slot.text for slot in slots) > rule.config.limit)
            elif rule.validator is not None:
                answer = "".join(slot.text for slot in slots if slot.role == "assistant")
                count = int(not _valid_json(rule.validator, answer))
            elif rule.detector is not None:
                try:
                    count = _apply_detector(rule, slots, masker)
                except GuardrailTimeoutError:
                    decision.block = Block(rule.name, rule.check, failed=True, where=where)
                    break
            else:
                try:
                    count = await _apply_plugin(rule, slots, masker)
                except PluginFailedError:
                    assert isinstance(rule.config, PluginGuardrail)
                    if rule.config.on_error is OnGuardrailError.BLOCK:
                        decision.block = Block(rule.name, rule.check, failed=True, where=where)
                        break
                    decision.events.append(RuleEvent(rule.name, rule.check, "error", 1))
                    continue
            if _record(decision, rule, count, where):
                break
        return decision


def _record(decision: Decision, rule: Rule, count: int, where: str = "answer") -> bool:
    """Notes what `rule` did; True when it blocked (nothing more is checked)."""
    if not count:
        return False
    decision.events.append(RuleEvent(rule.name, rule.check, str(rule.action), count))
    if rule.action is GuardrailAction.BLOCK:
        decision.block = Block(rule.name, rule.check, where=where)
        return True
    return False


def _apply_detector(rule: Rule, slots: Iterable[TextSlot], masker: Masker) -> int:
    assert rule.detector is not None
    count = 0
    for slot in slots:
        matches = rule.detector.find(slot.text)
        if not matches:
            continue
        count += len(matches)
        if rule.action is GuardrailAction.BLOCK:
            return count  # no need to look further
        if rule.action is GuardrailAction.MASK:
            slot.replace(masker.mask(slot.text, matches))
    return count


async def _apply_plugin(rule: Rule, slots: list[TextSlot], masker: Masker) -> int:
    assert rule.plugin is not None and isinstance(rule.config, PluginGuardrail)
    texts = [PluginText(slot.text, slot.role) for slot in slots]
    findings = await run_plugin(rule.plugin, texts, rule.config.timeout)
    if rule.action is GuardrailAction.MASK:
        spans: dict[int, list[Match]] = {}
        for finding in findings:
            end = len(slots[finding.index].text) if finding.end is None else finding.end
            spans.setdefault(finding.index, []).append(Match(finding.start, end, finding.kind))
        for index, matches in spans.items():
            slots[index].replace(masker.mask(slots[index].text, matches))
    return len(findings)


def _valid_json(validator: Any, text: str) -> bool:
    try:
        document = json.loads(text)
    except ValueError:
        return False
    return bool(validator.is_valid(document))
