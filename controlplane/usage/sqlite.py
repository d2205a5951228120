"""Usage in SQLite: the default, in the control plane's state dir (or in memory without one)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from controlplane.usage.record import UsageRecord
from controlplane.usage.sql import ADDED_COLUMNS, INSERT, SCHEMA, TOTALS, UsageQuery, as_row, rows_of


class SqliteUsageStore:
    def __init__(self, path: Path | str) -> None:
        self.description = f"SQLite {path}"
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        for statement in SCHEMA:
            self._db.execute(statement)
        self._add_missing_columns()
        self._db.commit()

    def _add_missing_columns(self) -> None:
        """A database an earlier version wrote: SQLite has no ADD COLUMN IF NOT EXISTS, so its columns are read."""
        present = {row[1] for row in self._db.execute("PRAGMA table_info(switchyard_usage)")}
        for name, kind in ADDED_COLUMNS:
            if name not in present:
                self._db.execute(f"ALTER TABLE switchyard_usage ADD COLUMN {name} {kind}")

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
