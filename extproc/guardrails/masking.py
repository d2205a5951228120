"""Typed placeholders, the same one for the same value throughout one client request.

A model that reads `[EMAIL_1]` twice knows it is one person; two different placeholders for one address would
change what the prompt means. The mapping lives as long as one client request (request checks and the answer's
checks share it, so an address the answer repeats gets the placeholder the prompt had), and is never logged.
"""

from __future__ import annotations

from collections.abc import Iterable

from extproc.guardrails.matches import Match, without_overlaps

# Kinds whose spellings differ only in separators or case: one card written with and without spaces is one card.
_SEPARATORS = str.maketrans("", "", " -.()")


def _normalised(kind: str, value: str) -> str:
    if kind in ("CARD", "IBAN", "PHONE"):
        return value.translate(_SEPARATORS).upper()
    if kind == "EMAIL":
        return value.lower()
    return value


class Masker:
    def __init__(self) -> None:
        self._placeholders: dict[tuple[str, str], str] = {}
        self._counts: dict[str, int] = {}

    def placeholder(self, kind: str, value: str) -> str:
        key = (kind, _normalised(kind, value))
        if key not in self._placeholders:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            self._placeholders[key] = f"[{kind}_{self._counts[kind]}]"
        return self._placeholders[key]

    def mask(self, text: str, matches: Iterable[Match]) -> str:
        """`text` with every match replaced by its placeholder (overlapping matches: the first one wins)."""
        pieces: list[str] = []
        position = 0
        for match in without_overlaps(matches):
            pieces.append(text[position : match.start])
            pieces.append(self.placeholder(match.kind, text[match.start : match.end]))
            position = match.end
        pieces.append(text[position:])
        return "".join(pieces)

    def __repr__(self) -> str:
        return f"Masker({len(self._placeholders)} values)"  # never the values themselves
