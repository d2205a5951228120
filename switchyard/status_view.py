"""`switchyard status`: the control plane's status document as a terminal table."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


def fetch_status(api: str, timeout: float = 5.0) -> dict[str, Any]:
    url = api if api.startswith("http") else f"http://{api}"
    with urllib.request.urlopen(f"{url.rstrip('/')}/status", timeout=timeout) as response:
        document: dict[str, Any] = json.load(response)
    return document


def render_status(document: dict[str, Any]) -> str:
    config = document["config"]
    reload = config.get("last_reload")
    head = f"config version {config['version']}"
    if reload:
        head += (
            f"; last reload ({reload['reason']}): {'applied' if reload['ok'] else 'REJECTED, previous version kept'}"
        )
    lines = [head]
    process = document.get("control_plane")
    if process and process["restarted"]:
        lines.append(
            f"control plane restarted {process['uptime_s']:.0f}s ago: health and latency are rebuilt from traffic "
            "since then (Envoy kept serving its last config)"
        )
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
        widths = [max(len(row[i]) for row in rows) for i in range(len(columns) - 1)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
            lines.append("  " + "  ".join(cells) + "  " + row[-1])
    return "\n".join(lines)
