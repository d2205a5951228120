"""The usage table and its queries, in the SQL both stores run (SQLite as written; PostgreSQL with `%s` for `?`).

Every replica receives every node's answer log, so replicas on one PostgreSQL write each answer twice: rows are
keyed by the record id (node, request id, start time), and a second insert of one id does nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from controlplane.usage.record import DAY_S, UsageRecord, utc_day

GROUPS = ("client", "route", "target", "model", "day")
FILTERS = ("client", "route", "target", "model")
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS switchyard_usage (
        id TEXT PRIMARY KEY,
        at DOUBLE PRECISION NOT NULL,
        day TEXT NOT NULL,
        client TEXT NOT NULL,
        route TEXT NOT NULL,
        target TEXT NOT NULL,
        model TEXT NOT NULL,
        prompt_tokens BIGINT NOT NULL,
        completion_tokens BIGINT NOT NULL,
        cost_usd DOUBLE PRECISION NOT NULL,
        cache_read_tokens BIGINT NOT NULL DEFAULT 0,
        cache_write_tokens BIGINT NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS switchyard_usage_client_at ON switchyard_usage (client, at)",
    "CREATE INDEX IF NOT EXISTS switchyard_usage_day ON switchyard_usage (day)",
)
# Columns later versions added, with their type: a table an earlier version created gets them on start (each
# store's migration; rows from before count no cached tokens, which is what was known of them).
ADDED_COLUMNS = (
    ("cache_read_tokens", "BIGINT NOT NULL DEFAULT 0"),
    ("cache_write_tokens", "BIGINT NOT NULL DEFAULT 0"),
)
# The columns in UsageRecord's order, then the day: a row is the record with its day appended (rows()).
_COLUMNS = (
    "id, at, client, route, target, model, prompt_tokens, completion_tokens, cost_usd, cache_read_tokens,"
    " cache_write_tokens, day"
)
_ROW = "(" + ", ".join(["?"] * 12) + ")"


def insert_of(rows: int) -> str:
    """The INSERT of `rows` rows (their values one after the other): a second insert of an id does nothing."""
    return f"INSERT INTO switchyard_usage ({_COLUMNS}) VALUES {', '.join([_ROW] * rows)} ON CONFLICT (id) DO NOTHING"


INSERT = insert_of(1)
TOTALS = (
    "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0), COALESCE(SUM(cost_usd), 0)"
    " FROM switchyard_usage WHERE client = ? AND at >= ?"
)


@dataclass(frozen=True)
class UsageQuery:
    """`GET /usage`: rows grouped by `by` (a subset of GROUPS), filtered by equality and a day range."""

    by: tuple[str, ...] = ("client", "route", "target", "model", "day")
    where: Mapping[str, str] = field(default_factory=dict)
    since: str | None = None  # YYYY-MM-DD, inclusive
    until: str | None = None  # YYYY-MM-DD, inclusive

    def sql(self) -> tuple[str, list[Any]]:
        columns = ", ".join(self.by)
        conditions, values = [], []
        for name in FILTERS:
            if name in self.where:
                conditions.append(f"{name} = ?")
                values.append(self.where[name])
        if self.since:
            conditions.append("day >= ?")
            values.append(self.since)
        if self.until:
            conditions.append("day <= ?")
            values.append(self.until)
        select = f"{columns}, " if columns else ""
        text = (
            f"SELECT {select}COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_usd),"
            " SUM(cache_read_tokens), SUM(cache_write_tokens) FROM switchyard_usage"
            + (f" WHERE {' AND '.join(conditions)}" if conditions else "")
            + (f" GROUP BY {columns} ORDER BY {columns}" if columns else "")
        )
        return text, values


def rows_of(query: UsageQuery, rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        named = dict(zip(query.by, row, strict=False))
        requests, prompt, completion, cost, cache_read, cache_write = row[len(query.by) :]
        if not requests:
            continue
        named.update(
            requests=int(requests),
            prompt_tokens=int(prompt or 0),
            completion_tokens=int(completion or 0),
            cache_read_tokens=int(cache_read or 0),
            cache_write_tokens=int(cache_write or 0),
            cost_usd=round(float(cost or 0.0), 9),
        )
        out.append(named)
    return out


def rows(records: Iterable[UsageRecord]) -> list[tuple[Any, ...]]:
    """INSERT's rows: each record with its UTC day appended. A store writes every answer, so this runs once per
    request (issue 21): a tuple concatenation, and the day's name computed once per day a batch spans rather
    than read field by field and formatted per record (about a fifth of the write)."""
    out: list[tuple[Any, ...]] = []
    append = out.append
    last = -1.0
    day: tuple[str] = ("",)
    for record in records:
        number = record[1] // DAY_S  # UsageRecord.at, as UsageRecord.day divides it
        if number != last:
            last, day = number, (utc_day(int(number)),)
        append(record + day)
    return out
