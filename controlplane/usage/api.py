"""`GET /usage` and the usage metrics on the control plane's HTTP API."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from controlplane.usage.accounting import UsageAccounting
from controlplane.usage.sql import FILTERS, GROUPS, UsageQuery

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
DEFAULT_BY = ("client", "route", "target", "model", "day")
# prompt_tokens counts every input token; cache_read_tokens and cache_write_tokens are the part of them read from
# or written to the provider's prompt cache, priced apart.
TOTALLED = ("requests", "prompt_tokens", "completion_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd")


class UsageQueryError(ValueError):
    pass


def query_of(params: Mapping[str, str]) -> UsageQuery:
    """`?by=client,day&client=team-a&since=2026-11-01&until=2026-11-30` → a query; UsageQueryError says what is
    wrong."""
    unknown = sorted(set(params) - {"by", "since", "until", *FILTERS})
    if unknown:
        known = ", ".join(("by", "since", "until", *FILTERS))
        raise UsageQueryError(f"unknown parameter(s) {', '.join(unknown)}; known: {known}")
    by = tuple(name for name in params.get("by", ",".join(DEFAULT_BY)).split(",") if name)
    wrong = [name for name in by if name not in GROUPS]
    if wrong or len(set(by)) != len(by):
        raise UsageQueryError(f"by: expected distinct names among {', '.join(GROUPS)}, got {params.get('by')!r}")
    for bound in ("since", "until"):
        if bound in params and not _DAY.fullmatch(params[bound]):
            raise UsageQueryError(f"{bound}: expected a UTC day as YYYY-MM-DD, got {params[bound]!r}")
    where = {name: params[name] for name in FILTERS if name in params}
    return UsageQuery(by=by, where=where, since=params.get("since"), until=params.get("until"))


def add_usage_routes(app: web.Application, usage: UsageAccounting) -> None:
    async def get_usage(request: web.Request) -> web.Response:
        try:
            query = query_of(request.query)
        except UsageQueryError as problem:
            return web.json_response({"error": str(problem)}, status=400)
        rows = await usage.query(query)
        totals = {key: sum(row[key] for row in rows) for key in TOTALLED}
        return web.json_response(
            {
                "by": list(query.by),
                "filters": dict(query.where) | {k: v for k, v in (("since", query.since), ("until", query.until)) if v},
                "rows": rows,
                "total": totals,
                "refused": {name: round(until, 3) for name, until in sorted(usage.refused().items())},
            }
        )

    app.router.add_get("/usage", get_usage)


class UsageCollector(Collector):
    """Tokens and spend this control plane counted since it started (each replica counts every answer)."""

    def __init__(self, usage: UsageAccounting) -> None:
        self._usage = usage

    def collect(self) -> Iterator[Metric]:
        tokens = CounterMetricFamily(
            "switchyard_client_tokens",
            "Tokens of answers per client, route, target and kind (prompt, completion); client is empty without "
            "a clients section",
            labels=["client", "route", "target", "kind"],
        )
        for labels, count in sorted(self._usage.tokens.items()):
            tokens.add_metric(list(labels), count)
        spend = CounterMetricFamily(
            "switchyard_client_spend_usd",
            "Spend in USD per client, priced with the targets' `price` (cache reads and writes at their own)",
            labels=["client"],
        )
        for client, usd in sorted(self._usage.spend.items()):
            spend.add_metric([client], usd)
        cache = CounterMetricFamily(
            "switchyard_client_cache_tokens",
            "Prompt tokens read from or written to the provider's prompt cache per client, route, target and kind "
            "(read, write); switchyard_client_tokens' prompt kind counts them too",
            labels=["client", "route", "target", "kind"],
        )
        for labels, count in sorted(self._usage.cache_tokens.items()):
            cache.add_metric(list(labels), count)
        yield tokens
        yield cache
        yield spend
