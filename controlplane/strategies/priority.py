"""`priority`: targets are tried in list order (or by explicit `priority:`); weights split a shared level."""

from __future__ import annotations

from controlplane.strategies.base import Placement, Signals, explicit_or
from switchyard.config import Route


def place(route: Route, signals: Signals) -> tuple[Placement, ...]:
    return tuple(Placement(explicit_or(route, i, i), t.weight) for i, t in enumerate(route.targets))
