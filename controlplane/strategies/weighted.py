"""`weighted`: one level shared by weight (A/B tests); every target is the others' fallback."""

from __future__ import annotations

from controlplane.strategies.base import Placement, Signals, explicit_or
from switchyard.config import Route


def place(route: Route, signals: Signals) -> tuple[Placement, ...]:
    return tuple(Placement(explicit_or(route, i, 0), t.weight) for i, t in enumerate(route.targets))
