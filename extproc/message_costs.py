"""What each kind of ext_proc message costs this process, for `make bench` (off unless asked for).

A translated attempt's cost is mostly gRPC's, per stream and per message, not translation: `make bench` shows how
much by setting `SWITCHYARD_EXTPROC_COSTS` to a directory. Each ext_proc then counts, per message kind, the
messages it answered and the CPU and wall time its own code spent on them (from the message's bytes to the
answer's, protobuf included; on the grpc.aio flavour from the parsed message to the answer built), and on SIGUSR1
writes them with its process CPU to `<dir>/<pid>.json`. Whatever the process spent beyond its own code is the
transport's: HTTP/2 and asyncio (or gRPC's).
"""

from __future__ import annotations

import json
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

ENV = "SWITCHYARD_EXTPROC_COSTS"


@dataclass
class KindCost:
    messages: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0


@dataclass
class MessageCosts:
    directory: Path
    kinds: dict[str, KindCost] = field(default_factory=dict)
    streams: int = 0

    def count(self, kind: str, cpu_started: float, wall_started: float) -> None:
        cost = self.kinds.setdefault(kind, KindCost())
        cost.messages += 1
        cost.cpu_s += time.thread_time() - cpu_started
        cost.wall_s += time.perf_counter() - wall_started

    def write(self) -> None:
        """`<dir>/<pid>.json`, replaced whole (a reader never sees half of it)."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        report = {
            "pid": os.getpid(),
            "written_at": time.time(),
            "process_cpu_s": usage.ru_utime + usage.ru_stime,
            "streams": self.streams,
            "kinds": {kind: vars(cost) for kind, cost in self.kinds.items()},
        }
        target = self.directory / f"{os.getpid()}.json"
        partial = target.with_suffix(".partial")
        partial.write_text(json.dumps(report))
        partial.replace(target)


def from_environment() -> MessageCosts | None:
    directory = os.environ.get(ENV)
    return MessageCosts(Path(directory)) if directory else None
