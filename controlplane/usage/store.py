"""Where usage survives restarts: one row per answer, in SQLite (the default, in the control plane's state dir;
sqlite.py) or PostgreSQL (`--usage-db postgresql://…`, shared by a fleet's control-plane replicas; postgres.py),
both from the SQL in sql.py. Stores are used from one worker thread (UsageAccounting's), never from the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from controlplane.usage.record import UsageRecord
from controlplane.usage.sql import UsageQuery
from controlplane.usage.sqlite import SqliteUsageStore


class UsageStore(Protocol):
    description: str

    def write(self, records: Sequence[UsageRecord]) -> None: ...

    def totals_since(self, client: str, since: float) -> tuple[int, float]:
        """(tokens, USD) of the client's answers from `since` on."""
        ...

    def query(self, query: UsageQuery) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


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
