"""`lowest_cost`: the cheapest target serves; the next cheapest is its fallback, and so on.

Targets are ranked by a blended price per 1M tokens, assuming three input tokens per output token (typical of
chat); targets with the same blended price share a level with equal weight.
"""

from __future__ import annotations

from controlplane.strategies.base import Placement, Signals
from switchyard.config import Route, Target


def blended_price(target: Target) -> float:
    assert target.price is not None, "validation requires a price on every lowest_cost target"
    return target.price.blended


def place(route: Route, signals: Signals) -> tuple[Placement, ...]:
    levels = sorted({blended_price(t) for t in route.targets})
    return tuple(Placement(levels.index(blended_price(t)), 1) for t in route.targets)
