"""A large config is validated and translated off the control plane's event loop: while a reload builds it, the
loop keeps taking access logs, answering ADS and judging health (controlplane/server.py, ControlPlane._translate)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from controlplane.server import ControlPlane

ROUTES = 60


def _config(suffix: str) -> str:
    routes = "".join(
        f"  - model: m{i}{suffix}\n    targets:\n      - {{name: primary, provider: p, model: a}}\n"
        f"      - {{name: backup, provider: p, model: b}}\n"
        for i in range(ROUTES)
    )
    return (
        "listen: 127.0.0.1:18998\nproviders:\n  p: {kind: openai, base_url: 'http://127.0.0.1:9', api_key: sk-x}\n"
        + (f"routes:\n{routes}")
    )


async def _reload_while_ticking(path: Path) -> tuple[bool, float, float]:
    plane = ControlPlane(path)
    snapshot, text = await plane.initial_snapshot()
    await plane.apply(snapshot, text)
    path.write_text(_config("-renamed"))  # every route new: nothing of the last translation can be reused
    loop = asyncio.get_running_loop()
    lags: list[float] = []

    async def tick() -> None:
        while True:
            started = loop.time()
            await asyncio.sleep(0.01)
            lags.append(loop.time() - started - 0.01)

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    applied = await plane.reload("test")
    took = time.monotonic() - started
    ticker.cancel()
    return applied, took, max(lags, default=took)


def test_the_event_loop_keeps_turning_while_a_large_config_is_translated(tmp_path: Path) -> None:
    path = tmp_path / "switchyard.yaml"
    path.write_text(_config(""))
    applied, took, worst_lag = asyncio.run(_reload_while_ticking(path))
    assert applied
    assert took > 0.2, f"the reload took {took:.3f}s: too short to show anything"
    assert worst_lag < min(0.15, took / 2), f"the loop stalled {worst_lag:.3f}s of a {took:.3f}s reload"
