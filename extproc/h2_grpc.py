"""A small gRPC server over HTTP/2: only what Envoy's gRPC client uses to call this ext_proc and check its health.

Why not grpcio: measured with a no-op servicer, grpc.aio spends about 640 us of CPU on one two-message stream
(its poller thread hands every event to the asyncio loop), grpcio's synchronous server 735 us and grpclib 495 us,
while our whole translation of an attempt takes about 135 us. Here each connection is one asyncio protocol: a
frame is parsed where it arrives, a message answered at once by plain (synchronous) code, and everything one
read produced goes out in one write. No task, thread or future per stream.

What it speaks: HTTP/2 frames as RFC 9113 has them (padding, priority and CONTINUATION accepted; no server push),
HPACK through the `hpack` package (decoding must track Envoy's dynamic table; our own headers are constant, sent
as literals that index nothing), flow control both ways, and gRPC's length-prefixed messages, uncompressed (we
announce no compression, so Envoy sends none). Draining sends GOAWAY and refuses new streams; the streams in
flight go on.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Protocol

from hpack import Decoder

from switchyard.addresses import OWNER_ONLY, TcpAddress, parse_address

log = logging.getLogger("switchyard.extproc")

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY = 0x4, 0x8, 0x20
NO_ERROR, PROTOCOL_ERROR, REFUSED_STREAM = 0x0, 0x1, 0x7
SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE, SETTINGS_MAX_CONCURRENT_STREAMS = 0x4, 0x5, 0x3
MAX_WINDOW = 2**31 - 1
DEFAULT_WINDOW = 65_535
OUR_MAX_FRAME = 1 << 20  # Envoy may send a large body in few frames
GRPC_OK, GRPC_INTERNAL, GRPC_UNIMPLEMENTED = 0, 13, 12


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream.to_bytes(4, "big") + payload


def _hpack_int(value: int, prefix_bits: int, first: int = 0) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def _literal(name: bytes, value: bytes) -> bytes:
    """A header as a literal that is never indexed (new name, no Huffman): no dynamic table on our side."""
    return b"\x00" + _hpack_int(len(name), 7) + name + _hpack_int(len(value), 7) + value


# `:status: 200` (static index 8) and `content-type: application/grpc` (name at static index 31).
RESPONSE_HEADERS = b"\x88" + _hpack_int(31, 4) + _hpack_int(16, 7) + b"application/grpc"


def _trailers(status: int, message: str = "") -> bytes:
    block = _literal(b"grpc-status", str(status).encode())
    if message:
        block += _literal(b"grpc-message", message.encode("ascii", "replace")[:200])
    return block


OK_TRAILERS = _trailers(GRPC_OK)


class Call(Protocol):
    """One RPC's server side: told each request message and the end of the client's messages."""

    def on_message(self, message: bytes) -> None: ...

    def on_end(self) -> None: ...

    def on_cancel(self) -> None: ...


class Stream:
    """The server's half of one HTTP/2 stream: a gRPC call's response messages and its status."""

    def __init__(self, connection: Connection, stream_id: int, send_window: int) -> None:
        self.connection = connection
        self.id = stream_id
        self.send_window = send_window
        self.call: Call | None = None
        self.finished = False
        self._incoming = bytearray()
        self._headers_sent = False
        self._pending: list[bytes] = []  # DATA waiting for a window, then the trailers
        self._pending_trailers: bytes | None = None

    def feed(self, data: bytes) -> None:
        """Request bytes: each complete length-prefixed message goes to the call."""
        buffer = self._incoming
        buffer += data
        while len(buffer) >= 5 and not self.finished:
            length = int.from_bytes(buffer[1:5], "big")
            if len(buffer) < 5 + length:
                return
            if buffer[0]:
                self.finish(GRPC_UNIMPLEMENTED, "compressed messages are not supported")
                return
            message = bytes(buffer[5 : 5 + length])
            del buffer[: 5 + length]
            if self.call is not None:
                self.call.on_message(message)

    def send_message(self, message: bytes) -> None:
        if self.finished:
            return
        if not self._headers_sent:
            self._headers_sent = True
            self.connection.out.append(_frame(HEADERS, END_HEADERS, self.id, RESPONSE_HEADERS))
        self._pending.append(b"\x00" + len(message).to_bytes(4, "big") + message)
        self.flush()

    def finish(self, status: int = GRPC_OK, message: str = "") -> None:
        """The call's status, after the messages already sent; the stream is over for us."""
        if self.finished:
            return
        self.finished = True
        trailers = OK_TRAILERS if status == GRPC_OK and not message else _trailers(status, message)
        if not self._headers_sent:  # trailers-only response
            self._headers_sent = True
            trailers = RESPONSE_HEADERS + trailers
        self._pending_trailers = trailers
        self.flush()

    def flush(self) -> None:
        """As much pending DATA as the windows allow, then the trailers once all of it is out."""
        connection = self.connection
        while self._pending:
            data = self._pending[0]
            allowed = min(connection.send_window, self.send_window, connection.peer_max_frame)
            if allowed <= 0:
                connection.blocked.add(self)
                return
            chunk, rest = data[:allowed], data[allowed:]
            connection.out.append(_frame(DATA, 0, self.id, chunk))
            connection.send_window -= len(chunk)
            self.send_window -= len(chunk)
            if rest:
                self._pending[0] = rest
            else:
                self._pending.pop(0)
        connection.blocked.discard(self)
        if self._pending_trailers is not None:
            connection.out.append(_frame(HEADERS, END_HEADERS | END_STREAM, self.id, self._pending_trailers))
            self._pending_trailers = None
            connection.close_stream(self)


