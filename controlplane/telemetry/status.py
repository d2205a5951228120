"""The gateway's state as one JSON document: every route and target, with health and why (pure)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from controlplane.health import TargetHealth, describe_status
from controlplane.nodes import LoggingNode, NodeRecord, node_state
from controlplane.snapshot import Snapshot
from controlplane.target_keys import target_key
from controlplane.telemetry.target_stats import TargetStats, TargetStatsRecorder
from switchyard.addresses import TcpAddress


@dataclass(frozen=True)
class ProcessStart:
    """When this control plane started, and whether an earlier run left its state dir behind: after a restart
    the health and latency shown are rebuilt from traffic since `at`, not carried over."""

    at: float
    restarted: bool


@dataclass
class ReloadResult:
    ok: bool
    at: float
    reason: str
    error: str = ""


def target_state(stats: TargetStats, health: TargetHealth, now: float) -> tuple[str, str]:
    """(state, why), as an operator asks it: is it taking traffic, and if not, until when and why."""
    out = health.out_at(now)
    if out is not None:
        return out.state, f"{out.why}; back in {out.until - now:.0f}s"
    if stats.requests == 0:
        return "no_traffic", "no attempt seen yet"
    if health.consecutive_failures:
        last = describe_status(stats.last_status)
        return "failing", f"{health.consecutive_failures} failures in a row (last: {last})"
    return "healthy", f"last status {describe_status(stats.last_status)}"


def build_status(
    snapshot: Snapshot | None,
    recorder: TargetStatsRecorder,
    reload: ReloadResult | None,
    now: float | None = None,
    start: ProcessStart | None = None,
    nodes: Sequence[NodeRecord] = (),
    attempts_by_node: Mapping[str, int] | None = None,
    logging_nodes: Mapping[str, LoggingNode] | None = None,
    telemetry: Mapping[str, int] | None = None,
    guardrails: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    now = time.time() if now is None else now
    document: dict[str, Any] = {
        # what this replica received but could not count (past its capacity) or could not store
        "telemetry": None if telemetry is None else dict(telemetry),
        # client requests in which each guardrail acted, by action and stage (telemetry/guardrail_counts.py)
        "guardrails": [dict(entry) for entry in guardrails],
        "control_plane": None
        if start is None
        else {"started_at": start.at, "uptime_s": round(now - start.at, 1), "restarted": start.restarted},
        "config": {
            "version": snapshot.config_version if snapshot else None,
            # what nodes are sent: the config version, or CONFIG.LIVE while health or weights change resources
            "served_version": snapshot.version if snapshot else None,
            "last_reload": None if reload is None else vars(reload),
        },
        "nodes": node_entries(nodes, snapshot, now, attempts_by_node, logging_nodes),
        "routes": [],
    }
    if snapshot is None:
        return document
    for route in snapshot.config.routes:
        targets: list[dict[str, Any]] = []
        fallbacks = 0
        for target, placement in zip(route.targets, snapshot.live.placements(route), strict=True):
            key = target_key(route, target)
            stats = recorder.get(key)
            fallbacks += stats.fallbacks
            state, why = target_state(stats, recorder.health.get(key), now)
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
                    # attempts whose clients hung up before the target answered: neither requests nor failures
                    "abandoned": stats.abandoned,
                    "latency_ms": None if stats.latency_s is None else round(stats.latency_s * 1000, 3),
                    "output_tokens": stats.output_tokens,
                    "latency_histogram": stats.latency_histogram.as_dict(),
                    # translated streams only: where the ext_proc sees the tokens
                    "time_to_first_token_histogram": stats.ttft_histogram.as_dict(),
                    "time_per_output_token_histogram": stats.time_per_output_token_histogram.as_dict(),
                    "by_status": {str(code): count for code, count in sorted(stats.by_status.items())},
                }
            )
        document["routes"].append(
            {
                "model": route.model,
                "strategy": route.strategy.value,
                "latency_measure": route.latency.measure.value,
                "fallbacks": fallbacks,
                "targets": targets,
            }
        )
    return document


def node_entries(
    nodes: Sequence[NodeRecord],
    snapshot: Snapshot | None,
    now: float,
    attempts_by_node: Mapping[str, int] | None = None,
    logging_nodes: Mapping[str, LoggingNode] | None = None,
) -> list[dict[str, Any]]:
    """The nodes configured here (ADS), then the ones only streaming their attempts here (state `elsewhere`:
    their ADS stream is on another control-plane replica). Two live nodes under one name are both listed,
    as `conflict`: their attempts are counted together, so names must be unique."""
    live_names = Counter(node.name for node in nodes if node.live)
    logging = logging_nodes or {}
    entries = [
        node_entry(
            node,
            snapshot,
            now,
            attempts_by_node,
            live_names[node.name],
            None if logging_nodes is None else node.name in logging,
        )
        for node in nodes
        # a gone record of a node that left for another replica gives way to its `elsewhere` entry below
        if node.live or node.name not in logging or live_names[node.name]
    ]
    for name, heard in sorted(logging.items()):
        if not live_names[name]:
            record = NodeRecord(name, heard.listen, heard.since, stream=0)
            entries.append(node_entry(record, snapshot, now, attempts_by_node, 0, True, elsewhere=True))
    return entries


def node_entry(
    node: NodeRecord,
    snapshot: Snapshot | None,
    now: float,
    attempts_by_node: Mapping[str, int] | None = None,
    live_with_name: int = 1,
    attempt_log: bool | None = None,
    elsewhere: bool = False,
) -> dict[str, Any]:
    """One gateway node (Envoy) as the status API shows it; `listen` is the YAML's unless the node has its own."""
    listen = node.listen
    if listen is None and snapshot is not None:
        listen = str(TcpAddress(snapshot.config.listen_host, snapshot.config.listen_port))
    version = node.applied_version
    conflict = node.live and live_with_name > 1
    why_conflict = f"{live_with_name} live nodes are named {node.name!r}: give each its own --name"
    state = "elsewhere" if elsewhere else node_state(node, None if snapshot is None else snapshot.version, conflict)
    return {
        "name": node.name,
        "listen": listen,
        "listen_from": "config" if node.listen is None else "node",
        "state": state,
        # the snapshot version it applied in full: CONFIG, or CONFIG.LIVE when health or weights changed it
        "version": version,
        "config_version": None if version is None else version.partition(".")[0],
        "current_version": None if snapshot is None else snapshot.version,
        "connected_since": node.connected_at,
        "connected_for_s": round(now - node.connected_at, 1),
        "gone_since": node.gone_at,
        "gone_for_s": None if node.gone_at is None else round(now - node.gone_at, 1),
        "rejected": node.rejected,
        "attempts": None if attempts_by_node is None else attempts_by_node.get(node.name, 0),
        "peer": node.peer,
        "conflict": why_conflict if conflict else "",
        # whether its attempt log streams to this control plane (opens with its first attempt); None: unknown
        "attempt_log": attempt_log,
    }
