"""Streams the rewrite table to every ext_proc (our own `RewriteDirectory` service, proto/).

`publish` returns once every connected ext_proc has applied the table (or a deadline passes), and the
control plane pushes xDS only after that: Envoy never routes to a target an ext_proc cannot rewrite.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator

import grpc

from switchyard.api.v1 import rewrite_pb2, rewrite_pb2_grpc

log = logging.getLogger("switchyard.controlplane.directory")


class _Subscriber:
    def __init__(self, ident: int, instance: str) -> None:
        self.ident = ident
        self.instance = instance
        self.applied_version = ""
        self.applied = asyncio.Event()


class RewriteDirectoryService(rewrite_pb2_grpc.RewriteDirectoryServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self._table: rewrite_pb2.RewriteTable | None = None
        self._subscribers: dict[int, _Subscriber] = {}
        self._changed = asyncio.Condition()
        self._ids = itertools.count(1)
        self._joined = asyncio.Event()

    async def wait_for_subscriber(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._joined.wait(), timeout)
        return bool(self._subscribers)

    async def publish(self, table: rewrite_pb2.RewriteTable, timeout: float) -> list[str]:
        """Send `table` to all ext_procs; return the instances that did not apply it in time."""
        async with self._changed:
            self._table = table
            waiting = list(self._subscribers.values())
            for subscriber in waiting:
                subscriber.applied.clear()
            self._changed.notify_all()
        deadline = asyncio.get_running_loop().time() + timeout
        late: list[str] = []
        for subscriber in waiting:
            while subscriber.applied_version != table.version and subscriber.ident in self._subscribers:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    late.append(subscriber.instance)
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(subscriber.applied.wait(), remaining)
                subscriber.applied.clear()
        return late

    async def Subscribe(
        self,
        request_iterator: AsyncIterator[rewrite_pb2.SubscribeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[rewrite_pb2.RewriteTable]:
        first = await anext(aiter(request_iterator), None)
        if first is None:
            return
        subscriber = _Subscriber(next(self._ids), first.instance or context.peer())
        self._subscribers[subscriber.ident] = subscriber
        self._joined.set()
        log.info("ext_proc %s subscribed", subscriber.instance)
        reader = asyncio.create_task(self._read_acks(request_iterator, subscriber))
        try:
            sent: str | None = None
            while not reader.done():
                async with self._changed:
                    await self._changed.wait_for(lambda last=sent: self._has_news(reader, last))  # type: ignore[misc]
                    table = self._table
                if reader.done() or table is None:
                    break
                sent = table.version
                yield table
        finally:
            self._subscribers.pop(subscriber.ident, None)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            log.info("ext_proc %s unsubscribed", subscriber.instance)

    def _has_news(self, reader: asyncio.Task[None], last_sent: str | None) -> bool:
        return reader.done() or (self._table is not None and self._table.version != last_sent)

    async def _read_acks(self, requests: AsyncIterator[rewrite_pb2.SubscribeRequest], subscriber: _Subscriber) -> None:
        try:
            async for request in requests:
                subscriber.applied_version = request.applied_version
                subscriber.applied.set()
        finally:
            async with self._changed:
                self._changed.notify_all()
