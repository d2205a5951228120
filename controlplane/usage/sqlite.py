"""Usage in SQLite: the default, in the control plane's state dir (or in memory without one)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from typing import Any

from controlplane.usage.record import UsageRecord
from controlplane.usage.sql import ADDED_COLUMNS, INSERT, SCHEMA, TOTALS, UsageQuery, insert_of, rows, rows_of

ROWS_PER_INSERT = 200  # 2,400 values per statement: SQLite takes up to 32,766
_INSERT_MANY = insert_of(ROWS_PER_INSERT)


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
        """ROWS_PER_INSERT rows per statement, the rest one by one. Python's sqlite3 lets the event loop's thread
        run while SQLite inserts, and takes it back for each statement's values: one statement per row meant
        a hand-over per answer between this thread and the busy event loop (issue 21)."""
        batch = rows(records)
        whole = len(batch) - len(batch) % ROWS_PER_INSERT
        with self._db:
            if whole:
                groups = (batch[i : i + ROWS_PER_INSERT] for i in range(0, whole, ROWS_PER_INSERT))
                self._db.executemany(_INSERT_MANY, [tuple(chain.from_iterable(group)) for group in groups])
            if whole < len(batch):
                self._db.executemany(INSERT, batch[whole:])

    def totals_since(self, client: str, since: float) -> tuple[int, float]:
        tokens, cost = self._db.execute(TOTALS, (client, since)).fetchone()
        return int(tokens), float(cost)

    def query(self, query: UsageQuery) -> list[dict[str, Any]]:
        text, values = query.sql()
        return rows_of(query, self._db.execute(text, values).fetchall())

    def close(self) -> None:
        self._db.close()
