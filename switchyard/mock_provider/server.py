"""The aiohttp app: one catch-all handler that records, applies failure rules, then answers
through the configured wire API (:mod:`switchyard.mock_provider.apis`).

A single route (instead of one per endpoint) keeps routing cost flat and lets failure rules
apply to any path, including ones the mock does not otherwise understand.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
import struct
from collections import deque
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import CIMultiDictProxy, MultiMapping

from switchyard.mock_provider.apis import Call, Stream, make_api
from switchyard.mock_provider.rules import Rule, RuleEngine, rules_from_json

log = logging.getLogger("switchyard.mock_provider")

ADMIN_PREFIX = "/_mock/"
MAX_RECORDED = 10_000
MAX_HANG_S = 3600.0
# Polling is only the fallback for apps run without handler_cancellation (e.g. plain TestServer).
_HANG_POLL_S = 0.25
_DEFAULT_MODEL = "mock-model"
_MAX_BODY = 64 * 1024 * 1024  # long prompts and base64 images exceed aiohttp's 1 MiB default


@dataclass(frozen=True, slots=True)
class Settings:
    name: str = "mock"
    stream_chunks: int = 5
    chunk_delay_ms: float = 20.0
    log_requests: bool = False
    api: str = "openai"  # a key of apis.APIS: the wire API the mock speaks
    # A request arriving on a connection idle this long (seconds) is reset, as by a server whose keep-alive
    # timeout fired as it arrived: the race every HTTP/1.1 client meets, made certain. 0: never.
    close_idle_after: float = 0.0


@dataclass(slots=True)
class Recorded:
    """A received request; headers/query stay as aiohttp's proxies and are only converted
    when someone reads the recording, keeping the per-request cost to one append."""

    seq: int
    method: str
    path: str
    query: MultiMapping[str]
    headers: CIMultiDictProxy[str]
    body: Any
    body_bytes: int
    action: str
    # The client's address and port as this mock saw them: requests that share it came over one connection,
    # so a test can tell a gateway that keeps its connections from one that opens one per request.
    connection: str

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "method": self.method,
            "path": self.path,
            "query": dict(self.query),
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": self.body,
            "body_bytes": self.body_bytes,
            "action": self.action,
            "connection": self.connection,
        }


def path_model(path: str) -> str | None:
    """Azure deployment, legacy engine or Gemini model name, used when the body carries no model."""
    parts = path.split("/")
    if len(parts) >= 2 and parts[-2] == "models" and ":" in parts[-1]:
        return parts[-1].split(":", 1)[0] or None  # Gemini: .../models/{model}:{method}
    if len(parts) >= 4 and parts[-3] == "model" and parts[-1] in ("converse", "converse-stream", "count-tokens"):
        return parts[-2] or None  # Bedrock: /model/{modelId}/converse
    for marker in ("deployments", "engines"):
        if marker in parts:
            i = parts.index(marker) + 1
            if i < len(parts) and parts[i]:
                return parts[i]
    return None


_INVALID_JSON = object()


def _parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return _INVALID_JSON


class MockProvider:
    """Shared state of one provider instance: settings, rules and the request recording."""

    def __init__(self, settings: Settings, rules: Sequence[Rule] = (), seed: int = 0) -> None:
        self.settings = settings
        self.engine = RuleEngine(rules, seed)
        self.recorded: deque[Recorded] = deque(maxlen=MAX_RECORDED)
        self._seq = 0
        self.api = make_api(settings.api, settings.name, settings.stream_chunks)
        self._headers = {"x-mock-provider": settings.name}
        # When each open connection's last request ended (close_idle_after), by transport.
        self._idle_since: dict[asyncio.Transport, float] = {}

    # -- helpers -------------------------------------------------------------------------
    def _json(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> web.Response:
        headers = self._headers if extra is None else {**self._headers, **extra}
        return web.Response(status=status, body=body, content_type="application/json", headers=headers)

    def _error(self, status: int, message: str, retry_after: str | None = None) -> web.Response:
        extra = {"retry-after": retry_after} if retry_after else None
        return self._json(status, self.api.error_body(status, message), extra)

    def _injected(self, rule: Rule, status: int) -> web.Response:
        """A rule's failure in the API's own shape; a 429 says `Retry-After: 1` unless the rule says otherwise."""
        message = f"mock-provider {self.settings.name}: injected {status}"
        reply = self.api.injected_error(status, message, rule.error_type)
        retry_after = ("1" if status == 429 else "") if rule.retry_after is None else rule.retry_after
        extra = {**reply.headers, **({"retry-after": retry_after} if retry_after else {})}
        return self._json(reply.status, reply.body, extra or None)

    def _dump(self, obj: Any) -> web.Response:
        return self._json(200, json.dumps(obj).encode())

    # -- entry point ---------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await self._admin(request, request.path)  # never reset: tests read what the mock received
        if not self.settings.close_idle_after or request.transport is None:
            return await self._handle(request)
        transport, now = request.transport, asyncio.get_running_loop().time()
        since = self._idle_since.pop(transport, None)
        if since is not None and now - since >= self.settings.close_idle_after:
            log.info("%s: reset a request on a connection idle for %.1fs", self.settings.name, now - since)
            return _reset(request)
        try:
            return await self._handle(request)
        finally:
            if not transport.is_closing():
                if len(self._idle_since) >= MAX_RECORDED:  # connections closed since: forget them
                    self._idle_since = {t: at for t, at in self._idle_since.items() if not t.is_closing()}
                self._idle_since[transport] = asyncio.get_running_loop().time()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        raw = await request.read()
        body = _parse_body(raw)
        model = body.get("model") if isinstance(body, dict) else None
        if not isinstance(model, str) or not model:
            model = path_model(path)
        rule = self.engine.decide(model, path, request.headers)
        action = "ok" if rule is None else rule.action
        self._seq += 1
        seq = self._seq
        self.recorded.append(
            Recorded(
                seq=seq,
                method=request.method,
                path=path,
                query=request.query,
                headers=request.headers,
                body=raw.decode("utf-8", "replace") if body is _INVALID_JSON else body,
                body_bytes=len(raw),
                action=action,
                connection=_peer(request),
            )
        )
        if self.settings.log_requests:
            log.info("%s %s %s model=%s action=%s", self.settings.name, request.method, path, model, action)
        if rule is not None:
            if rule.latency_ms:
                await asyncio.sleep(rule.latency_ms / 1000)
            if rule.reset:
                return _reset(request)
            if rule.hang:
                return await _hang(request)
            if rule.status is not None:
                return self._injected(rule, rule.status)
        call = Call(
            method=request.method,
            path=path,
            body=body,
            malformed=body is _INVALID_JSON,
            model=model or _DEFAULT_MODEL,
            size=len(raw),
            seq=seq,
            completion_tokens=None if rule is None else rule.completion_tokens,
            headers={k.lower(): v for k, v in request.headers.items()},
            raw_path=request.raw_path,
            raw_body=raw,
        )
        answer = self.api.answer(call)
        if isinstance(answer, Stream):
            return await self._stream(request, answer, None if rule is None else rule.stream_error_after)
        return self._json(answer.status, answer.body, dict(answer.headers) or None)

    async def _stream(self, request: web.Request, stream: Stream, error_after: int | None) -> web.StreamResponse:
        paced, tail = stream.paced, stream.tail
        if error_after is not None:
            # The error takes the place of the next content delta, so it comes after the usual pause.
            make_error = stream.error_event or self.api.stream_error
            error = make_error(f"mock-provider {self.settings.name}: injected stream error")
            paced, tail = [*paced[: min(error_after, stream.deltas)], error], ()
        resp = web.StreamResponse(
            headers={**self._headers, "content-type": stream.content_type, "cache-control": "no-cache"}
        )
        await resp.prepare(request)
        delay = self.settings.chunk_delay_ms / 1000
        # Each write goes straight to the transport (chunked encoding, no compression), so every
        # event reaches the client on its own: tests rely on that to check streaming passthrough.
        with suppress(ConnectionError):
            for event in stream.head:
                await resp.write(event)
            for i, event in enumerate(paced):
                if i and delay:
                    await asyncio.sleep(delay)
                await resp.write(event)
            for event in tail:
                await resp.write(event)
            await resp.write_eof()
        return resp

    # -- admin API -----------------------------------------------------------------------
    async def _admin(self, request: web.Request, path: str) -> web.StreamResponse:
        route = (request.method, path.rstrip("/"))
        if route == ("GET", "/_mock/health"):
            return self._dump({"name": self.settings.name, "status": "ok"})
        if route == ("GET", "/_mock/requests"):
            return self._dump({"requests": [r.to_json() for r in self.recorded]})
        if route == ("DELETE", "/_mock/requests"):
            cleared = len(self.recorded)
            self.recorded.clear()
            return self._dump({"cleared": cleared})
        if route == ("GET", "/_mock/rules"):
            return self._dump([r.to_json() for r in self.engine.rules])
        if route == ("PUT", "/_mock/rules"):
            try:
                rules = rules_from_json(json.loads(await request.read()))
            except ValueError as exc:  # JSONDecodeError is a ValueError too
                return self._error(400, f"invalid rules: {exc}")
            self.engine.replace(rules)
            return self._dump([r.to_json() for r in rules])
        return self._error(404, f"Unknown admin URL: {request.method} {path}")


def _peer(request: web.Request) -> str:
    transport = request.transport
    peer = None if transport is None else transport.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else ""


def _reset(request: web.Request) -> web.Response:
    """Abort with SO_LINGER 0 so the peer sees an RST, i.e. a reset rather than a clean close.

    The returned response is never sent: aiohttp finds the transport closed and drops it quietly.
    """
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response()


async def _hang(request: web.Request) -> web.Response:
    """Answer nothing until the client leaves (or an hour passes, so leaks stay bounded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + MAX_HANG_S
    while (transport := request.transport) is not None and not transport.is_closing():
        if loop.time() >= deadline:
            return _reset(request)
        await asyncio.sleep(_HANG_POLL_S)
    return web.Response()


def build_app(provider: MockProvider) -> web.Application:
    app = web.Application(client_max_size=_MAX_BODY)
    app.router.add_route("*", "/{tail:.*}", provider.handle)
    return app


async def start(
    provider: MockProvider, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    """Start serving and return the runner (call ``cleanup()`` to stop) and the bound port.

    handler_cancellation makes a hanging or streaming handler stop as soon as its client goes
    away; the short shutdown timeout keeps such handlers from delaying process exit.
    """
    runner = web.AppRunner(
        build_app(provider),
        handle_signals=False,
        access_log=None,
        handler_cancellation=True,
        shutdown_timeout=0.25,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = runner.addresses[0]
    return runner, int(bound[1])
