"""How Switchyard scales with the size of its config: Envoy's memory and start time, and the control plane's CPU
for a first translation, a health push and a reload that edits one route.

`python -m bench.large_configs 100 300 600`: configs of N routes of two targets each. Envoy runs on the
translated resources (inline, as static resources; 2 workers, loopback only, no traffic), the control plane's
figures are CPU time in this process. Compare only within one run: this is a shared machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import httpx

from bench.envoy_costs import static_bootstrap
from bench.run import RESULTS, _rss_kb
from controlplane.live_state import NO_LIVE_STATE
from controlplane.snapshot import snapshot_of
from controlplane.translate import DEFAULT_SETTINGS, translate
from switchyard.config import Config, load_config_text
from switchyard.supervisor.processes import envoy_binary, free_port

WORK = RESULTS / "large-configs"


def config_text(routes: int, port: int, suffix: str = "") -> str:
    entries = "".join(
        f"  - model: m{i}{suffix}\n    targets:\n      - {{name: primary, provider: p, model: a}}\n"
        f"      - {{name: backup, provider: p, model: b}}\n"
        for i in range(routes)
    )
    return (
        f"listen: 127.0.0.1:{port}\n"
        "providers:\n  p: {kind: openai, base_url: 'http://127.0.0.1:9', api_key: sk-large-configs}\n"
        f"routes:\n{entries}"
    )


def _cpu_ms(action: Callable[[], object]) -> float:
    started = time.process_time()
    action()
    return (time.process_time() - started) * 1000


@dataclass(frozen=True)
class PlaneCosts:
    """CPU ms: the first translation, pushes after one target goes out (min, max), reloads that edit one route."""

    first_ms: float
    push_ms: tuple[float, float]
    edit_ms: tuple[float, float]


def control_plane(config: Config, text: str, routes: int) -> PlaneCosts:
    first = _cpu_ms(lambda: translate(config))
    resources = translate(config)
    base = snapshot_of(config)
    keys = [
        c.load_assignment.endpoints[0].lb_endpoints[0].metadata.filter_metadata["switchyard"].fields["key"].string_value
        for c in resources.clusters[:5]
    ]
    lives = [replace(NO_LIVE_STATE, out_of_service=frozenset({key})) for key in keys]
    pushes = [_cpu_ms(partial(snapshot_of, config, live=live, config_version=base.version)) for live in lives]
    edited = [
        load_config_text(text.replace(f"m{routes - 1}\n", f"m{routes - 1}-edit{n}\n"), source="edited")
        for n in range(3)
    ]
    edits = [_cpu_ms(partial(snapshot_of, one)) for one in edited]
    return PlaneCosts(first, (min(pushes), max(pushes)), (min(edits), max(edits)))


def envoy(config: Config, port: int, routes: int) -> dict[str, float]:
    """Envoy's RSS and the seconds until its listener answers, on the translated resources."""
    sink = f"127.0.0.1:{free_port()}"  # nothing listens: no traffic, no logs are sent
    bootstrap = static_bootstrap(translate(config, DEFAULT_SETTINGS), "large-configs", sink)
    path = WORK / f"envoy-{routes}.json"
    path.write_text(json.dumps(bootstrap))
    argv = [envoy_binary(), "-c", str(path), "--concurrency", "2", "--disable-hot-restart", "-l", "error"]
    with open(WORK / f"envoy-{routes}.log", "w") as log:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
    started = time.monotonic()
    try:
        while process.poll() is None and time.monotonic() - started < 120:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        ready = time.monotonic() - started
        if process.poll() is not None:
            raise RuntimeError(f"Envoy exited: see {WORK / f'envoy-{routes}.log'}")
        time.sleep(1)  # what its workers still build
        rss_kb = _rss_kb(process.pid)
        if rss_kb is None:
            raise RuntimeError(f"no VmRSS for Envoy ({process.pid})")
    finally:
        process.terminate()
        process.wait()
    return {"ready_s": ready, "rss_mb": rss_kb / 1024, "bootstrap_mb": path.stat().st_size / 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.large_configs", description=__doc__.split("\n\n")[0])
    parser.add_argument("routes", nargs="*", type=int, default=[100, 300, 600], help="config sizes, in routes")
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    for routes in args.routes:
        port = free_port()
        text = config_text(routes, port)
        config = load_config_text(text, source=f"{routes} routes")
        plane = control_plane(config, text, routes)
        node = envoy(config, port, routes)
        (push_low, push_high), (edit_low, edit_high) = plane.push_ms, plane.edit_ms
        print(
            f"{routes} routes: Envoy {node['rss_mb']:.0f} MB, ready after {node['ready_s']:.1f} s "
            f"(resources {node['bootstrap_mb']:.1f} MB); control plane: first translation {plane.first_ms:.0f} ms, "
            f"push after one target out {push_low:.0f}-{push_high:.0f} ms, "
            f"reload editing one route {edit_low:.0f}-{edit_high:.0f} ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
