"""A small gRPC server over HTTP/2: only what Envoy's gRPC client uses to call this ext_proc and check its health.

Why not grpcio: measured with a no-op servicer, grpc.aio spends about 640 us of CPU on one two-message stream
(its poller thread hands every event to the asyncio loop), grpcio's synchronous server 735 us and grpclib 495 us,
while our whole translation of an attempt takes about 135 us. Here each connection is one asyncio protocol: a
frame is parsed where it arrives, a message answered at once by plain (synchronous) code, and everything one
read produced goes out in one write. No task, thread or future per stream.

What it speaks: HTTP/2 frames as RFC 9113 has them (padding, priority and CONTINUATION accepted; no server push),
HPACK through the `hpack` package (decoding must track Envoy's dynamic table; our own headers are constant, sent
as literals that index nothing), flow control both ways, and gRPC's length-prefixed messages, uncompressed (we
announce no compression, so Envoy sends none; a compressed message is refused as gRPC says). What a peer must not
send is checked as RFC 9113 says: a connection error closes the connection with GOAWAY and its code, a stream
error resets that stream only, and a bug in one call fails that call only. Draining sends GOAWAY in two steps
(the second after a PING round trip, so no stream the client opened in the meantime is lost) and then refuses
new streams; the streams in flight go on. tests/unit/test_extproc_h2_frames.py goes through it frame by frame.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import Callable
from typing import Protocol, cast

from hpack import Decoder, HPACKError

from extproc.h2_wire import (
    ACK,
    COMPRESSED_REFUSAL,
    COMPRESSION_ERROR,
    CONTINUATION,
    DATA,
    DEFAULT_TABLE_SIZE,
    DEFAULT_WINDOW,
    END_HEADERS,
    END_STREAM,
    FLOW_CONTROL_ERROR,
    FRAME_SIZE_ERROR,
    GOAWAY,
    GRPC_INTERNAL,
    GRPC_OK,
    GRPC_RESOURCE_EXHAUSTED,
    GRPC_UNIMPLEMENTED,
    HEADERS,
    INTERNAL_ERROR,
    LARGEST_MAX_FRAME,
    MAX_WINDOW,
    NO_ERROR,
    OK_TRAILERS,
    PADDED,
    PING,
    PREFACE,
    PRIORITY,
    PRIORITY_FRAME,
    PROTOCOL_ERROR,
    PUSH_PROMISE,
    REFUSED_STREAM,
    RESPONSE_HEADERS,
    RST_STREAM,
    SETTINGS,
    SETTINGS_ENABLE_PUSH,
    SETTINGS_HEADER_TABLE_SIZE,
    SETTINGS_INITIAL_WINDOW_SIZE,
    SETTINGS_MAX_CONCURRENT_STREAMS,
    SETTINGS_MAX_FRAME_SIZE,
    SETTINGS_MAX_HEADER_LIST_SIZE,
    SMALLEST_MAX_FRAME,
    STREAM_CLOSED,
    WINDOW_UPDATE,
    ProtocolError,
    frame,
    status_trailers,
    unpad,
)
from switchyard.addresses import OWNER_ONLY, TcpAddress, parse_address

log = logging.getLogger("switchyard.extproc")

OUR_MAX_FRAME = 1 << 20  # Envoy may send a large body in few frames
# Distinct header blocks kept decoded per connection: Envoy's streams share a few (one per route's guard rules).
_DECODED_BLOCKS = 64
# Envoy sends a few short headers; hpack's own default (64 KiB) would kill the connection on one big header.
MAX_HEADER_LIST = 1 << 20  # decoded, as SETTINGS_MAX_HEADER_LIST_SIZE says
MAX_HEADER_BLOCK = 2 * MAX_HEADER_LIST  # encoded, CONTINUATIONs included: bounds what we buffer before decoding
MAX_MESSAGE = 128 * 1024 * 1024  # as the grpc.aio flavour: a prompt's body comes whole in one message
MAX_STREAMS = 1 << 20
DRAIN_PING = b"draining"
DRAIN_PING_WAIT = 5.0  # seconds a drain waits for the client to acknowledge its first GOAWAY


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
        # The request's header block as received (names and values in bytes): a call may read its gRPC metadata.
        self.request_headers: dict[bytes, bytes] = {}
        self.finished = False  # our side is over: status given, or the call cancelled
        self.remote_closed = False  # the client sent END_STREAM
        self.received = 0  # DATA octets since our last WINDOW_UPDATE for this stream
        self._incoming = bytearray()
        self._headers_sent = False
        self._pending: deque[bytes] = deque()  # DATA waiting for a window, then the trailers
        self._offset = 0  # how much of _pending[0] is already out
        self._pending_trailers: bytes | None = None

    def feed(self, data: bytes) -> None:
        """Request bytes: each complete length-prefixed message goes to the call."""
        if self.finished:
            return  # nobody will read them
        buffer = self._incoming
        if not buffer and len(data) >= 5 and not data[0] and len(data) == 5 + int.from_bytes(data[1:5], "big"):
            self._deliver(data[5:])  # the usual case, one whole message in one DATA frame: no copy into a buffer
            return
        buffer += data
        while len(buffer) >= 5:
            if buffer[0]:
                self.finish(GRPC_UNIMPLEMENTED, trailers=COMPRESSED_REFUSAL)
                return
            length = int.from_bytes(buffer[1:5], "big")
            if length > MAX_MESSAGE:
                self.finish(GRPC_RESOURCE_EXHAUSTED, f"a message over {MAX_MESSAGE} bytes")
                return
            if len(buffer) < 5 + length:
                return
            message = bytes(buffer[5 : 5 + length])
            del buffer[: 5 + length]
            self._deliver(message)
            if self.finished:
                return

    def _deliver(self, message: bytes) -> None:
        if self.call is not None:
            try:
                self.call.on_message(message)
            except Exception:
                self._call_failed()

    def end(self) -> None:
        """The client's END_STREAM: no more messages."""
        self.remote_closed = True
        if self.finished:
            return
        if self._incoming:
            self.finish(GRPC_INTERNAL, "the request ended inside a message")
        elif self.call is not None:
            try:
                self.call.on_end()
            except Exception:
                self._call_failed()

    def cancel(self) -> None:
        """The stream is gone (reset, or its connection lost): the call hears it once, and sends nothing more."""
        if self.finished:
            return
        self.finished = True
        if self.call is not None:
            try:
                self.call.on_cancel()
            except Exception:
                log.exception("ext_proc call failed on its cancellation")

    def _call_failed(self) -> None:
        """A bug in a call fails that call only, never its connection's other streams."""
        log.exception("ext_proc call failed")
        self.finish(GRPC_INTERNAL, "ext_proc failed")

    def send_message(self, message: bytes) -> None:
        if self.finished:
            return
        if not self._headers_sent:
            self._headers_sent = True
            block = self.connection.header_block(RESPONSE_HEADERS)
            self.connection.out.append(frame(HEADERS, END_HEADERS, self.id, block))
        self._pending.append(b"\x00" + len(message).to_bytes(4, "big") + message)
        self.flush()

    def finish(self, status: int = GRPC_OK, message: str = "", trailers: bytes | None = None) -> None:
        """The call's status, after the messages already sent; the stream is over for us."""
        if self.finished:
            return
        self.finished = True
        if trailers is None:
            trailers = OK_TRAILERS if status == GRPC_OK and not message else status_trailers(status, message)
        if not self._headers_sent:  # trailers-only response
            self._headers_sent = True
            trailers = RESPONSE_HEADERS + trailers
        self._pending_trailers = trailers
        self.flush()

    def flush(self) -> None:
        """As much pending DATA as the windows allow, then the trailers once all of it is out."""
        connection = self.connection
        pending = self._pending
        while pending:
            allowed = min(connection.send_window, self.send_window, connection.peer_max_frame)
            if allowed <= 0:
                connection.blocked.add(self)
                return
            data, offset = pending[0], self._offset
            if offset + allowed >= len(data):
                chunk = data[offset:] if offset else data
                pending.popleft()
                self._offset = 0
            else:  # slices, never the rest copied again: an 8 MiB answer goes out in O(size)
                chunk = data[offset : offset + allowed]
                self._offset = offset + allowed
            connection.out.append(frame(DATA, 0, self.id, chunk))
            connection.send_window -= len(chunk)
            self.send_window -= len(chunk)
        connection.blocked.discard(self)
        if self._pending_trailers is not None:
            block = connection.header_block(self._pending_trailers)
            connection.out.append(frame(HEADERS, END_HEADERS | END_STREAM, self.id, block))
            self._pending_trailers = None
            connection.close_stream(self)


