"""`round_robin`: an equal share for every target of the serving level, whatever weights say."""

from __future__ import annotations

from controlplane.strategies.base import Placement, Signals, explicit_or
from switchyard.config import Route


def place(route: Route, signals: Signals) -> tuple[Placement, ...]:
    return tuple(Placement(explicit_or(route, i, 0), 1) for i in range(len(route.targets)))
