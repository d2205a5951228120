"""The ext_proc gRPC service Envoy calls for the upstream attempts that must be translated (grpc.aio)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Mapping

import grpc
from envoy.service.ext_proc.v3 import external_processor_pb2 as ep
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as ep_grpc
from google.protobuf import struct_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from extproc import message_costs
from extproc.exchange import RulesExchange, TranslatedExchange
from extproc.message_costs import MessageCosts
from extproc.translators import translator_for
from switchyard.addresses import bind_grpc
from switchyard.contract import (
    ATTEMPT_METADATA_NAMESPACE,
    ATTEMPT_RESPONSE_HEADERS_KEY,
    AUTHORITY_ATTRIBUTE,
    PATH_ATTRIBUTE,
    RULES_HEADER,
    TRANSLATE_HEADER,
    TRANSLATE_STREAM_HEADER,
    decode_translation_request,
    marker_attribute,
)

log = logging.getLogger("switchyard.extproc")


class AttemptProcessor(ep_grpc.ExternalProcessorServicer):  # type: ignore[misc]
    """Translates the attempts Envoy sends here: those whose target speaks another API than the client.

    Stateless: what to translate, to which model, arrives with each attempt in the `x-switchyard-translate`
    header (`TranslationRequest`, switchyard/contract.py), which Envoy sends as a request attribute with the
    request body, so any ext_proc process can take any attempt from its start."""

    def __init__(self, costs: MessageCosts | None = None) -> None:
        self._costs = costs

    async def Process(
        self, request_iterator: AsyncIterator[ep.ProcessingRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[ep.ProcessingResponse]:
        attempt = _Attempt()
        costs = self._costs
        if costs is not None:
            costs.streams += 1
        async for request in request_iterator:
            if costs is None:
                yield attempt.answer(request)
            else:
                cpu_started, wall_started = time.thread_time(), time.perf_counter()
                response = attempt.answer(request)
                costs.count(request.WhichOneof("request") or "none", cpu_started, wall_started)
                yield response
            if attempt.over:
                # Done: end the stream ourselves rather than wait for Envoy to cancel it. grpc.aio leaks
                # native memory on every cancelled call (grpc/grpc#43360), about 100 bytes a request.
                return


class _Attempt:
    """One attempt's messages, answered in turn: the request body starts its exchange, the response body (if
    Envoy sends it) goes through it."""

    def __init__(self) -> None:
        self.exchange: TranslatedExchange | RulesExchange | None = None
        self.over = False

    def answer(self, request: ep.ProcessingRequest) -> ep.ProcessingResponse:
        kind = request.WhichOneof("request")
        exchange = self.exchange
        if exchange is not None:
            response = _translated(exchange, request, kind)
        elif kind == "request_body":
            exchange = self.exchange = _exchange_for(request.attributes)
            if exchange is None:
                # Envoy only sends marked attempts. Unchanged, the body gets no headers for it: Envoy's
                # translated_request.lua then answers an error rather than send it on untranslated.
                self.over = True
                return _PASS_THROUGH[kind]
            response = exchange.on_request_body(request.request_body.body)
        else:
            # Envoy waits for an answer to every message: anything unexpected is let through unchanged rather
            # than left to time out.
            log.debug("unexpected ext_proc message %s", kind)
            response = _PASS_THROUGH[kind or "request_headers"]
        self.over = exchange is not None and exchange.finished
        return response


_FILTER_ATTRIBUTES = "envoy.filters.http.ext_proc"
_MARKERS = tuple(marker_attribute(h) for h in (TRANSLATE_HEADER, TRANSLATE_STREAM_HEADER, RULES_HEADER))


def _exchange_for(attributes: Mapping[str, struct_pb2.Struct]) -> TranslatedExchange | RulesExchange | None:
    """The exchange for an attempt, from the request attributes Envoy sends with its body."""
    if _FILTER_ATTRIBUTES not in attributes:
        return None
    fields = attributes[_FILTER_ATTRIBUTES].fields
    value = next((fields[m].string_value for m in _MARKERS if m in fields), None)
    if value is None:
        return None
    request = decode_translation_request(value)
    if request is None:
        log.error("malformed %s header", TRANSLATE_HEADER)
        return None
    translator = translator_for(request.client_api, request.provider_api)
    if translator is None:
        return RulesExchange(request) if request.body_rules else None
    authority, path = fields[AUTHORITY_ATTRIBUTE].string_value, fields[PATH_ATTRIBUTE].string_value
    return TranslatedExchange(request, translator, authority, path)


def _provider_headers(request: ep.ProcessingRequest) -> dict[str, str]:
    """The provider's response headers, which translated_request.lua put in the metadata Envoy forwards."""
    attempt = request.metadata_context.filter_metadata.get(ATTEMPT_METADATA_NAMESPACE)
    if attempt is None or ATTEMPT_RESPONSE_HEADERS_KEY not in attempt.fields:
        return {}
    headers = attempt.fields[ATTEMPT_RESPONSE_HEADERS_KEY].struct_value.fields
    return {name: value.string_value for name, value in headers.items()}


def _translated(
    exchange: TranslatedExchange | RulesExchange, request: ep.ProcessingRequest, kind: str | None
) -> ep.ProcessingResponse:
    if kind == "response_body":
        provider_headers = _provider_headers(request) if exchange.needs_provider_headers else {}
        return exchange.on_response_body(request.response_body, provider_headers)
    return _PASS_THROUGH[kind or "request_headers"]


_PASS_THROUGH = {
    "request_headers": ep.ProcessingResponse(request_headers=ep.HeadersResponse()),
    "request_body": ep.ProcessingResponse(request_body=ep.BodyResponse()),
    "request_trailers": ep.ProcessingResponse(request_trailers=ep.TrailersResponse()),
    "response_headers": ep.ProcessingResponse(response_headers=ep.HeadersResponse()),
    "response_body": ep.ProcessingResponse(response_body=ep.BodyResponse()),
    "response_trailers": ep.ProcessingResponse(response_trailers=ep.TrailersResponse()),
}


async def serve(listen: str, instance: str | None = None, drain_timeout: float = 60.0) -> int:
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
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if costs is not None:
        loop.add_signal_handler(signal.SIGUSR1, costs.write)
    await stop.wait()
    stop.clear()
    # Drain: health first, so whoever checks it stops sending; then no new streams, while the attempts in
    # flight (a stream being translated can last minutes) get up to the drain timeout. A second signal: at once.
    await health_servicer.enter_graceful_shutdown()
    started = loop.time()
    graceful = asyncio.create_task(server.stop(grace=drain_timeout))
    await asyncio.sleep(0)  # the stop has begun: new streams are refused from here on
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
        await server.stop(grace=None)
        await graceful
    second_signal.cancel()
    log.info("ext_proc %s stopped after %.1fs", name, loop.time() - started)
    return 0
