"""The one interface every strategy implements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from switchyard.config import Route


@dataclass(frozen=True)
class Placement:
    priority: int  # config-level priority; the translation renumbers levels 0..N-1 for Envoy
    weight: int


@dataclass(frozen=True)
class Signals:
    """What live traffic says about a route's targets, in target order.

    Strategies stay pure functions of (route, signals): the control plane gathers the signals, the
    strategy only turns them into placements, so a placement can be unit-tested from numbers alone."""

    latency_s: tuple[float | None, ...] = ()  # a warmed-up average per target; None while unknown

    def latency_of(self, index: int) -> float | None:
        return self.latency_s[index] if index < len(self.latency_s) else None


NO_SIGNALS = Signals()

PlacementStrategy = Callable[[Route, Signals], tuple[Placement, ...]]


def explicit_or(route: Route, index: int, default: int) -> int:
    """A target's own `priority:` always wins over what the strategy would choose."""
    explicit = route.targets[index].priority
    return default if explicit is None else explicit
