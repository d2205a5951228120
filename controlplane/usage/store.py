"""Where usage survives restarts: one row per answer, in SQLite (the default, in the control plane's state dir)
or PostgreSQL (`--usage-db postgresql://…`, shared by a fleet's control-plane replicas; postgres.py).

Every replica receives every node's answer log, so replicas on one PostgreSQL write each answer twice: rows are
keyed by the record id (node, request id, start time), and a second insert of one id does nothing.
Stores are used from one worker thread (UsageAccounting's), never from the event loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from controlplane.usage.record import UsageRecord

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
        cost_usd DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS switchyard_usage_client_at ON switchyard_usage (client, at)",
    "CREATE INDEX IF NOT EXISTS switchyard_usage_day ON switchyard_usage (day)",
)
INSERT = (
    "INSERT INTO switchyard_usage (id, at, day, client, route, target, model, prompt_tokens, completion_tokens,"
    " cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
)
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
            f"SELECT {select}COUNT(*), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_usd)"
            " FROM switchyard_usage"
            + (f" WHERE {' AND '.join(conditions)}" if conditions else "")
            + (f" GROUP BY {columns} ORDER BY {columns}" if columns else "")
        )
        return text, values


def rows_of(query: UsageQuery, rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        named = dict(zip(query.by, row, strict=False))
        requests, prompt, completion, cost = row[len(query.by) :]
        if not requests:
            continue
        named.update(
            requests=int(requests),
            prompt_tokens=int(prompt or 0),
            completion_tokens=int(completion or 0),
            cost_usd=round(float(cost or 0.0), 9),
        )
        out.append(named)
    return out


def as_row(record: UsageRecord) -> tuple[Any, ...]:
    return (
        record.id,
        record.at,
        record.day,
        record.client,
        record.route,
        record.target,
        record.model,
        record.prompt_tokens,
        record.completion_tokens,
        record.cost_usd,
    )


class UsageStore(Protocol):
    description: str

    def write(self, records: Sequence[UsageRecord]) -> None: ...

    def totals_since(self, client: str, since: float) -> tuple[int, float]:
        """(tokens, USD) of the client's answers from `since` on."""
        ...

    def query(self, query: UsageQuery) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


class SqliteUsageStore:
    def __init__(self, path: Path | str) -> None:
        self.description = f"SQLite {path}"
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        for statement in SCHEMA:
            self._db.execute(statement)
        self._db.commit()

    def write(self, records: Sequence[UsageRecord]) -> None:
        with self._db:
            self._db.executemany(INSERT, [as_row(r) for r in records])

    def totals_since(self, client: str, since: float) -> tuple[int, float]:
        tokens, cost = self._db.execute(TOTALS, (client, since)).fetchone()
        return int(tokens), float(cost)

    def query(self, query: UsageQuery) -> list[dict[str, Any]]:
        text, values = query.sql()
        return rows_of(query, self._db.execute(text, values).fetchall())

    def close(self) -> None:
        self._db.close()


def open_store(url: str | None, state_dir: Path | None) -> UsageStore:
    """`postgresql://…` → PostgreSQL; otherwise SQLite at `url` (a path), else `usage.sqlite3` in the state dir,
    else in memory (nothing survives a restart)."""
    if url and url.startswith(("postgresql://", "postgres://")):
        from controlplane.usage.postgres import PostgresUsageStore

        return PostgresUsageStore(url)
    if url:
        return SqliteUsageStore(url)
    if state_dir is not None:
        return SqliteUsageStore(state_dir / "usage.sqlite3")
    return SqliteUsageStore(":memory:")
