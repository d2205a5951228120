"""The ext_proc gRPC service Envoy calls for every upstream attempt (grpc.aio)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator

import grpc
from envoy.service.ext_proc.v3 import external_processor_pb2 as ep
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as ep_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from extproc.attempt import CONTINUE_HEADERS, Attempt, TargetResolver, unknown_target_response
from extproc.directory_client import follow_directory
from extproc.exchange import TranslatedExchange
from extproc.targets import TargetIndex

log = logging.getLogger("switchyard.extproc")


class AttemptProcessor(ep_grpc.ExternalProcessorServicer):  # type: ignore[misc]
    def __init__(self, index: TargetIndex) -> None:
        self.resolver = TargetResolver(index)

    async def Process(
        self, request_iterator: AsyncIterator[ep.ProcessingRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[ep.ProcessingResponse]:
        attempt: Attempt | None = None
        exchange: TranslatedExchange | None = None
        async for request in request_iterator:
            kind = request.WhichOneof("request")
            if exchange is not None:
                yield _translated(exchange, request, kind)
                continue
            if kind == "request_headers":
                target, endpoint, client_model = self.resolver.resolve(request)
                if target is None:
                    log.error(
                        "no rewrite entry for the picked endpoint (table version %r)",
                        self.resolver.index.version,
                    )
                    yield unknown_target_response(f"table version {self.resolver.index.version or 'none yet'}")
                    return
                attempt = Attempt(target, endpoint, client_model)
                translation = target.translations.get(endpoint)
                if translation is not None:
                    exchange = TranslatedExchange(attempt, *translation)
                    yield exchange.on_request_headers()
                elif request.request_headers.end_of_stream or not attempt.renames_model:
                    # Headers are all this attempt changes. When the route sends no body at all, this is the
                    # only message; when it does, the body message below still resets content-length.
                    yield attempt.headers_only_response()
                else:
                    yield CONTINUE_HEADERS
            elif kind == "request_body" and attempt is not None:
                yield attempt.body_response(request.request_body.body)
            else:
                # Only the modes the control plane configures should reach us, but Envoy waits for an answer to
                # every message: anything else is let through unchanged rather than left to time out.
                log.debug("unexpected ext_proc message %s", kind)
                yield _PASS_THROUGH[kind]


def _translated(exchange: TranslatedExchange, request: ep.ProcessingRequest, kind: str | None) -> ep.ProcessingResponse:
    if kind == "request_body":
        return exchange.on_request_body(request.request_body.body)
    if kind == "response_headers":
        return exchange.on_response_headers(request.response_headers)
    if kind == "response_body":
        return exchange.on_response_body(request.response_body)
    return _PASS_THROUGH[kind or "request_headers"]


_PASS_THROUGH = {
    "request_headers": ep.ProcessingResponse(request_headers=ep.HeadersResponse()),
    "request_body": ep.ProcessingResponse(request_body=ep.BodyResponse()),
    "request_trailers": ep.ProcessingResponse(request_trailers=ep.TrailersResponse()),
    "response_headers": ep.ProcessingResponse(response_headers=ep.HeadersResponse()),
    "response_body": ep.ProcessingResponse(response_body=ep.BodyResponse()),
    "response_trailers": ep.ProcessingResponse(response_trailers=ep.TrailersResponse()),
}


async def serve(listen: str, controlplane: str, instance: str | None = None) -> int:
    index = TargetIndex()
    server = grpc.aio.server(
        options=[
            # Bodies are buffered through gRPC; the default 4 MiB would break large prompts.
            ("grpc.max_receive_message_length", 128 * 1024 * 1024),
            # gRPC's default 64 KiB stream window costs a window-update round trip through Python every
            # 64 KiB of a large prompt; Envoy already offers a large window on its side.
            ("grpc.http2.lookahead_bytes", 16 * 1024 * 1024),
            ("grpc.max_send_message_length", 128 * 1024 * 1024),
        ]
    )
    ep_grpc.add_ExternalProcessorServicer_to_server(AttemptProcessor(index), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if server.add_insecure_port(listen) == 0:
        log.error("cannot listen on %s", listen)
        return 2
    await server.start()
    name = instance or f"{socket.gethostname()}:{os.getpid()}"
    log.info("ext_proc %s listening on %s, following control plane %s", name, listen, controlplane)
    follower = asyncio.create_task(follow_directory(controlplane, name, index))

    async def mark_ready() -> None:
        while not index.ready:
            await asyncio.sleep(0.05)
        await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)

    ready = asyncio.create_task(mark_ready())
    await health_servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for task in (follower, ready):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    await server.stop(grace=2.0)
    return 0
