"""Holds the snapshot in force and wakes every stream that serves it when a new one is set."""

from __future__ import annotations

import asyncio

from controlplane.snapshot import Snapshot


class SnapshotStore:
    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self._changed = asyncio.Condition()

    @property
    def current(self) -> Snapshot | None:
        return self._snapshot

    async def set(self, snapshot: Snapshot) -> None:
        async with self._changed:
            self._snapshot = snapshot
            self._changed.notify_all()

    async def wait_newer_than(self, version: str | None) -> Snapshot:
        """Return the current snapshot as soon as it differs from `version` (None: any snapshot)."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._snapshot is not None and self._snapshot.version != version)
            assert self._snapshot is not None
            return self._snapshot
