"""The PostgreSQL usage store (psycopg 3): one database shared by a fleet's control-plane replicas.

Same table and statements as SQLite (store.py), with psycopg's placeholders. Each replica writes every answer
it receives; the primary key (the record id) makes the second write of an answer a no-op, so replicas never
double count, and each reads the totals all of them wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import psycopg

from controlplane.usage.record import UsageRecord
from controlplane.usage.sql import ADDED_COLUMNS, INSERT, SCHEMA, TOTALS, UsageQuery, rows, rows_of


def _pg(statement: str) -> str:
    return statement.replace("?", "%s")


class PostgresUsageStore:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        # Shown in logs: never the password.
        self.description = f"PostgreSQL {parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
        self._url = url
        self._db = self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        connection = psycopg.connect(self._url, autocommit=True, connect_timeout=5)
        with connection.cursor() as cursor:
            # Two replicas starting together must not race on CREATE TABLE IF NOT EXISTS.
            cursor.execute("SELECT pg_advisory_lock(7140214)")
            try:
                for statement in SCHEMA:
                    cursor.execute(statement)
                for name, kind in ADDED_COLUMNS:  # a table an earlier version created
                    cursor.execute(f"ALTER TABLE switchyard_usage ADD COLUMN IF NOT EXISTS {name} {kind}")
            finally:
                cursor.execute("SELECT pg_advisory_unlock(7140214)")
        return connection

    def _live(self) -> psycopg.Connection[Any]:
        """The connection, opened again after the server went away (a failed call is retried by the caller)."""
        if self._db.closed or self._db.broken:
            self._db = self._connect()
        return self._db

    def _cursor(self) -> psycopg.Cursor[Any]:
        return self._live().cursor()

    def write(self, records: Sequence[UsageRecord]) -> None:
        db = self._live()
        with db.transaction(), db.cursor() as cursor:
            cursor.executemany(_pg(INSERT), rows(records))

    def totals_since(self, client: str, since: float) -> tuple[int, float]:
        with self._cursor() as cursor:
            row = cursor.execute(_pg(TOTALS), (client, since)).fetchone()
        assert row is not None
        return int(row[0]), float(row[1])

    def query(self, query: UsageQuery) -> list[dict[str, Any]]:
        text, values = query.sql()
        with self._cursor() as cursor:
            return rows_of(query, cursor.execute(_pg(text), values).fetchall())

    def close(self) -> None:
        self._db.close()
