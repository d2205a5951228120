"""What the translation needs beyond the YAML: the facts that change while the gateway runs.

Kept as one immutable value so the translation stays a pure function of (config, live state): the control
plane gathers health verdicts and latency averages, and a snapshot records exactly which of
them it was built from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from controlplane.strategies import LIVE_STRATEGIES, Placement, Signals, placements
from controlplane.target_keys import target_key
from switchyard.config import Config, Route


@dataclass(frozen=True)
class LiveState:
    # target keys out of service (rate limited or ejected): marked unhealthy, tried only in panic
    out_of_service: frozenset[str] = frozenset()
    # target key → warmed-up latency average in seconds
    latency_s: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    # client name → refused until (epoch seconds): over a token limit or budget (issue 14, usage accounting)
    refused_clients: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    # gateway nodes this control plane knows to be live: each enforces 1/nodes of a client's request rate
    nodes: int = 1

    def signals(self, route: Route) -> Signals:
        return Signals(latency_s=tuple(self.latency_s.get(target_key(route, t)) for t in route.targets))

    def placements(self, route: Route) -> tuple[Placement, ...]:
        return placements(route, self.signals(route))

    def steering(self, config: Config) -> tuple[object, ...]:
        """Everything in this state that changes the translation's output. Latency moves on every attempt,
        weights only when the ranking does: comparing this, not the state, avoids rebuilding for nothing."""
        live_routes = tuple(self.placements(r) for r in config.routes if r.strategy in LIVE_STRATEGIES)
        return (self.out_of_service, live_routes, *self.client_inputs(config))

    def client_inputs(self, config: Config) -> tuple[object, ...]:
        """All of this state the routes' client table and request limits read (clients.py): refusals matter only
        with clients, the node count only with request limits to divide."""
        if not config.clients:
            return ()
        refused = tuple(sorted((c, u) for c, u in self.refused_clients.items() if c in config.clients))
        limited = any(c.limits.requests_per_minute for c in config.clients.values())
        return (refused, self.nodes if limited else 1)


NO_LIVE_STATE = LiveState()
