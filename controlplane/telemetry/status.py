"""The gateway's state as one JSON document: every route and target, with health and why (pure)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from controlplane.snapshot import Snapshot
from controlplane.strategies import placements
from controlplane.telemetry.recorder import Recorder, TargetStats
from controlplane.translate import target_key


@dataclass
class ReloadResult:
    ok: bool
    at: float
    reason: str
    error: str = ""


def target_state(stats: TargetStats, eject_after: int, now: float) -> tuple[str, str]:
    """(state, why). `failing` mirrors the threshold at which each Envoy ejects the target."""
    if stats.rate_limited_until is not None and stats.rate_limited_until > now:
        return "rate_limited", f"answered 429; Retry-After ends in {stats.rate_limited_until - now:.0f}s"
    if eject_after and stats.consecutive_failures >= eject_after:
        return "failing", f"{stats.consecutive_failures} failures in a row (last status {stats.last_status or 'none'})"
    if stats.requests == 0:
        return "no_traffic", "no attempt seen yet"
    return "healthy", f"last status {stats.last_status}"


def build_status(
    snapshot: Snapshot | None, recorder: Recorder, reload: ReloadResult | None, now: float | None = None
) -> dict[str, Any]:
    now = time.time() if now is None else now
    document: dict[str, Any] = {
        "config": {
            "version": snapshot.version if snapshot else None,
            "last_reload": None if reload is None else vars(reload),
        },
        "routes": [],
    }
    if snapshot is None:
        return document
    for route in snapshot.config.routes:
        targets: list[dict[str, Any]] = []
        fallbacks = 0
        for target, placement in zip(route.targets, placements(route), strict=True):
            stats = recorder.get(target_key(route, target))
            fallbacks += stats.fallbacks
            state, why = target_state(stats, route.health.consecutive_failures, now)
            targets.append(
                {
                    "name": target.display_name,
                    "provider": target.provider,
                    "model": target.model,
                    "priority": placement.priority,
                    "weight": placement.weight,
                    "state": state,
                    "why": why,
                    "requests": stats.requests,
                    "failures": stats.failures,
                    "fallbacks": stats.fallbacks,
                    "latency_ms": None if stats.latency_s is None else round(stats.latency_s * 1000, 2),
                    "by_status": {str(code): count for code, count in sorted(stats.by_status.items())},
                }
            )
        document["routes"].append(
            {
                "model": route.model,
                "strategy": route.strategy.value,
                "fallbacks": fallbacks,
                "targets": targets,
            }
        )
    return document
