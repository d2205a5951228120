"""The control plane's HTTP API: GET /status (JSON), GET /usage (JSON, controlplane/usage/api.py), GET /metrics
(Prometheus) and GET / (the live status page, which polls /status). Loopback by default."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from controlplane.telemetry.metrics import StatusCollector
from controlplane.telemetry.status_page import add_page_routes
from controlplane.usage.accounting import UsageAccounting
from controlplane.usage.api import UsageCollector, add_usage_routes


def build_app(status: Callable[[], dict[str, Any]], usage: UsageAccounting | None = None) -> web.Application:
    registry = CollectorRegistry()
    registry.register(StatusCollector(status))
    if usage is not None:
        registry.register(UsageCollector(usage))

    async def get_status(_: web.Request) -> web.Response:
        return web.json_response(status())

    async def get_metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"content-type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/status", get_status)
    app.router.add_get("/metrics", get_metrics)
    if usage is not None:
        add_usage_routes(app, usage)
    add_page_routes(app)
    return app


async def start(
    status: Callable[[], dict[str, Any]], host: str, port: int, usage: UsageAccounting | None = None
) -> web.AppRunner:
    runner = web.AppRunner(build_app(status, usage), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
