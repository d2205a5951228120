"""What each ext_proc message costs, on both sides, for the variants whose attempts go through the ext_proc.

A translated attempt costs far more than a same-API one, and the translation itself is a small part of it: most
is per gRPC stream and per message. So `make bench` counts, around each measurement, for the gateway under test:
- Envoy: the ext_proc messages it sent (its `ext_proc.stream_msgs_sent` stats) and its own CPU;
- each ext_proc (`SWITCHYARD_EXTPROC_COSTS`, extproc/message_costs.py): per message kind, the messages it
  answered and the CPU and wall time of its own code on them, and its whole process CPU. The rest of the process
  CPU is gRPC's and asyncio's: shown per message, and per stream.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from switchyard.supervisor.processes import wait_until

ENV = "SWITCHYARD_EXTPROC_COSTS"  # extproc/message_costs.py reads it (the bench imports no ext_proc code)
TICKS = os.sysconf("SC_CLK_TCK")


def costs_dir(work: Path, gateway: str) -> Path:
    return work / f"{gateway}-costs"


def admin_socket(work: Path, gateway: str) -> Path:
    return work / f"{gateway}-sockets" / "envoy-admin.sock"


@dataclass(frozen=True)
class Snapshot:
    envoy_cpu_s: float
    envoy_messages: int
    extprocs: dict[int, dict[str, Any]]


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def _envoy_messages(admin: Path) -> int:
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(admin)), timeout=5) as client:
        # the translating filters' ext_proc.stream_msgs_sent, and the guard filter's ext_proc.guardrails.*
        text = client.get("http://envoy/stats", params={"filter": r"ext_proc\.(\w+\.)?stream_msgs_sent$"}).text
    return sum(int(line.rsplit(":", 1)[1]) for line in text.splitlines() if ":" in line)


def _extproc_report(directory: Path, pid: int) -> dict[str, Any]:
    """Asks the ext_proc for its counts (SIGUSR1) and waits for the file it writes."""
    asked = time.time()
    os.kill(pid, signal.SIGUSR1)
    path = directory / f"{pid}.json"
    found: dict[str, Any] = {}

    def written() -> bool:
        try:
            found.update(json.loads(path.read_text()))
        except (OSError, ValueError):
            return False
        return bool(found.get("written_at", 0) >= asked)

    if not wait_until(written, 5, 0.01):
        raise RuntimeError(f"ext_proc {pid} wrote no message costs to {path}")
    return found


def snapshot(work: Path, gateway: str, pids: list[int]) -> Snapshot:
    envoys = [p for p in pids if Path(next(iter(_cmdline(p)), "")).name == "envoy"]
    extprocs = [p for p in pids if "extproc" in _cmdline(p)]
    directory = costs_dir(work, gateway)
    return Snapshot(
        envoy_cpu_s=sum(_cpu_s(p) for p in envoys),
        envoy_messages=_envoy_messages(admin_socket(work, gateway)),
        extprocs={p: _extproc_report(directory, p) for p in extprocs},
    )


def per_request(before: Snapshot, after: Snapshot, requests: int) -> dict[str, Any]:
    """Messages per request by kind, microseconds per message, for one measurement."""
    n = max(requests, 1)
    kinds: dict[str, dict[str, float]] = {}
    process_cpu = handler_cpu = streams = messages = 0.0
    for pid, end in after.extprocs.items():
        start = before.extprocs.get(pid, {"process_cpu_s": end["process_cpu_s"], "streams": 0, "kinds": {}})
        process_cpu += end["process_cpu_s"] - start["process_cpu_s"]
        streams += end["streams"] - start["streams"]
        for kind, cost in end["kinds"].items():
            was = start["kinds"].get(kind, {"messages": 0, "cpu_s": 0.0, "wall_s": 0.0})
            total = kinds.setdefault(kind, {"messages": 0, "cpu_s": 0.0, "wall_s": 0.0})
            for key in total:
                total[key] += cost[key] - was[key]
    for cost in kinds.values():
        handler_cpu += cost["cpu_s"]
        messages += cost["messages"]
    envoy_messages = after.envoy_messages - before.envoy_messages
    return {
        "envoy_messages_per_request": envoy_messages / n,
        "envoy_cpu_per_request_us": (after.envoy_cpu_s - before.envoy_cpu_s) / n * 1e6,
        "extproc_streams_per_request": streams / n,
        "extproc_cpu_per_request_us": process_cpu / n * 1e6,
        "kinds": {
            kind: {
                "per_request": cost["messages"] / n,
                "cpu_us": cost["cpu_s"] / max(cost["messages"], 1) * 1e6,
                "wall_us": cost["wall_s"] / max(cost["messages"], 1) * 1e6,
            }
            for kind, cost in sorted(kinds.items())
            if cost["messages"] > 0  # kinds other traffic on the same ext_proc sent before (variant G's)
        },
        # what the process spent outside its own code: gRPC and asyncio, per message and per stream
        "grpc_cpu_per_message_us": (process_cpu - handler_cpu) / max(messages, 1) * 1e6,
        "grpc_cpu_per_stream_us": (process_cpu - handler_cpu) / max(streams, 1) * 1e6,
    }


def print_report(variants: dict[str, Any], measurement: str, same_api: str = "C") -> None:
    """The per-message table of the variants that have one, for `measurement` (e.g. throughput_c16)."""
    rows = {k: v[measurement]["extproc_messages"] for k, v in variants.items() if "extproc_messages" in v[measurement]}
    if not rows:
        return
    base = variants.get(same_api, {}).get(measurement, {}).get("extproc_messages")
    print(f"\next_proc messages at {measurement.rsplit('c', 1)[1]} connections (per request; us = microseconds):")
    for key, m in rows.items():
        if not m["envoy_messages_per_request"]:
            print(f"  {key}: no ext_proc messages; Envoy CPU {m['envoy_cpu_per_request_us']:.0f} us")
            continue
        extra = ""
        if base is not None and key != same_api and m["envoy_messages_per_request"]:
            added = m["envoy_cpu_per_request_us"] - base["envoy_cpu_per_request_us"]
            per_message = added / m["envoy_messages_per_request"]
            extra = f", Envoy CPU over {same_api} {added:.0f} us ({per_message:.0f} per msg)"
        print(
            f"  {key}: Envoy sent {m['envoy_messages_per_request']:.2f} msgs, Envoy CPU "
            f"{m['envoy_cpu_per_request_us']:.0f} us{extra}; ext_proc CPU {m['extproc_cpu_per_request_us']:.0f} us "
            f"in {m['extproc_streams_per_request']:.2f} streams"
        )
        for kind, cost in m["kinds"].items():
            print(
                f"      {kind:<18}{cost['per_request']:>5.2f}/req  own code {cost['cpu_us']:>6.0f} us CPU "
                f"{cost['wall_us']:>6.0f} us wall per msg"
            )
        print(
            f"      gRPC+asyncio     {m['grpc_cpu_per_message_us']:>6.0f} us CPU per msg, "
            f"{m['grpc_cpu_per_stream_us']:.0f} us per stream"
        )
