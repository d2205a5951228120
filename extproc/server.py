"""The ext_proc gRPC service Envoy calls for the upstream attempts that must be translated.

Served by a small HTTP/2 gRPC server of our own (extproc/h2_grpc.py: grpcio cost about five times the
translation per stream); the grpc.aio servicer is kept to measure against (`SWITCHYARD_EXTPROC_SERVER=grpcio`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import grpc
from envoy.service.ext_proc.v3 import external_processor_pb2 as ep
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as ep_grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from extproc import h2_grpc, h2_wire, message_costs
from extproc.exchange import RulesExchange, TranslatedExchange
from extproc.guard_exchange import GuardExchange
from extproc.message_costs import MessageCosts
from extproc.translators import translator_for
from switchyard.addresses import bind_grpc
from switchyard.contract import (
    ATTEMPT_METADATA_NAMESPACE,
    ATTEMPT_RESPONSE_HEADERS_KEY,
    EXTPROC_READS_HEADERS,
    GUARDRAILS_HEADER,
    SIGNED_HEADERS,
    TRANSLATE_HEADER,
    decode_translation_request,
)

log = logging.getLogger("switchyard.extproc")


class AttemptProcessor(ep_grpc.ExternalProcessorServicer):  # type: ignore[misc]
    """Translates the attempts Envoy sends here: those whose target speaks another API than the client.

    Stateless: what to translate, to which model, arrives with each attempt in the `x-switchyard-translate`
    header (`TranslationRequest`, switchyard/contract.py), so any ext_proc process can take any attempt from its
    start."""

    def __init__(self, costs: MessageCosts | None = None) -> None:
        self._costs = costs

    async def Process(
        self, request_iterator: AsyncIterator[ep.ProcessingRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[ep.ProcessingResponse]:
        spec = next((value for key, value in context.invocation_metadata() or () if key == GUARDRAILS_HEADER), None)
        if spec is not None:
            async for response in self._guard(GuardExchange(str(spec)), request_iterator):
                yield response
            return
        attempt = _Attempt()
        costs = self._costs
        if costs is not None:
            costs.streams += 1
        async for request in request_iterator:
            # The answers come serialized (extproc/answer_bytes.py): parsed again here, for grpc.aio to serialize.
            if costs is None:
                yield ep.ProcessingResponse.FromString(attempt.answer(request))
            else:
                cpu_started, wall_started = time.thread_time(), time.perf_counter()
                response = ep.ProcessingResponse.FromString(attempt.answer(request))
                costs.count(request.WhichOneof("request") or "none", cpu_started, wall_started)
                yield response
            if attempt.over:
                # Done: end the stream ourselves rather than wait for Envoy to cancel it. grpc.aio leaks
                # native memory on every cancelled call (grpc/grpc#43360), about 100 bytes a request.
                return

    async def _guard(
        self, exchange: GuardExchange, request_iterator: AsyncIterator[ep.ProcessingRequest]
    ) -> AsyncIterator[ep.ProcessingResponse]:
        """A guarded client request's stream (the guardrails filter, not an attempt)."""
        costs = self._costs
        if costs is not None:
            costs.streams += 1
        async for request in request_iterator:
            cpu_started, wall_started = time.thread_time(), time.perf_counter()
            response = await exchange.answer(request)
            if costs is not None:
                costs.count(request.WhichOneof("request") or "none", cpu_started, wall_started)
            yield response
            if exchange.finished:
                return


class _Attempt:
    """One attempt's messages, answered in turn: the request headers start its exchange, the request body and
    the response body (if Envoy sends it) go through it."""

    def __init__(self) -> None:
        self.exchange: TranslatedExchange | RulesExchange | None = None
        self.over = False

    def answer(self, request: ep.ProcessingRequest) -> bytes:
        """The serialized `ProcessingResponse` to `request`."""
        kind = request.WhichOneof("request")
        exchange = self.exchange
        if exchange is not None:
            response = _translated(exchange, request, kind)
        elif kind == "request_headers":
            marker, carried_by, signed = _read_headers(request.request_headers)
            exchange = self.exchange = _exchange_for(marker)
            if exchange is None:
                # Envoy only sends attempts carrying a marker: anything else goes on as it is.
                return _PASS_THROUGH[kind]
            response = exchange.on_request_headers(signed, carried_by)
        else:
            # Envoy waits for an answer to every message: anything unexpected is let through unchanged rather
            # than left to time out.
            log.debug("unexpected ext_proc message %s", kind)
            response = _PASS_THROUGH[kind or "request_headers"]
        self.over = exchange is not None and exchange.finished
        return response


