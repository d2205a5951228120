"""The one interface every strategy implements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from switchyard.config import Route


@dataclass(frozen=True)
class Placement:
    priority: int  # config-level priority; the translation renumbers levels 0..N-1 for Envoy
    weight: int


PlacementStrategy = Callable[[Route], tuple[Placement, ...]]


def explicit_or(route: Route, index: int, default: int) -> int:
    """A target's own `priority:` always wins over what the strategy would choose."""
    explicit = route.targets[index].priority
    return default if explicit is None else explicit
