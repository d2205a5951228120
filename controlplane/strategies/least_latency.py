"""`least_latency`: the fastest target of a level takes most of its traffic; the others keep a small
exploration share, so a target that recovers is measured, and wins its traffic back.

Latency is each target's warmed-up moving average (see telemetry/target_stats.py). Targets within 10% of the
fastest share the lead: near-equal targets would otherwise trade places on noise and move all traffic back
and forth at every update. A target not yet measured (new, or only failing) is explored, never trusted;
while no target of a level is measured, the level splits evenly so that all of them get measured.
"""

from __future__ import annotations

from controlplane.strategies.base import Placement, Signals, explicit_or
from switchyard.config import Route

TOTAL_WEIGHT = 1000
LEAD_TOLERANCE = 1.10


def place(route: Route, signals: Signals) -> tuple[Placement, ...]:
    levels = [explicit_or(route, i, 0) for i in range(len(route.targets))]
    weights = [1] * len(route.targets)
    for level in set(levels):
        members = [i for i, lvl in enumerate(levels) if lvl == level]
        for index, weight in _split(members, signals, route.latency.exploration).items():
            weights[index] = weight
    return tuple(Placement(level, weight) for level, weight in zip(levels, weights, strict=True))


def _split(members: list[int], signals: Signals, exploration: float) -> dict[int, int]:
    measured = {i: latency for i in members if (latency := signals.latency_of(i)) is not None}
    if not measured:
        return dict.fromkeys(members, 1)
    fastest = min(measured.values())
    leaders = [i for i, latency in measured.items() if latency <= fastest * LEAD_TOLERANCE]
    explored = [i for i in members if i not in leaders]
    if not explored:
        return dict.fromkeys(members, 1)
    # Envoy weights are integers of at least 1: with no exploration, the others keep 1 in ~1000.
    lead_weight = max(1, round(TOTAL_WEIGHT * (1 - exploration) / len(leaders)))
    explore_weight = max(1, round(TOTAL_WEIGHT * exploration / len(explored)))
    return {i: lead_weight if i in leaders else explore_weight for i in members}
