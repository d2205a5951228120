"""`switchyard status`: the control plane's status document as a terminal table."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any


def render_status(document: dict[str, Any]) -> str:
    config = document["config"]
    reload = config.get("last_reload")
    head = f"config version {config['version']}"
    served = config.get("served_version")
    if served and served != config["version"]:
        head += f" (served as {served}: health or weights changed it)"
    if reload:
        head += (
            f"; last reload ({reload['reason']}): {'applied' if reload['ok'] else 'REJECTED, previous version kept'}"
        )
    lines = [head]
    if reload and not reload["ok"] and reload.get("error"):
        # The rejected file's problems, each with its file:line, as `switchyard validate` prints them.
        lines.extend(f"  {line}" for line in str(reload["error"]).splitlines())
    process = document.get("control_plane")
    if process and process["restarted"]:
        lines.append(
            f"control plane restarted {process['uptime_s']:.0f}s ago: health and latency are rebuilt from traffic "
            "since then (Envoy kept serving its last config)"
        )
    lines.extend(render_telemetry(document.get("telemetry") or {}))
    lines.extend(render_guardrails(document.get("guardrails") or []))
    lines.extend(render_nodes(document.get("nodes") or []))
    columns = ("target", "state", "prio", "weight", "requests", "failures", "fallbacks", "latency", "why")
    for route in document["routes"]:
        lines.append("")
        lines.append(f"{route['model']}  [{route['strategy']}]  fallbacks served: {route['fallbacks']}")
        rows = [columns]
        unit = "ms/token" if route.get("latency_measure") == "per_output_token" else "ms"
        for t in route["targets"]:
            latency = "-" if t["latency_ms"] is None else f"{t['latency_ms']:.1f}{unit}"
            rows.append(
                (t["name"], t["state"], str(t["priority"]), str(t["weight"]), str(t["requests"]),
                 str(t["failures"]), str(t["fallbacks"]), latency, t["why"])
            )  # fmt: skip
        lines.extend(_table(rows))
    return "\n".join(lines)


def render_guardrails(entries: list[dict[str, Any]]) -> list[str]:
    """One line per guardrail that acted: how many client requests, by action and stage."""
    return [
        f"guardrail {e['rule']} ({e['check']}): {e['action']} on {e['requests']} {e['stage']}"
        + ("s" if e["requests"] != 1 else "")
        for e in entries
    ]


def render_telemetry(telemetry: dict[str, Any]) -> list[str]:
    """What the control plane received but could not count: said, never silent (issue 21)."""
    parts = []
    if telemetry.get("answers_not_counted"):
        parts.append(
            f"{telemetry['answers_not_counted']} answers not counted (control plane over capacity: their usage "
            "and latency are missing; failures were still judged)"
        )
    if telemetry.get("usage_not_stored"):
        parts.append(f"{telemetry['usage_not_stored']} usage records not stored (the usage store fell behind)")
    return [f"telemetry: {part}" for part in parts]


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Aligned columns, two spaces in front; the last column is not padded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  " + "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in rows
    ]


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.0f}h ago"


def _node_state(node: dict[str, Any]) -> str:
    state = str(node["state"])
    if state == "gone" and node.get("gone_for_s") is not None:
        state = f"gone {_ago(node['gone_for_s'])}"
    elif state == "behind":
        state = f"behind (current: {node['current_version']})"
    elif state == "conflict":
        state = f"CONFLICT: {node['conflict']} (from {node.get('peer') or '?'})"
    elif state == "elsewhere":
        state = "elsewhere: configured by another control plane, its attempts reach this one"
    if node.get("rejected"):
        state += f"; rejected {node['rejected']}"
    return state


def render_nodes(nodes: list[dict[str, Any]]) -> list[str]:
    """The gateway nodes (Envoys) of the control plane: where each listens and which config it has."""
    if not nodes:
        return []
    rows: list[tuple[str, ...]] = [("node", "listen", "version", "attempts", "connected since", "state")]
    for node in nodes:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(node["connected_since"]))
        attempts = "-" if node.get("attempts") is None else str(node["attempts"])
        rows.append(
            (node["name"], node["listen"] or "-", node["version"] or "-", attempts,
             f"{since} ({_ago(node['connected_for_s'])})", _node_state(node))
        )  # fmt: skip
    return ["", f"nodes: {len(nodes)}", *_table(rows)]


def unreachable_api(api: str, error: OSError) -> str:
    """What to tell someone whose `status`/`usage` found no control plane: most often nothing is running, or it
    runs with another --api; the socket error's own words are kept last, for the other cases."""
    reason = getattr(error, "reason", error)  # urllib wraps the socket error
    if isinstance(error, urllib.error.HTTPError):
        what = f"HTTP {error.code} {error.reason} from whatever answers there"
    elif isinstance(reason, ConnectionRefusedError):
        what = "nothing answers there"
    elif isinstance(reason, TimeoutError):
        what = "it did not answer in time"
    else:
        what = str(reason)
    return (
        f"No Switchyard control plane at {api}: {what}.\n"
        "Start one with `switchyard up CONFIG` (or `make demo`), or point at the one running with --api HOST:PORT "
        "(the address its startup banner prints as Status)."
    )
