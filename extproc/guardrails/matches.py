"""What a detector reports: where in a text something was found and what kind of thing it is, never the text.

Every check that finds spans (personal data, secrets, a team's regex or terms, a plugin) reports `Match`es, so
masking, blocking and flagging work the same way whoever found them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, order=True)
class Match:
    start: int
    end: int
    # The placeholder's type, in capitals (EMAIL, CARD, AWS_SECRET_KEY): what a masked text and a block say.
    kind: str


class Detector(Protocol):
    """Finds spans in one text. Pure and safe to share between requests."""

    def find(self, text: str) -> list[Match]: ...


def without_overlaps(matches: Iterable[Match]) -> list[Match]:
    """The matches to act on, in text order: where two overlap, the one starting first (then the longer) wins,
    so a card number is not also masked as a phone number inside it."""
    kept: list[Match] = []
    for match in sorted(matches, key=lambda m: (m.start, -(m.end - m.start))):
        if kept and match.start < kept[-1].end:
            continue
        kept.append(match)
    return kept
