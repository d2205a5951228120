"""Usage accounting in the control plane: answers from the answer log → ledger, store, counters.

The ledger counts each answer the moment its log entry arrives (Envoy flushes the log every 0.25 s), so a
client going over is refused at once: `on_refusals_changed` wakes the live-state loop, which pushes the refusal
to every node. Writes to the store happen off the event loop, in one worker thread, every FLUSH_S; every
RESYNC_S the ledger also takes the store's totals for the current windows as floors, which is how a restarted
control plane, or replicas sharing one PostgreSQL, see the usage others counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from operator import itemgetter
from typing import Any, TypeVar

from envoy.data.accesslog.v3 import accesslog_pb2

from controlplane.target_keys import target_key
from controlplane.usage.ledger import MINUTE_S, UsageLedger
from controlplane.usage.record import TargetInfo, UsageRecord, usage_from_tags, usage_of
from controlplane.usage.sql import UsageQuery
from controlplane.usage.store import UsageStore
from switchyard.config import Config

log = logging.getLogger("switchyard.controlplane.usage")

FLUSH_S = 0.25
RESYNC_S = 5.0
MAX_PENDING = 100_000  # a store down for long must not grow memory without bound: the oldest are dropped
STORE_BATCH = 20_000  # records per write: one transaction each, so a long backlog never holds one huge one
T = TypeVar("T")
_CLIENT_ROUTE_TARGET = itemgetter(*(UsageRecord._fields.index(name) for name in ("client", "route", "target")))
_AT, _PROMPT, _COMPLETION, _COST, _CACHE_READ, _CACHE_WRITE = (
    UsageRecord._fields.index(name)
    for name in ("at", "prompt_tokens", "completion_tokens", "cost_usd", "cache_read_tokens", "cache_write_tokens")
)


class UsageAccounting:
    def __init__(self, store: UsageStore, on_refusals_changed: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.ledger = UsageLedger()
        self._on_refusals_changed = on_refusals_changed
        # Target keys → what usage names and prices them by: read once per log message by the answer log's handler
        self.targets: dict[str, TargetInfo] = {}
        # Records not yet written, oldest first; past MAX_PENDING the oldest go, counted in not_stored.
        self._pending: deque[UsageRecord] = deque()
        self.not_stored = 0  # records counted in the ledger and metrics but dropped before the store had them
        self._refused: dict[str, float] = {}
        self._limited: frozenset[str] = frozenset()  # clients with a token limit or a budget
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="usage-store")
        # Since this process started, for /metrics (counters: each replica counts every answer it receives).
        self.tokens: Counter[tuple[str, str, str, str]] = Counter()  # (client, route, target, kind)
        # The prompt tokens read from / written to the prompt cache, by (client, route, target, "read"/"write").
        self.cache_tokens: Counter[tuple[str, str, str, str]] = Counter()
        self.spend: dict[str, float] = {}

    def configure(self, config: Config) -> None:
        """A config applied (start or reload): target names and prices, client limits. Counts are kept."""
        self.targets = {
            target_key(r, t): TargetInfo(r.model, t.display_name, t.model, t.price)
            for r in config.routes
            for t in r.targets
        }
        self.ledger.configure(config.clients)
        self._limited = frozenset(self.ledger.windows(time.time()))
        self._check_refusals()

    def target(self, key: str) -> TargetInfo | None:
        """The target a log entry's key names, None for answers no target gave (refused by the gateway)."""
        return self.targets.get(key)

    def record(self, entry: accesslog_pb2.HTTPAccessLogEntry, node: str) -> None:
        record = usage_of(entry, node, self.targets)
        if record is not None and self.add(record):
            self._check_refusals()

    def add_answer(
        self,
        tags: dict[str, str],
        target: TargetInfo,
        node: str,
        request_id: str,
        start_seconds: int,
        start_nanos: int,
        duration_s: float,
    ) -> bool:
        """`record` for the answer log's handler, which has read the entry's fields already. True when the
        answer's client has a limit: the caller then looks at refusals once for its whole batch."""
        return self.add(usage_from_tags(tags, target, node, request_id, start_seconds, start_nanos, duration_s))

    def add_records(self, records: Sequence[UsageRecord]) -> bool:
        """`add` for the records of one log message: the counters and the ledger are updated once per client,
        route, target and minute rather than once per answer (issue 21), each group's counts summed column by
        column in C. A budget period always starts on a minute, so each group lies within one period too. True
        when one of the clients has a limit."""
        by_target: dict[tuple[str, str, str], list[UsageRecord]] = {}
        for record in records:
            group = _CLIENT_ROUTE_TARGET(record)
            same = by_target.get(group)
            if same is None:
                by_target[group] = [record]
            else:
                same.append(record)
        limited = False
        for (client, route, target), group in by_target.items():
            columns = tuple(zip(*group, strict=True))
            starts = columns[_AT]
            if min(starts) // MINUTE_S == max(starts) // MINUTE_S:  # one minute: the common case
                limited |= self._add_group(client, route, target, columns)
                continue
            minutes: dict[float, list[UsageRecord]] = {}
            for record in group:
                minutes.setdefault(record.at // MINUTE_S, []).append(record)
            for same_minute in minutes.values():
                limited |= self._add_group(client, route, target, tuple(zip(*same_minute, strict=True)))
        pending = self._pending
        pending.extend(records)
        if len(pending) > MAX_PENDING:
            excess = len(pending) - MAX_PENDING
            for _ in range(excess):
                pending.popleft()
            self.not_stored += excess
        return limited

    def _add_group(self, client: str, route: str, target: str, columns: tuple[tuple[Any, ...], ...]) -> bool:
        """The records of one client, route, target and minute, as columns (UsageRecord's fields in order)."""
        prompt, completion = sum(columns[_PROMPT]), sum(columns[_COMPLETION])
        read, write, cost = sum(columns[_CACHE_READ]), sum(columns[_CACHE_WRITE]), sum(columns[_COST])
        tokens = self.tokens
        tokens[(client, route, target, "prompt")] += prompt
        tokens[(client, route, target, "completion")] += completion
        if read:
            self.cache_tokens[(client, route, target, "read")] += read
        if write:
            self.cache_tokens[(client, route, target, "write")] += write
        self.spend[client] = self.spend.get(client, 0.0) + cost
        self.ledger.add(client, prompt + completion, cost, columns[_AT][0])
        return client in self._limited

    def add(self, record: UsageRecord) -> bool:
        client = record.client
        self.tokens[(client, record.route, record.target, "prompt")] += record.prompt_tokens
        self.tokens[(client, record.route, record.target, "completion")] += record.completion_tokens
        if record.cache_read_tokens:
            self.cache_tokens[(client, record.route, record.target, "read")] += record.cache_read_tokens
        if record.cache_write_tokens:
            self.cache_tokens[(client, record.route, record.target, "write")] += record.cache_write_tokens
        self.spend[client] = self.spend.get(client, 0.0) + record.cost_usd
        self.ledger.add(client, record.prompt_tokens + record.completion_tokens, record.cost_usd, record.at)
        self._pending.append(record)
        if len(self._pending) > MAX_PENDING:
            self._pending.popleft()
            self.not_stored += 1
        return client in self._limited

    def check_refusals(self) -> None:
        self._check_refusals()

    def refused(self, now: float | None = None) -> dict[str, float]:
        return self.ledger.refused(time.time() if now is None else now)

    def _check_refusals(self) -> None:
        refused = self.refused()
        if refused != self._refused:
            newly = sorted(set(refused) - set(self._refused))
            for name in newly:
                left = refused[name] - time.time()
                log.warning("client %s is over its token limit or budget: refused for %.0fs", name, left)
            self._refused = refused
            self._on_refusals_changed()

    async def _in_thread(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def flush(self) -> None:
        while self._pending:
            batch = [self._pending.popleft() for _ in range(min(len(self._pending), STORE_BATCH))]
            try:
                await self._in_thread(lambda batch=batch: self.store.write(batch))  # type: ignore[misc]
            except Exception as error:  # the store is down: keep the records for the next flush
                log.warning("usage store %s: write failed, retrying: %s", self.store.description, error)
                self._pending.extendleft(reversed(batch))
                while len(self._pending) > MAX_PENDING:
                    self._pending.pop()  # the newest beyond the bound: the same count as dropping the oldest
                    self.not_stored += 1
                return

    async def resync(self) -> None:
        """The store's totals for the current windows, as floors of the ledger's."""
        windows = self.ledger.windows(time.time())

        def read() -> dict[str, tuple[float, int, float | None, float]]:
            out = {}
            for name, (minute, period) in windows.items():
                tokens, _ = self.store.totals_since(name, minute)
                spend = self.store.totals_since(name, period)[1] if period is not None else 0.0
                out[name] = (minute, tokens, period, spend)
            return out

        try:
            totals = await self._in_thread(read)
        except Exception as error:
            log.warning("usage store %s: read failed: %s", self.store.description, error)
            return
        for name, (minute, tokens, period, spend) in totals.items():
            self.ledger.at_least(name, minute, tokens, period or 0.0, spend)
        self._check_refusals()

    async def run(self) -> None:
        """Flush every FLUSH_S, resync every RESYNC_S (and at once: a restart starts from the store)."""
        await self.resync()
        last_resync = time.monotonic()
        while True:
            await asyncio.sleep(FLUSH_S)
            await self.flush()
            if time.monotonic() - last_resync >= RESYNC_S:
                await self.resync()
                last_resync = time.monotonic()
            else:
                self._check_refusals()  # a window or period that ended lifts its refusals

    async def query(self, query: UsageQuery) -> list[dict[str, Any]]:
        await self.flush()
        return await self._in_thread(lambda: self.store.query(query))

    async def close(self) -> None:
        await self.flush()
        await self._in_thread(self.store.close)
        self._executor.shutdown(wait=True)