_READ = frozenset(EXTPROC_READS_HEADERS)


def _read_headers(headers: ep.HttpHeaders) -> tuple[str | None, str, dict[str, str]]:
    """The attempt's marker (its first) and the header that carried it, and the headers a signature covers, in
    one pass over Envoy's headers."""
    marker = None
    carried_by = ""
    signed = {}
    for h in headers.headers.headers:
        key = h.key
        if key in _READ:
            value = h.raw_value.decode("latin-1") if h.raw_value else h.value
            if key in SIGNED_HEADERS:
                signed[key] = value
            elif marker is None:
                marker, carried_by = value, key
    return marker, carried_by, signed


def _exchange_for(value: str | None) -> TranslatedExchange | RulesExchange | None:
    if value is None:
        return None
    request = decode_translation_request(value)
    if request is None:
        log.error("malformed %s header", TRANSLATE_HEADER)
        return None
    translator = translator_for(request.client_api, request.provider_api, request.operation)
    if translator is None:
        return RulesExchange(request) if request.body_rules else None
    return TranslatedExchange(request, translator)


def _provider_headers(request: ep.ProcessingRequest) -> dict[str, str]:
    """The provider's response headers, which translated_response.lua put in the metadata Envoy forwards."""
    attempt = request.metadata_context.filter_metadata.get(ATTEMPT_METADATA_NAMESPACE)
    if attempt is None or ATTEMPT_RESPONSE_HEADERS_KEY not in attempt.fields:
        return {}
    headers = attempt.fields[ATTEMPT_RESPONSE_HEADERS_KEY].struct_value.fields
    return {name: value.string_value for name, value in headers.items()}


def _translated(exchange: TranslatedExchange | RulesExchange, request: ep.ProcessingRequest, kind: str | None) -> bytes:
    if kind == "request_body":
        return exchange.on_request_body(request.request_body.body)
    if kind == "response_body":
        provider_headers = _provider_headers(request) if exchange.needs_provider_headers else {}
        return exchange.on_response_body(request.response_body, provider_headers)
    return _PASS_THROUGH[kind or "request_headers"]


_PASS_THROUGH: dict[str, bytes] = {
    kind: ep.ProcessingResponse(**{kind: answer}).SerializeToString()
    for kind, answer in (
        ("request_headers", ep.HeadersResponse()),
        ("request_body", ep.BodyResponse()),
        ("request_trailers", ep.TrailersResponse()),
        ("response_headers", ep.HeadersResponse()),
        ("response_body", ep.BodyResponse()),
        ("response_trailers", ep.TrailersResponse()),
    )
}


class _ProcessCall:
    """One attempt's Process stream on the HTTP/2 server: each message answered where it arrives."""

    def __init__(self, stream: h2_grpc.Stream, costs: MessageCosts | None) -> None:
        self._stream = stream
        self._attempt = _Attempt()
        self._costs = costs
        if costs is not None:
            costs.streams += 1

    def on_message(self, message: bytes) -> None:
        costs = self._costs
        cpu_started, wall_started = (time.thread_time(), time.perf_counter()) if costs is not None else (0.0, 0.0)
        try:
            request = ep.ProcessingRequest.FromString(message)
            answer = self._attempt.answer(request)
        except Exception:  # Envoy fails the attempt rather than send it on unprocessed
            log.exception("ext_proc failed on a message")
            self._stream.finish(h2_wire.GRPC_INTERNAL, "ext_proc failed")
            return
        self._stream.send_message(answer)
        if costs is not None:
            costs.count(request.WhichOneof("request") or "none", cpu_started, wall_started)
        if self._attempt.over:
            # Done: end the stream ourselves rather than wait for Envoy to end it.
            self._stream.finish()

    def on_end(self) -> None:
        self._stream.finish()

    def on_cancel(self) -> None:
        pass


