"""Checking a streamed answer as it passes, with a bounded window across chunk boundaries.

A pure state machine, like the stream translators (`extproc/translators/base.py`): text deltas in, text that may
be sent now out. The last `window` characters are held back, since a match ending in the next delta could start
there: a phone number split over two chunks is masked whole. A match found across the window's edge holds the
text from its start. Memory stays bounded: past `4 * window` held characters (a match longer than any window
should allow) the oldest part is released, its matches masked as far as they reach. Matches longer than the
window (a private key's body, a team pattern without a bound) are therefore only masked in part in streams.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from extproc.guardrails.masking import Masker
from extproc.guardrails.matches import Match
from extproc.guardrails.patterns import GuardrailTimeoutError
from extproc.guardrails.rules import Rule
from switchyard.config.guardrails import GuardrailAction

DEFAULT_WINDOW = 256  # longer than any built-in match but a private key's body (an IBAN is at most 42 characters)
_CONTEXT = 16  # released characters kept for the patterns' look-behinds (a match must start at a word's start)


@dataclass
class StreamStep:
    text: str  # to send now (masked)
    flagged: list[str] = field(default_factory=list)  # rules that found something in it (flag, mask)
    blocked_by: str | None = None  # a block rule matched: send nothing more but an error


class StreamGuard:
    def __init__(self, rules: Sequence[Rule], masker: Masker, window: int = DEFAULT_WINDOW) -> None:
        self._rules = [rule for rule in rules if rule.detector is not None and rule.stage.on_response]
        self._masker = masker
        self._window = window
        self._pending = ""
        self._context = ""
        self._blocked: str | None = None

    def feed(self, delta: str) -> StreamStep:
        if self._blocked is not None:
            return StreamStep("", blocked_by=self._blocked)
        self._pending += delta
        return self._release(final=False)

    def finish(self) -> StreamStep:
        """The answer ended: everything held is checked and released."""
        if self._blocked is not None:
            return StreamStep("", blocked_by=self._blocked)
        return self._release(final=True)

    def _release(self, *, final: bool) -> StreamStep:
        text = self._pending
        found = self._find(text)
        if final:
            cut = len(text)
        else:
            cut = len(text) - self._window
            for _rule, match in sorted(found, key=lambda pair: pair[1].start, reverse=True):
                if match.start < cut < match.end:
                    cut = match.start  # hold a match across the edge whole
            if cut <= 0 and len(text) > 4 * self._window:
                cut = len(text) - self._window  # bounded memory: the oldest part goes, masked as far as it is found
            if cut <= 0:
                return StreamStep("")
        step = StreamStep("")
        to_mask: list[Match] = []
        for rule, match in found:
            if match.start >= cut:
                continue  # still held: judged when it is released
            if rule.action is GuardrailAction.BLOCK:
                self._blocked = rule.name
                self._pending = ""
                return StreamStep("", blocked_by=rule.name)
            if rule.name not in step.flagged:
                step.flagged.append(rule.name)
            if rule.action is GuardrailAction.MASK:
                to_mask.append(Match(match.start, min(match.end, cut), match.kind))
        step.text = self._masker.mask(text[:cut], to_mask)
        self._context = (self._context + text[:cut])[-_CONTEXT:]
        self._pending = text[cut:]
        return step

    def _find(self, text: str) -> list[tuple[Rule, Match]]:
        """Matches in the held text, seen with the released characters before it (look-behinds need them)."""
        scanned = self._context + text
        offset = len(self._context)
        found: list[tuple[Rule, Match]] = []
        for rule in self._rules:
            assert rule.detector is not None
            try:
                matches = rule.detector.find(scanned)
            except GuardrailTimeoutError:
                matches = [Match(offset, len(scanned), "TIMEOUT")] if rule.action is GuardrailAction.BLOCK else []
            for match in matches:
                if match.end > offset:
                    found.append((rule, Match(max(match.start, offset) - offset, match.end - offset, match.kind)))
        return found
