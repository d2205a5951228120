"""Configuration problems carry the YAML path and line so an operator can jump straight to the fix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class ConfigProblem:
    line: int | None
    path: str
    message: str

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        at = f" {self.path}:" if self.path else ""
        return f"{where}:{at} {self.message}"


class ConfigError(Exception):
    """Raised with *all* problems found, not just the first, so one edit-validate cycle fixes them all."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = sorted(problems, key=lambda p: (p.line or 0, p.path, p.message))
        super().__init__(self.render())

    def render(self) -> str:
        count = len(self.problems)
        head = f"{self.source}: {count} problem{'s' if count != 1 else ''}"
        return "\n".join([head, *(f"  {p.render(self.source)}" for p in self.problems)])
