"""HTTP/2 (RFC 9113) and gRPC-over-HTTP/2 as they look on the wire, for extproc/h2_grpc.py: frame types, flags,
error codes and settings, a frame's bytes, and the few constant header blocks a gRPC server sends (literals that
index nothing, so our side keeps no HPACK dynamic table)."""

from __future__ import annotations

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY_FRAME, RST_STREAM, SETTINGS, PUSH_PROMISE = 0, 1, 2, 3, 4, 5
PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 6, 7, 8, 9
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY = 0x4, 0x8, 0x20
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0x0, 0x1, 0x2, 0x3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, COMPRESSION_ERROR = 0x5, 0x6, 0x7, 0x9
SETTINGS_HEADER_TABLE_SIZE, SETTINGS_ENABLE_PUSH, SETTINGS_MAX_CONCURRENT_STREAMS = 0x1, 0x2, 0x3
SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE, SETTINGS_MAX_HEADER_LIST_SIZE = 0x4, 0x5, 0x6
MAX_WINDOW = 2**31 - 1
DEFAULT_WINDOW = 65_535
DEFAULT_TABLE_SIZE = 4_096
SMALLEST_MAX_FRAME, LARGEST_MAX_FRAME = 16_384, 2**24 - 1
GRPC_OK, GRPC_RESOURCE_EXHAUSTED, GRPC_UNIMPLEMENTED, GRPC_INTERNAL = 0, 8, 12, 13


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
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


def literal(name: bytes, value: bytes) -> bytes:
    """A header as a literal that is never indexed (new name, no Huffman): no dynamic table on our side."""
    return b"\x00" + _hpack_int(len(name), 7) + name + _hpack_int(len(value), 7) + value


# `:status: 200` (static index 8) and `content-type: application/grpc` (name at static index 31).
RESPONSE_HEADERS = b"\x88" + _hpack_int(31, 4) + _hpack_int(16, 7) + b"application/grpc"


def status_trailers(status: int, message: str = "") -> bytes:
    block = literal(b"grpc-status", str(status).encode())
    if message:
        block += literal(b"grpc-message", message.encode("ascii", "replace")[:200])
    return block


OK_TRAILERS = status_trailers(GRPC_OK)
# gRPC's compression spec: a message in an encoding the server lacks is UNIMPLEMENTED, with what it accepts.
COMPRESSED_REFUSAL = status_trailers(GRPC_UNIMPLEMENTED, "compressed messages are not supported") + literal(
    b"grpc-accept-encoding", b"identity"
)


def unpad(payload: bytes) -> bytes:
    """A PADDED frame's content: without its pad length octet and its padding (RFC 9113 6.1, 6.2)."""
    if not payload or payload[0] >= len(payload):
        raise ProtocolError("padding as long as the frame or longer")
    return payload[1 : len(payload) - payload[0]]


class ProtocolError(Exception):
    """A peer that breaks HTTP/2: the connection is closed with GOAWAY carrying `code` (RFC 9113 section 7)."""

    def __init__(self, reason: str, code: int = PROTOCOL_ERROR) -> None:
        super().__init__(reason)
        self.code = code
