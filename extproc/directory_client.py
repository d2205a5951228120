"""Keeps the ext_proc's target index in step with the control plane, reconnecting forever."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc

from extproc.targets import TargetIndex
from switchyard.api.v1 import rewrite_pb2, rewrite_pb2_grpc

log = logging.getLogger("switchyard.extproc.directory")

_RETRY_S = (0.1, 0.2, 0.5, 1.0, 2.0)


async def _drain(queue: asyncio.Queue[rewrite_pb2.SubscribeRequest]) -> AsyncIterator[rewrite_pb2.SubscribeRequest]:
    while True:
        yield await queue.get()


async def follow_directory(address: str, instance: str, index: TargetIndex) -> None:
    attempt = 0
    while True:
        try:
            async with grpc.aio.insecure_channel(address) as channel:
                stub = rewrite_pb2_grpc.RewriteDirectoryStub(channel)
                acks: asyncio.Queue[rewrite_pb2.SubscribeRequest] = asyncio.Queue()
                acks.put_nowait(rewrite_pb2.SubscribeRequest(instance=instance, applied_version=index.version))

                async for table in stub.Subscribe(_drain(acks)):
                    index.apply(table)
                    attempt = 0
                    log.info("rewrite table version %s applied (%d targets)", table.version, len(table.targets))
                    acks.put_nowait(rewrite_pb2.SubscribeRequest(instance=instance, applied_version=table.version))
        except grpc.aio.AioRpcError as error:
            # Starting before the control plane is normal (`up` starts both at once): only a lasting outage warns.
            if attempt == len(_RETRY_S):
                log.warning("control plane at %s still unavailable (%s); retrying", address, error.code().name)
            elif attempt == 0:
                log.info("waiting for the control plane at %s", address)
        delay = _RETRY_S[min(attempt, len(_RETRY_S) - 1)]
        attempt += 1
        await asyncio.sleep(delay)
