"""Routing strategies: one module per strategy, each placing a route's targets as (priority, weight).

Envoy does the routing; a strategy only decides where each target sits: its priority level (lower levels
serve first; higher ones are the fallbacks) and its weight within the level. Keeping that decision in one
small pure function per strategy lets new strategies come without touching the translation.
"""

from __future__ import annotations

from collections.abc import Mapping

from controlplane.strategies import least_latency, lowest_cost, priority, round_robin, weighted
from controlplane.strategies.base import NO_SIGNALS, Placement, PlacementStrategy, Signals
from switchyard.config import Route, Strategy

STRATEGIES: Mapping[Strategy, PlacementStrategy] = {
    Strategy.PRIORITY: priority.place,
    Strategy.WEIGHTED: weighted.place,
    Strategy.ROUND_ROBIN: round_robin.place,
    Strategy.LOWEST_COST: lowest_cost.place,
    Strategy.LEAST_LATENCY: least_latency.place,
}

# Strategies whose placements follow live traffic; the others depend on the YAML alone.
LIVE_STRATEGIES = frozenset({Strategy.LEAST_LATENCY})


def placements(route: Route, signals: Signals = NO_SIGNALS) -> tuple[Placement, ...]:
    """One placement per target, in the route's target order."""
    return STRATEGIES[route.strategy](route, signals)


__all__ = ["LIVE_STRATEGIES", "NO_SIGNALS", "STRATEGIES", "Placement", "PlacementStrategy", "Signals", "placements"]