class _GuardCall:
    """A guarded client request's Process stream on the HTTP/2 server. Checks may await (a plugin's time budget),
    so messages are answered by one task per stream, in the order they came (Envoy may send a streamed answer's
    chunks before the previous ones are answered)."""

    def __init__(self, stream: h2_grpc.Stream, spec: str, costs: MessageCosts | None) -> None:
        self._stream = stream
        self._exchange = GuardExchange(spec)
        self._costs = costs
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._answer_in_turn())
        if costs is not None:
            costs.streams += 1

    def on_message(self, message: bytes) -> None:
        self._queue.put_nowait(message)

    def on_end(self) -> None:
        self._queue.put_nowait(None)

    def on_cancel(self) -> None:
        self._task.cancel()

    async def _answer_in_turn(self) -> None:
        stream = self._stream
        costs = self._costs
        while (message := await self._queue.get()) is not None:
            cpu_started, wall_started = time.thread_time(), time.perf_counter()
            try:
                request = ep.ProcessingRequest.FromString(message)
                answer = (await self._exchange.answer(request)).SerializeToString()
            except Exception:  # Envoy refuses the request (failure_mode_allow off): closed, never unchecked
                log.exception("guardrails failed on a message")
                stream.finish(h2_wire.GRPC_INTERNAL, "guardrails failed")
                stream.connection.write_out()
                return
            stream.send_message(answer)
            if costs is not None:
                costs.count(request.WhichOneof("request") or "none", cpu_started, wall_started)
            if self._exchange.finished:
                stream.finish()
            stream.connection.write_out()
            if self._exchange.finished:
                return
        stream.finish()
        stream.connection.write_out()


def _process_call(stream: h2_grpc.Stream, costs: MessageCosts | None) -> h2_grpc.Call:
    """A guard stream when its metadata carries the rules (the guardrails filter), else an attempt's."""
    spec = stream.request_headers.get(GUARDRAILS_HEADER.encode())
    if spec is not None:
        return _GuardCall(stream, spec.decode("latin-1"), costs)
    return _ProcessCall(stream, costs)


class _Health:
    """grpc.health.v1 for Envoy's health checks (Check) and for watchers: SERVING until the drain starts."""

    def __init__(self) -> None:
        self.serving = True
        self._watchers: list[h2_grpc.Stream] = []

    def _answer(self) -> bytes:
        status = health_pb2.HealthCheckResponse.SERVING if self.serving else health_pb2.HealthCheckResponse.NOT_SERVING
        answer: bytes = health_pb2.HealthCheckResponse(status=status).SerializeToString()
        return answer

    def check(self, stream: h2_grpc.Stream) -> h2_grpc.Call:
        health = self

        class Check:
            def on_message(self, message: bytes) -> None:
                stream.send_message(health._answer())
                stream.finish()

            def on_end(self) -> None:
                stream.finish()

            def on_cancel(self) -> None:
                pass

        return Check()

    def watch(self, stream: h2_grpc.Stream) -> h2_grpc.Call:
        health = self

        class Watch:
            def on_message(self, message: bytes) -> None:
                stream.send_message(health._answer())
                health._watchers.append(stream)

            def on_end(self) -> None:
                pass

            def on_cancel(self) -> None:
                if stream in health._watchers:
                    health._watchers.remove(stream)

        return Watch()

    def stop_serving(self) -> None:
        self.serving = False
        for stream in self._watchers:
            stream.send_message(self._answer())
            stream.connection.write_out()


_PROCESS_PATH = "/envoy.service.ext_proc.v3.ExternalProcessor/Process"
SERVER_FLAVOUR_ENV = "SWITCHYARD_EXTPROC_SERVER"  # "grpcio": grpc.aio instead (for comparison)


LOOP_ENV = "SWITCHYARD_EXTPROC_LOOP"  # "asyncio": the standard event loop even where uvloop is installed