Handler = Callable[[Stream], Call]


class Connection(asyncio.Protocol):
    """One HTTP/2 connection from Envoy: frames parsed as they arrive, answers written once per read."""

    def __init__(self, server: H2GrpcServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.out: list[bytes] = []
        self.streams: dict[int, Stream] = {}
        self.blocked: set[Stream] = set()
        self.send_window = DEFAULT_WINDOW
        self.peer_initial_window = DEFAULT_WINDOW
        self.peer_max_frame = 16_384
        self.last_stream = 0
        self.going_away = False
        self._buffer = bytearray()
        self._preface_seen = False
        self._decoder = Decoder()
        self._header_block: tuple[int, int, bytearray] | None = None  # stream, flags, block (until CONTINUATION)
        self._consumed = 0

    # -- asyncio ---------------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections.add(self)
        settings = b"".join(
            key.to_bytes(2, "big") + value.to_bytes(4, "big")
            for key, value in (
                (SETTINGS_MAX_CONCURRENT_STREAMS, 1 << 20),
                (SETTINGS_INITIAL_WINDOW_SIZE, MAX_WINDOW),
                (SETTINGS_MAX_FRAME_SIZE, OUR_MAX_FRAME),
            )
        )
        increment = (MAX_WINDOW - DEFAULT_WINDOW).to_bytes(4, "big")
        transport.write(_frame(SETTINGS, 0, 0, settings) + _frame(WINDOW_UPDATE, 0, 0, increment))
        if self.server.draining:
            self.goaway()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        for stream in list(self.streams.values()):
            self.close_stream(stream)
            if stream.call is not None and not stream.finished:
                stream.call.on_cancel()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        position = 0
        if not self._preface_seen:
            if len(buffer) < len(PREFACE):
                return
            if buffer[: len(PREFACE)] != PREFACE:
                self._fail("not an HTTP/2 connection preface")
                return
            self._preface_seen = True
            position = len(PREFACE)
        try:
            while len(buffer) - position >= 9:
                length = int.from_bytes(buffer[position : position + 3], "big")
                end = position + 9 + length
                if len(buffer) < end:
                    break
                kind, flags = buffer[position + 3], buffer[position + 4]
                stream_id = int.from_bytes(buffer[position + 5 : position + 9], "big") & MAX_WINDOW
                self._on_frame(kind, flags, stream_id, bytes(buffer[position + 9 : end]))
                position = end
        except ProtocolError as error:
            self._fail(str(error))
            return
        del buffer[:position]
        self.write_out()

    def write_out(self) -> None:
        if self.out and self.transport is not None:
            self.transport.write(b"".join(self.out))
        self.out.clear()

    # -- frames ----------------------------------------------------------------------------------------------

    def _on_frame(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        if self._header_block is not None and kind != CONTINUATION:
            raise ProtocolError("a header block was interrupted")
        if kind == DATA:
            self._on_data(flags, stream_id, payload)
        elif kind == HEADERS:
            if flags & PADDED:
                payload = payload[1 : len(payload) - payload[0]]
            if flags & PRIORITY:
                payload = payload[5:]
            self._header_block = (stream_id, flags, bytearray(payload))
            if flags & END_HEADERS:
                self._on_header_block()
        elif kind == CONTINUATION:
            if self._header_block is None or self._header_block[0] != stream_id:
                raise ProtocolError("CONTINUATION without its HEADERS")
            self._header_block[2].extend(payload)
            if flags & END_HEADERS:
                self._on_header_block()
        elif kind == SETTINGS:
            if not flags & ACK:
                self._on_settings(payload)
                self.out.append(_frame(SETTINGS, ACK, 0))
        elif kind == WINDOW_UPDATE:
            increment = int.from_bytes(payload[:4], "big") & MAX_WINDOW
            if stream_id == 0:
                self.send_window += increment
                for waiting in list(self.blocked):
                    waiting.flush()
            elif (updated := self.streams.get(stream_id)) is not None:
                updated.send_window += increment
                updated.flush()
        elif kind == PING:
            if not flags & ACK:
                self.out.append(_frame(PING, ACK, 0, payload))
        elif kind == RST_STREAM:
            reset = self.streams.get(stream_id)
            if reset is not None:
                self.close_stream(reset)
                if reset.call is not None and not reset.finished:
                    reset.finished = True
                    reset.call.on_cancel()
        # PRIORITY, GOAWAY (Envoy closes the connection after it) and unknown frames need nothing.

    def _on_data(self, flags: int, stream_id: int, payload: bytes) -> None:
        self._consumed += len(payload)  # flow control counts the padding too
        if flags & PADDED:
            payload = payload[1 : len(payload) - payload[0]]
        if self._consumed > MAX_WINDOW // 2:
            self.out.append(_frame(WINDOW_UPDATE, 0, 0, self._consumed.to_bytes(4, "big")))
            self._consumed = 0
        stream = self.streams.get(stream_id)
        if stream is None:
            return  # a stream we already ended or refused
        stream.feed(payload)
        if flags & END_STREAM and stream.call is not None and not stream.finished:
            stream.call.on_end()

    def _on_header_block(self) -> None:
        assert self._header_block is not None
        stream_id, flags, block = self._header_block
        self._header_block = None
        headers = dict(self._decoder.decode(bytes(block), raw=True))  # always: the dynamic table must follow
        existing = self.streams.get(stream_id)
        if existing is not None:  # trailers of the request: its end
            if flags & END_STREAM and existing.call is not None and not existing.finished:
                existing.call.on_end()
            return
        if stream_id <= self.last_stream:
            return  # a stream already over
        self.last_stream = stream_id
        if self.going_away:
            self.out.append(_frame(RST_STREAM, 0, stream_id, REFUSED_STREAM.to_bytes(4, "big")))
            return
        stream = self.streams[stream_id] = Stream(self, stream_id, self.peer_initial_window)
        handler = self.server.handlers.get(headers.get(b":path", b"").decode("latin-1"))
        if handler is None:
            stream.finish(GRPC_UNIMPLEMENTED, "unknown method")
            return
        stream.call = handler(stream)
        if flags & END_STREAM:
            stream.call.on_end()

    def _on_settings(self, payload: bytes) -> None:
        for offset in range(0, len(payload) - 5, 6):
            key = int.from_bytes(payload[offset : offset + 2], "big")
            value = int.from_bytes(payload[offset + 2 : offset + 6], "big")
            if key == SETTINGS_INITIAL_WINDOW_SIZE:
                for stream in self.streams.values():
                    stream.send_window += value - self.peer_initial_window
                self.peer_initial_window = value
            elif key == SETTINGS_MAX_FRAME_SIZE:
                self.peer_max_frame = value
        for stream in list(self.blocked):
            stream.flush()

    # -- lifecycle -------------------------------------------------------------------------------------------

    def close_stream(self, stream: Stream) -> None:
        self.streams.pop(stream.id, None)
        self.blocked.discard(stream)
        self.server.stream_closed()

    def goaway(self) -> None:
        """No new streams on this connection; those in flight go on."""
        if self.going_away:
            return
        self.going_away = True
        self.out.append(_frame(GOAWAY, 0, 0, self.last_stream.to_bytes(4, "big") + NO_ERROR.to_bytes(4, "big")))
        self.write_out()

    def _fail(self, reason: str) -> None:
        log.warning("ext_proc connection closed: %s", reason)
        self.out.append(_frame(GOAWAY, 0, 0, self.last_stream.to_bytes(4, "big") + PROTOCOL_ERROR.to_bytes(4, "big")))
        self.write_out()
        if self.transport is not None:
            self.transport.close()


class ProtocolError(Exception):
    """A peer that does not speak HTTP/2 as we understood it: the connection is closed."""


class H2GrpcServer:
    """Listens, serves `handlers` by gRPC method path, and drains: GOAWAY, then waits for the calls in flight."""

    def __init__(self, handlers: dict[str, Handler]) -> None:
        self.handlers = handlers
        self.connections: set[Connection] = set()
        self.draining = False
        self._listener: asyncio.Server | None = None
        self._idle = asyncio.Event()

    async def start(self, listen: str) -> bool:
        loop = asyncio.get_running_loop()
        address = parse_address(listen)
        try:
            if isinstance(address, TcpAddress):
                self._listener = await loop.create_server(lambda: Connection(self), address.host, address.port)
            else:
                if os.path.exists(address.path):
                    os.unlink(address.path)  # a socket a dead ext_proc left behind
                self._listener = await loop.create_unix_server(lambda: Connection(self), address.path)
                os.chmod(address.path, OWNER_ONLY)
        except OSError as error:
            log.error("cannot listen on %s: %s", listen, error)
            return False
        return True

    def active_streams(self) -> int:
        return sum(len(c.streams) for c in self.connections)

    def stream_closed(self) -> None:
        if self.draining and self.active_streams() == 0:
            self._idle.set()

    async def drain(self, timeout: float) -> bool:
        """Stop taking streams; True once the ones in flight are over, False at the timeout."""
        self.draining = True
        if self._listener is not None:
            self._listener.close()
        for connection in list(self.connections):
            connection.goaway()
        if self.active_streams() == 0:
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.close()
