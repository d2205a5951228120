"""A hand-driven HTTP/2 client for extproc/h2_grpc.py's Connection: frames go straight into `data_received` and
what the server writes is parsed back, so a test can send what no well-behaved client library would (bad
padding, window overflows, frames on closed streams) and see exactly what the server answers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from hpack import Decoder, Encoder

from extproc import h2_grpc, h2_wire
from extproc.h2_wire import PREFACE, SETTINGS

ECHO = "/test.Echo/Echo"


class Frame(NamedTuple):
    kind: int
    flags: int
    stream: int
    payload: bytes


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream.to_bytes(4, "big") + payload


def grpc_message(message: bytes, compressed: bool = False) -> bytes:
    return bytes((int(compressed),)) + len(message).to_bytes(4, "big") + message


def setting(key: int, value: int) -> bytes:
    return key.to_bytes(2, "big") + value.to_bytes(4, "big")


class CapturingTransport(asyncio.Transport):
    """Keeps what the server writes; closing only marks it closed."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


@dataclass
class EchoCall:
    """Answers each message with itself; records what happened to the call."""

    stream: h2_grpc.Stream
    events: list[str] = field(default_factory=list)

    def on_message(self, message: bytes) -> None:
        self.events.append("message")
        if message == b"boom":
            raise RuntimeError("a handler bug")
        self.stream.send_message(message)

    def on_end(self) -> None:
        self.events.append("end")
        self.stream.finish()

    def on_cancel(self) -> None:
        self.events.append("cancel")


class Peer:
    """The client's end of one server Connection."""

    def __init__(self, settings: bytes = b"", server: h2_grpc.H2GrpcServer | None = None, preface: bool = True) -> None:
        self.calls: dict[int, EchoCall] = {}
        self.server = server or h2_grpc.H2GrpcServer({ECHO: self._echo})
        self.connection = h2_grpc.Connection(self.server)
        self.transport = CapturingTransport()
        self.connection.connection_made(self.transport)
        self.encoder = Encoder()
        self.decoder = Decoder()
        self._read = 0
        if preface:
            self.send(PREFACE + frame(SETTINGS, 0, 0, settings))

    def _echo(self, stream: h2_grpc.Stream) -> EchoCall:
        call = self.calls[stream.id] = EchoCall(stream)
        return call

    def send(self, data: bytes) -> None:
        self.connection.data_received(data)

    def frames(self) -> list[Frame]:
        """The frames the server wrote since the last call."""
        out = self.parse(bytes(self.transport.written[self._read :]))
        self._read = len(self.transport.written)
        return out

    @staticmethod
    def parse(data: bytes) -> list[Frame]:
        out, position = [], 0
        while len(data) - position >= 9:
            length = int.from_bytes(data[position : position + 3], "big")
            kind, flags = data[position + 3], data[position + 4]
            stream = int.from_bytes(data[position + 5 : position + 9], "big")
            out.append(Frame(kind, flags, stream, data[position + 9 : position + 9 + length]))
            position += 9 + length
        return out

    def headers(self, stream: int, path: str = ECHO, end_stream: bool = False, **extra: str) -> bytes:
        """A request's HEADERS frame (one frame, END_HEADERS)."""
        return frame(h2_wire.HEADERS, 0x4 | int(end_stream), stream, self.block(path, **extra))

    def block(self, path: str = ECHO, **extra: Any) -> bytes:
        encoded: bytes = self.encoder.encode(_fields(path, extra), huffman=False)  # Huffman is slow on big values
        return encoded

    @staticmethod
    def block_for(path: str) -> bytes:
        """A request's header block from an encoder of its own: it indexes nothing a later block refers to."""
        encoded: bytes = Encoder().encode(_fields(path, {}), huffman=False)
        return encoded


def _fields(path: str, extra: dict[str, Any]) -> list[tuple[str, str]]:
    fields = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "x")]
    return [*fields, ("content-type", "application/grpc"), ("te", "trailers"), *extra.items()]


def goaway_code(frames: list[Frame]) -> int | None:
    codes = [int.from_bytes(f.payload[4:8], "big") for f in frames if f.kind == h2_wire.GOAWAY]
    return codes[-1] if codes else None


def reset_code(frames: list[Frame], stream: int) -> int | None:
    codes = [int.from_bytes(f.payload, "big") for f in frames if f.kind == h2_wire.RST_STREAM and f.stream == stream]
    return codes[-1] if codes else None


class Answer(NamedTuple):
    messages: list[bytes]
    trailers: dict[str, str]
    ended: bool


def answer(peer: Peer, frames: list[Frame], stream: int) -> Answer:
    """One stream's gRPC answer in `frames`: its messages and the fields of its last header block."""
    body, fields, ended = bytearray(), {}, False
    for f in frames:
        if f.kind == h2_wire.HEADERS:
            decoded = dict(peer.decoder.decode(f.payload))
            if f.stream == stream:
                fields = decoded
        if f.stream == stream:
            if f.kind == h2_wire.DATA:
                body += f.payload
            ended = ended or bool(f.flags & 0x1 and f.kind in (h2_wire.DATA, h2_wire.HEADERS))
    messages = []
    while len(body) >= 5:
        length = int.from_bytes(body[1:5], "big")
        messages.append(bytes(body[5 : 5 + length]))
        del body[: 5 + length]
    return Answer(messages, fields, ended)
