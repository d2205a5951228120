"""Usage stores: SQLite (a file that survives a reopen) and PostgreSQL (a real server, started for the test).
Both keep one row per record id, however often it is written (replicas write every answer), and answer the
same queries."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from controlplane.usage.api import UsageQueryError, query_of
from controlplane.usage.record import UsageRecord
from controlplane.usage.sql import UsageQuery
from controlplane.usage.sqlite import SqliteUsageStore
from controlplane.usage.store import UsageStore, open_store
from tests.support.postgres_server import postgres_server

DAY1 = 1_796_000_000.0  # 2026-11-30 (UTC)
DAY2 = DAY1 + 86_400


def record(
    n: int, client: str = "team-a", route: str = "gpt", at: float = DAY1, tokens: tuple[int, int] = (10, 5)
) -> UsageRecord:
    return UsageRecord(f"id-{n}", at, client, route, "primary", "gpt-4o", tokens[0], tokens[1], tokens[0] * 1e-6)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UsageStore]:
    if request.param == "sqlite":
        opened: UsageStore = SqliteUsageStore(tmp_path / "usage.sqlite3")
    else:
        url = request.getfixturevalue("postgres_url")
        opened = open_store(url, None)
        cursor = opened._db.cursor()  # type: ignore[attr-defined]
        cursor.execute("TRUNCATE switchyard_usage")
    yield opened
    opened.close()


def test_a_record_written_twice_counts_once(store: UsageStore) -> None:
    store.write([record(1), record(2)])
    store.write([record(1), record(3)])  # the other replica's copy of record 1, and a new one
    [row] = store.query(UsageQuery(by=("client",)))
    assert row == {
        "client": "team-a",
        "requests": 3,
        "prompt_tokens": 30,
        "completion_tokens": 15,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "cost_usd": 3e-05,
    }


def test_a_large_write_keeps_every_row_once_and_its_day(store: UsageStore) -> None:
    """More records than one SQLite statement carries, some twice within the write, over two days: each row
    once, with its own values and day (the rows go many to a statement)."""
    records = [record(n, client=f"c{n % 3}", at=DAY1 + n * 100, tokens=(n, 1)) for n in range(1, 1001)]
    store.write([*records[::7], *records])
    rows = store.query(UsageQuery(by=("client", "day")))
    assert sum(row["requests"] for row in rows) == 1000
    assert sum(row["prompt_tokens"] for row in rows) == sum(range(1, 1001))
    by_day = {(row["client"], row["day"]): row["requests"] for row in rows}
    midnight = (DAY1 // 86_400 + 1) * 86_400
    day1 = sum(1 for n in range(1, 1001) if DAY1 + n * 100 < midnight)
    assert sum(v for (_, day), v in by_day.items() if day == "2026-11-30") == day1
    assert sum(v for (_, day), v in by_day.items() if day == "2026-12-01") == 1000 - day1
    [one] = store.query(UsageQuery(by=("client", "day"), where={"client": "c1"}, since="2026-12-01"))
    assert one["prompt_tokens"] == sum(n for n in range(1, 1001) if n % 3 == 1 and DAY1 + n * 100 >= midnight)


def test_cached_tokens_are_kept_and_summed(store: UsageStore) -> None:
    cached = [record(n)._replace(cache_read_tokens=6, cache_write_tokens=n) for n in (1, 2)]
    store.write([*cached, record(3)])
    [row] = store.query(UsageQuery(by=("client",)))
    assert (row["prompt_tokens"], row["cache_read_tokens"], row["cache_write_tokens"]) == (30, 12, 3)


def test_groups_filters_and_days(store: UsageStore) -> None:
    store.write([record(1), record(2, client="team-b", route="claude"), record(3, at=DAY2, tokens=(100, 1))])
    rows = store.query(UsageQuery(by=("client", "day")))
    assert [(r["client"], r["day"], r["requests"]) for r in rows] == [
        ("team-a", "2026-11-30", 1),
        ("team-a", "2026-12-01", 1),
        ("team-b", "2026-11-30", 1),
    ]
    only = store.query(query_of({"by": "route", "client": "team-a", "since": "2026-12-01"}))
    assert only == [
        {
            "route": "gpt",
            "requests": 1,
            "prompt_tokens": 100,
            "completion_tokens": 1,
            "cache_read_tokens": 0,
            "cache_write_tokens": 0,
            "cost_usd": 1e-04,
        }
    ]
    assert store.query(UsageQuery(by=(), where={"client": "nobody"})) == []
    [everything] = store.query(UsageQuery(by=()))
    assert everything["requests"] == 3


def test_totals_since(store: UsageStore) -> None:
    store.write([record(1, at=DAY1), record(2, at=DAY1 + 30), record(3, client="team-b", at=DAY1 + 30)])
    assert store.totals_since("team-a", DAY1 + 1) == (15, pytest.approx(1e-05))
    assert store.totals_since("team-a", DAY1) == (30, pytest.approx(2e-05))
    assert store.totals_since("nobody", 0) == (0, 0.0)


def test_sqlite_usage_survives_a_reopen(tmp_path: Path) -> None:
    first = open_store(None, tmp_path)
    first.write([record(1)])
    first.close()
    again = open_store(None, tmp_path)
    assert again.totals_since("team-a", 0) == (15, pytest.approx(1e-05))
    again.close()


# The table as versions before cached tokens created it.
_TABLE_BEFORE_CACHE_COLUMNS = """CREATE TABLE switchyard_usage (
    id TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL, day TEXT NOT NULL, client TEXT NOT NULL,
    route TEXT NOT NULL, target TEXT NOT NULL, model TEXT NOT NULL, prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL, cost_usd DOUBLE PRECISION NOT NULL)"""
_OLD_ROW = (
    "INSERT INTO switchyard_usage VALUES ('old', 1796000000, '2026-11-30', 'team-a', 'gpt', 'primary', 'gpt-4o',"
    " 40, 2, 0.5)"
)


def _assert_migrated(store: UsageStore) -> None:
    """The old row reads with no cached tokens; new rows keep theirs."""
    store.write([record(1)._replace(cache_read_tokens=4, cache_write_tokens=2)])
    [row] = store.query(UsageQuery(by=("client",)))
    assert (row["requests"], row["prompt_tokens"], row["cache_read_tokens"], row["cache_write_tokens"]) == (2, 50, 4, 2)


def test_an_sqlite_database_of_an_earlier_version_gets_the_cache_columns(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute(_TABLE_BEFORE_CACHE_COLUMNS)
        old.execute(_OLD_ROW)
    old.close()
    store = SqliteUsageStore(path)
    _assert_migrated(store)
    store.close()
    SqliteUsageStore(path).close()  # opening a migrated database again changes nothing


def test_a_postgresql_table_of_an_earlier_version_gets_the_cache_columns(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as old:
        old.execute("DROP TABLE IF EXISTS switchyard_usage")
        old.execute(_TABLE_BEFORE_CACHE_COLUMNS)
        old.execute(_OLD_ROW)
    store = open_store(postgres_url, None)
    _assert_migrated(store)
    store.close()
    open_store(postgres_url, None).close()


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"by": "planet"}, "by: expected distinct names"),
        ({"by": "client,client"}, "by: expected distinct names"),
        ({"since": "yesterday"}, "since: expected a UTC day"),
        ({"clients": "a"}, "unknown parameter(s) clients"),
    ],
)
def test_bad_queries_say_what_is_wrong(params: dict[str, str], problem: str) -> None:
    with pytest.raises(UsageQueryError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        query_of(params)
