"""A team's own patterns and term lists.

Their regular expressions are written by operators, not by us, so nothing bounds their backtracking: they run
under the `regex` package with a timeout, and one that overruns raises `GuardrailTimeoutError` (the request is
refused rather than left hanging). Terms are escaped and matched as whole words.
"""

from __future__ import annotations

import time

import regex

from extproc.guardrails.matches import Match

# Time one team pattern may spend on one request's texts together: far above what a sane pattern needs on a
# large prompt, far below a client's patience.
PATTERN_BUDGET = 0.25


class GuardrailTimeoutError(Exception):
    """A check ran out of its time budget: the caller decides whether that blocks or passes."""


class PatternDetector:
    def __init__(self, pattern: str, *, ignore_case: bool, kind: str = "MATCH", budget: float = PATTERN_BUDGET) -> None:
        flags = regex.VERSION0 | (regex.IGNORECASE if ignore_case else 0)
        self._pattern = regex.compile(pattern, flags)
        self._kind = kind
        self._budget = budget

    def find(self, text: str) -> list[Match]:
        deadline = time.monotonic() + self._budget
        found: list[Match] = []
        try:
            for m in self._pattern.finditer(text, timeout=self._budget):
                if m.end() > m.start():
                    found.append(Match(m.start(), m.end(), self._kind))
                if time.monotonic() > deadline:
                    raise GuardrailTimeoutError(f"pattern ran over its {self._budget}s budget")
        except TimeoutError:
            raise GuardrailTimeoutError(f"pattern ran over its {self._budget}s budget") from None
        return found


def terms_pattern(terms: tuple[str, ...]) -> str:
    """Whole words or phrases; any run of spaces in a phrase matches any run of whitespace in the text."""
    alternatives = (r"\s+".join(regex.escape(word) for word in term.split()) for term in terms)
    # longest first, so `credit card number` wins over `credit card` where both are listed
    ordered = sorted(alternatives, key=len, reverse=True)
    return r"(?<!\w)(?:" + "|".join(ordered) + r")(?!\w)"


class TermsDetector(PatternDetector):
    def __init__(self, terms: tuple[str, ...], *, ignore_case: bool) -> None:
        super().__init__(terms_pattern(terms), ignore_case=ignore_case, kind="TERM")