def run(listen: str, instance: str | None = None, drain_timeout: float = 60.0) -> int:
    """Serve on uvloop where it is installed: libuv's loop spent about 50 us less CPU per translated attempt
    (three messages) than asyncio's, measured side by side (docs/benchmark.md). Without it (or with
    SWITCHYARD_EXTPROC_LOOP=asyncio, to measure against), asyncio's own loop."""
    if os.environ.get(LOOP_ENV) != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(serve(listen, instance, drain_timeout))
    return asyncio.run(serve(listen, instance, drain_timeout))


async def serve(listen: str, instance: str | None = None, drain_timeout: float = 60.0) -> int:
    if os.environ.get(SERVER_FLAVOUR_ENV) == "grpcio":
        return await serve_grpcio(listen, instance, drain_timeout)
    costs = message_costs.from_environment()
    health = _Health()
    server = h2_grpc.H2GrpcServer(
        {
            _PROCESS_PATH: lambda stream: _process_call(stream, costs),
            "/grpc.health.v1.Health/Check": health.check,
            "/grpc.health.v1.Health/Watch": health.watch,
        }
    )
    if not await server.start(listen):
        return 2
    name = instance or f"{socket.gethostname()}:{os.getpid()}"
    log.info("ext_proc %s listening on %s", name, listen)

    async def stop_now(graceful: asyncio.Task[None]) -> None:
        graceful.cancel()

    await _serve_until_stopped(
        name, costs, drain_timeout, health.stop_serving, lambda: server.drain(drain_timeout), stop_now
    )
    server.close()
    return 0


async def _serve_until_stopped(
    name: str,
    costs: MessageCosts | None,
    drain_timeout: float,
    stop_serving: Callable[[], Awaitable[None] | None],
    drain: Callable[[], Coroutine[Any, Any, Any]],
    stop_now: Callable[[asyncio.Task[Any]], Awaitable[None]],
) -> None:
    """Serve until SIGINT/SIGTERM, then drain: health first, so whoever checks it stops sending; then no new
    streams, while the attempts in flight (a stream being translated can last minutes) get up to the drain
    timeout. A second signal stops at once. The same for both server flavours."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if costs is not None:
        loop.add_signal_handler(signal.SIGUSR1, costs.write)
    await stop.wait()
    stop.clear()
    stopped_serving = stop_serving()
    if stopped_serving is not None:
        await stopped_serving
    started = loop.time()
    graceful: asyncio.Task[Any] = asyncio.create_task(drain())
    await asyncio.sleep(0)  # the drain has begun: new streams are refused from here on
    log.info(
        "ext_proc %s draining: NOT_SERVING, no new streams; attempts in flight get up to %gs "
        "(a second Ctrl-C/SIGTERM stops at once)",
        name,
        drain_timeout,
    )
    second_signal = asyncio.create_task(stop.wait())
    await asyncio.wait((graceful, second_signal), return_when=asyncio.FIRST_COMPLETED)
    if not graceful.done():
        log.warning("ext_proc %s: second signal, stopping now", name)
        await stop_now(graceful)
    second_signal.cancel()
    log.info("ext_proc %s stopped after %.1fs", name, loop.time() - started)


async def serve_grpcio(listen: str, instance: str | None = None, drain_timeout: float = 60.0) -> int:
    """The same service on grpc.aio: the flavour this replaced, kept to measure against (bench, tests)."""
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
    costs = message_costs.from_environment()
    ep_grpc.add_ExternalProcessorServicer_to_server(AttemptProcessor(costs), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if not bind_grpc(server, listen):
        log.error("cannot listen on %s", listen)
        return 2
    await server.start()
    # Nothing to wait for: every attempt carries what it needs.
    await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    name = instance or f"{socket.gethostname()}:{os.getpid()}"
    log.info("ext_proc %s listening on %s", name, listen)

    async def stop_now(graceful: asyncio.Task[None]) -> None:
        await server.stop(grace=None)
        await graceful

    await _serve_until_stopped(
        name,
        costs,
        drain_timeout,
        health_servicer.enter_graceful_shutdown,
        lambda: server.stop(grace=drain_timeout),
        stop_now,
    )
    return 0