Handler = Callable[[Stream], Call]


class Connection(asyncio.Protocol):
    """One HTTP/2 connection from Envoy: frames parsed as they arrive, answers written once per read.

    A peer that breaks the protocol gets GOAWAY with the error's code and the connection is closed (its streams
    cancelled); an error that concerns one stream resets that stream only (RFC 9113 5.4)."""

    def __init__(self, server: H2GrpcServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.out: list[bytes] = []
        self.streams: dict[int, Stream] = {}
        self.blocked: set[Stream] = set()
        self.send_window = DEFAULT_WINDOW
        self.peer_initial_window = DEFAULT_WINDOW
        self.peer_max_frame = SMALLEST_MAX_FRAME
        self.last_stream = 0  # the highest stream id the client opened
        self.received_unacknowledged = 0  # DATA octets since our last connection WINDOW_UPDATE
        self.goaway_sent = False  # a drain began: the first GOAWAY, which names no stream, is out
        self.going_away = False  # the final GOAWAY is out: new streams are refused
        self.closed = False
        self._buffer = bytearray()
        self._preface_seen = False
        self._settings_seen = False
        self._decoder = Decoder(max_header_list_size=MAX_HEADER_LIST)
        # Header blocks decoded against the dynamic table as it is now: see _decoded_headers.
        self._decoded: dict[bytes, dict[bytes, bytes]] = {}
        self._header_block: tuple[int, int, bytearray] | None = None  # stream, flags, block (until CONTINUATION)
        self._encoder_table_size = DEFAULT_TABLE_SIZE
        self._header_prefix = b""  # a dynamic table size update owed at the start of our next header block
        self._drain_timer: asyncio.TimerHandle | None = None

    # -- asyncio ---------------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, though uvloop's is no subclass of asyncio.Transport.
        self.transport = transport = cast(asyncio.Transport, transport)
        self.server.connections.add(self)
        settings = b"".join(
            key.to_bytes(2, "big") + value.to_bytes(4, "big")
            for key, value in (
                (SETTINGS_MAX_CONCURRENT_STREAMS, self.server.max_streams),
                (SETTINGS_INITIAL_WINDOW_SIZE, MAX_WINDOW),
                (SETTINGS_MAX_FRAME_SIZE, OUR_MAX_FRAME),
                (SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST),
            )
        )
        increment = (MAX_WINDOW - DEFAULT_WINDOW).to_bytes(4, "big")
        transport.write(frame(SETTINGS, 0, 0, settings) + frame(WINDOW_UPDATE, 0, 0, increment))
        if self.server.draining:
            self.goaway()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._drain_timer is not None:
            self._drain_timer.cancel()
        self.server.connections.discard(self)
        for stream in list(self.streams.values()):
            self.close_stream(stream)
            stream.cancel()
        self.server.stream_closed()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        buffer = self._buffer
        buffer += data
        position = 0
        try:
            if not self._preface_seen:
                if len(buffer) < len(PREFACE):
                    return
                if buffer[: len(PREFACE)] != PREFACE:
                    raise ProtocolError("not an HTTP/2 connection preface")
                self._preface_seen = True
                position = len(PREFACE)
            while len(buffer) - position >= 9:
                length = int.from_bytes(buffer[position : position + 3], "big")
                if length > OUR_MAX_FRAME:
                    raise ProtocolError(f"a frame of {length} bytes", FRAME_SIZE_ERROR)
                end = position + 9 + length
                if len(buffer) < end:
                    break
                kind, flags = buffer[position + 3], buffer[position + 4]
                if not self._settings_seen:
                    if kind != SETTINGS or flags & ACK:
                        raise ProtocolError("the connection did not start with SETTINGS")
                    self._settings_seen = True
                stream_id = int.from_bytes(buffer[position + 5 : position + 9], "big") & MAX_WINDOW
                self._on_frame(kind, flags, stream_id, bytes(buffer[position + 9 : end]))
                position = end
        except ProtocolError as error:
            self._fail(str(error), error.code)
            return
        except Exception:  # a bug of ours: this connection ends, the process and the other connections go on
            log.exception("ext_proc HTTP/2 connection failed")
            self._fail("internal error", INTERNAL_ERROR)
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
            self._on_headers(flags, stream_id, payload)
        elif kind == CONTINUATION:
            block = self._header_block
            if block is None or block[0] != stream_id:
                raise ProtocolError("CONTINUATION without its HEADERS")
            block[2].extend(payload)
            if len(block[2]) > MAX_HEADER_BLOCK:
                raise ProtocolError(f"a header block over {MAX_HEADER_BLOCK} bytes")
            if flags & END_HEADERS:
                self._on_header_block()
        elif kind == SETTINGS:
            self._on_settings(flags, stream_id, payload)
        elif kind == WINDOW_UPDATE:
            self._on_window_update(stream_id, payload)
        elif kind == PING:
            if len(payload) != 8:
                raise ProtocolError("a PING not of 8 bytes", FRAME_SIZE_ERROR)
            if stream_id:
                raise ProtocolError("a PING on a stream")
            if not flags & ACK:
                self.out.append(frame(PING, ACK, 0, payload))
            elif payload == DRAIN_PING:
                self._final_goaway()
        elif kind == RST_STREAM:
            if len(payload) != 4:
                raise ProtocolError("an RST_STREAM not of 4 bytes", FRAME_SIZE_ERROR)
            if stream_id == 0 or stream_id > self.last_stream:
                raise ProtocolError("RST_STREAM on an idle stream")
            if (reset := self.streams.get(stream_id)) is not None:
                self.close_stream(reset)
                reset.cancel()
        elif kind == PRIORITY_FRAME:  # nothing to prioritise here: only checked
            if stream_id == 0:
                raise ProtocolError("PRIORITY on stream 0")
            if len(payload) != 5:
                self._stream_error(stream_id, FRAME_SIZE_ERROR)
            elif int.from_bytes(payload[:4], "big") & MAX_WINDOW == stream_id:
                self._stream_error(stream_id, PROTOCOL_ERROR)
        elif kind == GOAWAY:  # the client opens no more streams and closes once its own are done
            if stream_id:
                raise ProtocolError("GOAWAY on a stream")
            if len(payload) < 8:
                raise ProtocolError("a GOAWAY under 8 bytes", FRAME_SIZE_ERROR)
        elif kind == PUSH_PROMISE:
            raise ProtocolError("PUSH_PROMISE from a client")
        # Frames of unknown types are ignored (RFC 9113 4.1).

    def _on_data(self, flags: int, stream_id: int, payload: bytes) -> None:
        self.received_unacknowledged += len(payload)  # flow control counts the padding too
        if self.received_unacknowledged > MAX_WINDOW // 2:
            self.out.append(frame(WINDOW_UPDATE, 0, 0, self.received_unacknowledged.to_bytes(4, "big")))
            self.received_unacknowledged = 0
        stream = self.streams.get(stream_id)
        if stream is None:
            if stream_id == 0 or stream_id > self.last_stream or not stream_id & 1:
                raise ProtocolError(f"DATA on idle stream {stream_id}")
            if flags & PADDED:
                unpad(payload)
            return  # a stream we already ended, reset or refused
        stream.received += len(payload)
        if stream.received > MAX_WINDOW // 2:
            self.out.append(frame(WINDOW_UPDATE, 0, stream_id, stream.received.to_bytes(4, "big")))
            stream.received = 0
        if flags & PADDED:
            payload = unpad(payload)
        if stream.remote_closed:
            self._stream_error(stream_id, STREAM_CLOSED)
            return
        stream.feed(payload)
        if flags & END_STREAM:
            stream.end()

    def _on_headers(self, flags: int, stream_id: int, payload: bytes) -> None:
        if not stream_id & 1:
            raise ProtocolError(f"HEADERS on stream {stream_id}: clients open odd-numbered streams")
        if flags & PADDED:
            payload = unpad(payload)
        if flags & PRIORITY:
            if len(payload) < 5:
                raise ProtocolError("HEADERS too short for its priority", FRAME_SIZE_ERROR)
            payload = payload[5:]
        self._header_block = (stream_id, flags, bytearray(payload))
        if flags & END_HEADERS:
            self._on_header_block()

    def _decoded_headers(self, block: bytes) -> dict[bytes, bytes]:
        """The headers of `block`, decoded once per dynamic-table state.

        Why: Envoy opens every ext_proc stream with the same header block (indexed fields, and `:path` as a
        literal it never indexes), and hpack's pure-Python decoding cost about 38 µs of it, a tenth of a
        translated attempt's ext_proc CPU. A block that leaves the dynamic table as it found it decodes the same
        way for as long as the table stays unchanged, so its result is kept, by its bytes, until a block changes
        the table (then everything kept is dropped: the same bytes may now index other entries). A block that
        changes the table is always decoded, so the table follows Envoy's. The headers are shared: read-only."""
        cached = self._decoded.get(block)
        if cached is not None:
            return cached
        table = self._decoder.header_table
        entries = table.dynamic_entries
        count, newest, size = len(entries), entries[0] if entries else None, table.maxsize
        try:
            headers = dict(self._decoder.decode(block, raw=True))
        except HPACKError as error:
            raise ProtocolError(f"HPACK: {error}", COMPRESSION_ERROR) from None
        # By identity: an entry added equal to the newest one still moves every index.
        if len(entries) != count or (entries[0] if entries else None) is not newest or table.maxsize != size:
            self._decoded.clear()
        elif len(self._decoded) < _DECODED_BLOCKS:
            self._decoded[block] = headers
        return headers

    def _on_header_block(self) -> None:
        assert self._header_block is not None
        stream_id, flags, block = self._header_block
        self._header_block = None
        headers = self._decoded_headers(bytes(block))
        existing = self.streams.get(stream_id)
        if existing is not None:  # trailers of the request: its end
            if existing.remote_closed:
                self._stream_error(stream_id, STREAM_CLOSED)
            elif not flags & END_STREAM:
                self._stream_error(stream_id, PROTOCOL_ERROR)  # a second header block that does not end it
            else:
                existing.end()
            return
        if stream_id <= self.last_stream:
            return  # a stream already over
        self.last_stream = stream_id
        if self.going_away or len(self.streams) >= self.server.max_streams:
            self.out.append(frame(RST_STREAM, 0, stream_id, REFUSED_STREAM.to_bytes(4, "big")))
            return
        stream = self.streams[stream_id] = Stream(self, stream_id, self.peer_initial_window)
        handler = self.server.handlers.get(headers.get(b":path", b"").decode("latin-1"))
        if handler is None:
            stream.finish(GRPC_UNIMPLEMENTED, "unknown method")
            return
        stream.request_headers = headers
        try:
            stream.call = handler(stream)
        except Exception:
            stream._call_failed()
            return
        if flags & END_STREAM:
            stream.end()

    def _on_settings(self, flags: int, stream_id: int, payload: bytes) -> None:
        if stream_id:
            raise ProtocolError("SETTINGS on a stream")
        if flags & ACK:
            if payload:
                raise ProtocolError("a SETTINGS ack with a payload", FRAME_SIZE_ERROR)
            return
        if len(payload) % 6:
            raise ProtocolError("SETTINGS not in 6-byte settings", FRAME_SIZE_ERROR)
        for offset in range(0, len(payload), 6):
            key = int.from_bytes(payload[offset : offset + 2], "big")
            value = int.from_bytes(payload[offset + 2 : offset + 6], "big")
            if key == SETTINGS_INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise ProtocolError("an initial window over 2^31-1", FLOW_CONTROL_ERROR)
                for stream in self.streams.values():  # RFC 9113 6.9.2: open streams' windows change by the delta
                    stream.send_window += value - self.peer_initial_window
                    if stream.send_window > MAX_WINDOW:
                        raise ProtocolError("a stream window over 2^31-1", FLOW_CONTROL_ERROR)
                self.peer_initial_window = value
            elif key == SETTINGS_MAX_FRAME_SIZE:
                if not SMALLEST_MAX_FRAME <= value <= LARGEST_MAX_FRAME:
                    raise ProtocolError(f"a max frame size of {value}")
                self.peer_max_frame = value
            elif key == SETTINGS_ENABLE_PUSH and value > 1:
                raise ProtocolError(f"ENABLE_PUSH {value}")
            elif key == SETTINGS_HEADER_TABLE_SIZE and value < self._encoder_table_size:
                # RFC 7541 4.2: our encoder's table shrinks, and says so in the next header block. We index
                # nothing, so it shrinks to 0 once and for all.
                self._encoder_table_size = 0
                self._header_prefix = b"\x20"
        self.out.append(frame(SETTINGS, ACK, 0))  # before any header block that applies the new settings
        for stream in list(self.blocked):
            stream.flush()

    def _on_window_update(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise ProtocolError("a WINDOW_UPDATE not of 4 bytes", FRAME_SIZE_ERROR)
        increment = int.from_bytes(payload, "big") & MAX_WINDOW
        if stream_id == 0:
            if increment == 0:
                raise ProtocolError("a connection WINDOW_UPDATE of 0")
            self.send_window += increment
            if self.send_window > MAX_WINDOW:
                raise ProtocolError("the connection window over 2^31-1", FLOW_CONTROL_ERROR)
            for waiting in list(self.blocked):
                waiting.flush()
            return
        stream = self.streams.get(stream_id)
        if stream is None:
            if stream_id > self.last_stream:
                raise ProtocolError("WINDOW_UPDATE on an idle stream")
            return
        if increment == 0:
            self._stream_error(stream_id, PROTOCOL_ERROR)
            return
        stream.send_window += increment
        if stream.send_window > MAX_WINDOW:
            self._stream_error(stream_id, FLOW_CONTROL_ERROR)
            return
        stream.flush()

    def header_block(self, block: bytes) -> bytes:
        """One of our header blocks as it goes out: after a table size update, if one is owed."""
        if self._header_prefix:
            block = self._header_prefix + block
            self._header_prefix = b""
        return block

    # -- lifecycle -------------------------------------------------------------------------------------------

    def close_stream(self, stream: Stream) -> None:
        self.streams.pop(stream.id, None)
        self.blocked.discard(stream)
        self.server.stream_closed()

    def _stream_error(self, stream_id: int, code: int) -> None:
        """RST_STREAM: this stream is over, the connection goes on."""
        if stream_id > self.last_stream:
            return  # never for an idle stream (RFC 9113 6.4)
        self.out.append(frame(RST_STREAM, 0, stream_id, code.to_bytes(4, "big")))
        if (stream := self.streams.get(stream_id)) is not None:
            self.close_stream(stream)
            stream.cancel()

    def goaway(self) -> None:
        """Start draining, in two steps as RFC 9113 6.8 advises: a GOAWAY that names no stream, and a PING. Once
        the client acknowledges the PING it has seen the GOAWAY, so every stream it opened before then has
        reached us: the final GOAWAY names the last one, and only later ones are refused. No acknowledgement
        within DRAIN_PING_WAIT: the final GOAWAY goes anyway. Streams in flight go on."""
        if self.goaway_sent or self.closed:
            return
        self.goaway_sent = True
        self.out.append(frame(GOAWAY, 0, 0, MAX_WINDOW.to_bytes(4, "big") + NO_ERROR.to_bytes(4, "big")))
        self.out.append(frame(PING, 0, 0, DRAIN_PING))
        self.write_out()
        self._drain_timer = asyncio.get_running_loop().call_later(DRAIN_PING_WAIT, self._final_goaway)

    def _final_goaway(self) -> None:
        if self.going_away or not self.goaway_sent or self.closed:
            return
        self.going_away = True
        if self._drain_timer is not None:
            self._drain_timer.cancel()
        self.out.append(frame(GOAWAY, 0, 0, self.last_stream.to_bytes(4, "big") + NO_ERROR.to_bytes(4, "big")))
        self.write_out()
        self.server.stream_closed()

    def _fail(self, reason: str, code: int) -> None:
        log.warning("ext_proc connection closed: %s", reason)
        self.closed = True
        self.out.append(frame(GOAWAY, 0, 0, self.last_stream.to_bytes(4, "big") + code.to_bytes(4, "big")))
        self.write_out()
        if self.transport is not None:
            self.transport.close()


class H2GrpcServer:
    """Listens, serves `handlers` by gRPC method path, and drains: GOAWAY, then waits for the calls in flight."""

    def __init__(self, handlers: dict[str, Handler]) -> None:
        self.handlers = handlers
        self.connections: set[Connection] = set()
        self.draining = False
        self.max_streams = MAX_STREAMS  # per connection, as announced in SETTINGS
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
        """Drained once every connection has sent its final GOAWAY and no stream is left."""
        if self.draining and self.active_streams() == 0 and all(c.going_away for c in self.connections):
            self._idle.set()

    async def drain(self, timeout: float) -> bool:
        """Stop taking streams; True once the ones in flight are over, False at the timeout."""
        self.draining = True
        if self._listener is not None:
            self._listener.close()
        for connection in list(self.connections):
            connection.goaway()
        self.stream_closed()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.close()
