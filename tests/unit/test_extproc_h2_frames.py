"""extproc/h2_grpc.py frame by frame against RFC 9113 and gRPC over HTTP/2: what a conforming client (Envoy 1.40
first) may send, and what the server must do with frames no client should send. Each test drives one server
Connection by hand (tests/support/h2_peer.py) and reads the frames it wrote back."""

from __future__ import annotations

import asyncio

import pytest

from extproc import h2_grpc, h2_wire
from extproc.h2_wire import (
    CONTINUATION,
    DATA,
    GOAWAY,
    HEADERS,
    PING,
    RST_STREAM,
    SETTINGS,
    WINDOW_UPDATE,
)
from tests.support.h2_peer import (
    ECHO,
    CapturingTransport,
    Peer,
    answer,
    frame,
    goaway_code,
    grpc_message,
    reset_code,
    setting,
)

PROTOCOL_ERROR, FLOW_CONTROL_ERROR, STREAM_CLOSED, FRAME_SIZE_ERROR = 0x1, 0x3, 0x5, 0x6
REFUSED_STREAM, COMPRESSION_ERROR = 0x7, 0x9
PRIORITY_FRAME, PUSH_PROMISE = 0x2, 0x5
END_STREAM, END_HEADERS, PADDED, PRIORITY = 0x1, 0x4, 0x8, 0x20
SETTINGS_HEADER_TABLE_SIZE, SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE = 0x1, 0x4, 0x5


def _echoed(peer: Peer, stream: int, message: bytes) -> None:
    """`message` was answered on `stream` and the call ended OK."""
    got = answer(peer, peer.frames(), stream)
    assert got.messages == [message] and got.trailers.get("grpc-status") == "0" and got.ended


def _window(peer: Peer, stream: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, stream, increment.to_bytes(4, "big"))


# -- what a conforming client may send ---------------------------------------------------------------------------


def test_padded_and_prioritised_headers_and_padded_data_carry_the_request() -> None:
    peer = Peer()
    block = peer.block()
    priority = (3).to_bytes(4, "big") + b"\x10"  # depends on stream 3, weight 16
    headers = bytes((7,)) + priority + block + b"\0" * 7
    peer.send(frame(HEADERS, END_HEADERS | PADDED | PRIORITY, 1, headers))
    peer.send(frame(DATA, PADDED | END_STREAM, 1, bytes((200,)) + grpc_message(b"hi") + b"\0" * 200))
    _echoed(peer, 1, b"hi")


def test_a_header_block_split_over_continuation_frames_is_one_request() -> None:
    peer = Peer()
    block = peer.block(**{"x-big": "v" * 40_000})
    pieces = [block[i : i + 16_384] for i in range(0, len(block), 16_384)]
    peer.send(frame(HEADERS, 0, 1, pieces[0]))
    for piece in pieces[1:-1]:
        peer.send(frame(CONTINUATION, 0, 1, piece))
    peer.send(frame(CONTINUATION, END_HEADERS, 1, pieces[-1]) + frame(DATA, END_STREAM, 1, grpc_message(b"a")))
    _echoed(peer, 1, b"a")


def test_a_header_value_of_hundreds_of_kilobytes_is_served() -> None:
    """hpack's decoder refuses header lists over 64 KiB unless told otherwise; we advertise 1 MiB."""
    peer = Peer()
    block = peer.block(**{"x-huge": "v" * 300_000})
    pieces = [block[i : i + 16_384] for i in range(0, len(block), 16_384)]
    peer.send(frame(HEADERS, 0, 1, pieces[0]))
    peer.send(b"".join(frame(CONTINUATION, 0, 1, p) for p in pieces[1:-1]))
    peer.send(frame(CONTINUATION, END_HEADERS, 1, pieces[-1]) + frame(DATA, END_STREAM, 1, grpc_message(b"a")))
    _echoed(peer, 1, b"a")


def test_a_header_list_over_the_advertised_limit_closes_the_connection_with_an_error() -> None:
    peer = Peer()
    peer.frames()
    block = peer.block(**{"x-huge": "v" * (h2_grpc.MAX_HEADER_LIST + 1)})
    pieces = [block[i : i + 1_000_000] for i in range(0, len(block), 1_000_000)]
    peer.send(frame(HEADERS, 0, 1, pieces[0]))
    for piece in pieces[1:-1]:
        peer.send(frame(CONTINUATION, 0, 1, piece))
    peer.send(frame(CONTINUATION, END_HEADERS, 1, pieces[-1]))
    assert goaway_code(peer.frames()) == COMPRESSION_ERROR and peer.transport.closed


def test_a_message_split_over_data_frames_and_several_messages_in_one_frame() -> None:
    peer = Peer()
    whole = grpc_message(b"first") + grpc_message(b"second")
    peer.send(peer.headers(1) + frame(DATA, 0, 1, whole[:3]))
    peer.send(frame(DATA, 0, 1, whole[3:9]) + frame(DATA, 0, 1, whole[9:]))
    peer.send(frame(DATA, 0, 1, grpc_message(b"third") + grpc_message(b"") + grpc_message(b"fifth")))
    peer.send(frame(DATA, END_STREAM, 1))
    got = answer(peer, peer.frames(), 1)
    assert got.messages == [b"first", b"second", b"third", b"", b"fifth"] and got.trailers["grpc-status"] == "0"


def test_request_trailers_end_the_request() -> None:
    peer = Peer()
    peer.send(peer.headers(1) + frame(DATA, 0, 1, grpc_message(b"a")))
    peer.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, peer.encoder.encode([("x-trailer", "1")])))
    _echoed(peer, 1, b"a")


def test_priority_frames_and_unknown_frame_types_are_ignored() -> None:
    peer = Peer()
    peer.send(frame(PRIORITY_FRAME, 0, 1, (0).to_bytes(4, "big") + b"\x20"))  # for a stream not yet open
    peer.send(peer.headers(1) + frame(0xFA, 0xFF, 0, b"whatever") + frame(0x21, 0, 1, b"x"))
    peer.send(frame(PRIORITY_FRAME, 0, 1, (0).to_bytes(4, "big") + b"\x20"))
    peer.send(frame(DATA, END_STREAM, 1, grpc_message(b"a")))
    _echoed(peer, 1, b"a")


def test_ping_is_acknowledged_with_its_payload() -> None:
    peer = Peer()
    peer.frames()
    peer.send(frame(PING, 0, 0, b"12345678"))
    assert [(f.kind, f.flags, f.payload) for f in peer.frames()] == [(PING, 0x1, b"12345678")]


def test_the_answer_waits_for_window_updates_on_the_stream_and_the_connection() -> None:
    peer = Peer(settings=setting(SETTINGS_INITIAL_WINDOW_SIZE, 10))
    message = b"m" * 100_000
    peer.send(peer.headers(1) + frame(DATA, END_STREAM, 1, grpc_message(message)))
    first = peer.frames()
    assert sum(len(f.payload) for f in first if f.kind == DATA) == 10
    assert not answer(peer, first, 1).ended
    peer.send(_window(peer, 1, 1_000_000))  # the stream may take it all; the connection's 65,535 bytes may not
    second = peer.frames()
    assert sum(len(f.payload) for f in first + second if f.kind == DATA) == 65_535
    peer.send(_window(peer, 0, 1_000_000))
    got = answer(peer, first + second + peer.frames(), 1)
    assert got.messages == [message] and got.ended


def test_a_smaller_initial_window_setting_takes_from_open_streams_and_a_larger_one_gives_back() -> None:
    peer = Peer(settings=setting(SETTINGS_INITIAL_WINDOW_SIZE, 1_000))
    peer.send(peer.headers(1) + frame(DATA, 0, 1, grpc_message(b"a" * 600)))  # 605 bytes out: 395 left
    assert sum(len(f.payload) for f in peer.frames() if f.kind == DATA) == 605
    peer.send(frame(SETTINGS, 0, 0, setting(SETTINGS_INITIAL_WINDOW_SIZE, 500)))  # window now -105
    peer.send(frame(DATA, 0, 1, grpc_message(b"b" * 600)))
    assert sum(len(f.payload) for f in peer.frames() if f.kind == DATA) == 0
    peer.send(frame(SETTINGS, 0, 0, setting(SETTINGS_INITIAL_WINDOW_SIZE, 705)))  # window now +100
    assert sum(len(f.payload) for f in peer.frames() if f.kind == DATA) == 100


def test_data_frames_respect_the_clients_max_frame_size() -> None:
    peer = Peer(settings=setting(SETTINGS_MAX_FRAME_SIZE, 16_384))
    peer.send(peer.headers(1) + frame(DATA, END_STREAM, 1, grpc_message(b"x" * 50_000)))
    frames = peer.frames()
    assert max(len(f.payload) for f in frames if f.kind == DATA) == 16_384
    assert answer(peer, frames, 1).messages == [b"x" * 50_000]


def test_a_reduced_header_table_size_is_acknowledged_by_the_next_header_block() -> None:
    """RFC 7541 4.2: the encoder signals the smaller table at the start of its next header block."""
    peer = Peer(settings=setting(SETTINGS_HEADER_TABLE_SIZE, 0))
    peer.send(peer.headers(1, end_stream=True))
    blocks = [f.payload for f in peer.frames() if f.kind == HEADERS]
    assert blocks[0][0] & 0xE0 == 0x20  # a dynamic table size update
    peer.send(peer.headers(3, end_stream=True))
    assert all(f.payload[0] & 0xE0 != 0x20 for f in peer.frames() if f.kind == HEADERS)  # once is enough


def test_a_cancelled_stream_tells_its_call_and_the_others_go_on() -> None:
    peer = Peer()
    peer.send(peer.headers(1) + peer.headers(3) + frame(DATA, 0, 1, grpc_message(b"a")))
    peer.send(frame(RST_STREAM, 0, 1, (0x8).to_bytes(4, "big")))  # CANCEL
    peer.send(frame(DATA, END_STREAM, 1, grpc_message(b"late")))  # in flight when it cancelled: ignored
    peer.send(frame(DATA, END_STREAM, 3, grpc_message(b"b")))
    frames = peer.frames()
    assert peer.calls[1].events == ["message", "cancel"]
    assert answer(peer, frames, 3).messages == [b"b"] and goaway_code(frames) is None


def test_a_goaway_from_the_client_lets_its_streams_finish() -> None:
    peer = Peer()
    peer.send(peer.headers(1) + frame(GOAWAY, 0, 0, (1).to_bytes(4, "big") + (0).to_bytes(4, "big")))
    peer.send(frame(DATA, END_STREAM, 1, grpc_message(b"a")))
    _echoed(peer, 1, b"a")


def test_an_unknown_method_gets_a_trailers_only_answer() -> None:
    peer = Peer()
    peer.frames()
    peer.send(peer.headers(1, path="/nope/Nope"))
    frames = peer.frames()
    assert [(f.kind, f.flags & END_STREAM) for f in frames] == [(HEADERS, END_STREAM)]
    fields = answer(peer, frames, 1).trailers
    assert fields[":status"] == "200" and fields["grpc-status"] == "12"


def test_a_compressed_message_is_refused_with_the_encodings_we_accept() -> None:
    peer = Peer()
    peer.send(peer.headers(1, **{"grpc-encoding": "gzip"}))
    peer.send(frame(DATA, END_STREAM, 1, grpc_message(b"\x1f\x8b...", compressed=True)))
    got = answer(peer, peer.frames(), 1)
    assert got.trailers["grpc-status"] == "12" and got.trailers["grpc-accept-encoding"] == "identity"
    assert peer.calls[1].events == []


def test_a_message_over_the_size_limit_is_refused_before_it_is_buffered() -> None:
    peer = Peer()
    peer.send(peer.headers(1) + frame(DATA, 0, 1, (0).to_bytes(1, "big") + (2**32 - 1).to_bytes(4, "big")))
    got = answer(peer, peer.frames(), 1)
    assert got.trailers["grpc-status"] == "8" and got.ended  # RESOURCE_EXHAUSTED


def test_streams_over_the_advertised_concurrency_are_refused() -> None:
    server = h2_grpc.H2GrpcServer({})
    server.max_streams = 2
    peer = Peer(server=server)
    server.handlers[ECHO] = peer._echo
    peer.send(peer.headers(1) + peer.headers(3) + peer.headers(5))
    frames = peer.frames()
    assert reset_code(frames, 5) == REFUSED_STREAM and reset_code(frames, 1) is None
    peer.send(frame(DATA, END_STREAM, 1, grpc_message(b"a")) + peer.headers(7, end_stream=True))
    frames = peer.frames()
    assert answer(peer, frames, 1).messages == [b"a"] and answer(peer, frames, 7).ended


def test_a_handler_that_raises_fails_its_own_call_only() -> None:
    peer = Peer()
    peer.send(peer.headers(1) + peer.headers(3) + frame(DATA, END_STREAM, 1, grpc_message(b"boom")))
    peer.send(frame(DATA, END_STREAM, 3, grpc_message(b"fine")))
    frames = peer.frames()
    assert answer(peer, frames, 1).trailers["grpc-status"] == "13"
    assert answer(peer, frames, 3).messages == [b"fine"] and goaway_code(frames) is None


def test_data_on_a_stream_we_already_ended_is_ignored_and_still_counted_for_the_window() -> None:
    peer = Peer()
    peer.send(peer.headers(1, end_stream=True))
    peer.send(frame(DATA, 0, 1, b"x" * 1000))
    frames = peer.frames()
    assert goaway_code(frames) is None and not peer.transport.closed
    assert peer.connection.received_unacknowledged == 1000


def test_data_after_the_clients_end_of_stream_resets_the_stream() -> None:
    peer = Peer()
    peer.send(peer.headers(1) + frame(DATA, END_STREAM, 1))
    peer.send(frame(DATA, 0, 1, grpc_message(b"more")))
    # the echo call finished at END_STREAM; a call still open would be reset with STREAM_CLOSED
    assert goaway_code(peer.frames()) is None
    slow = Peer()
    slow.server.handlers[ECHO] = lambda stream: _NeverEnding()
    slow.send(slow.headers(1) + frame(DATA, END_STREAM, 1) + frame(DATA, 0, 1, grpc_message(b"more")))
    assert reset_code(slow.frames(), 1) == STREAM_CLOSED


class _NeverEnding:
    def on_message(self, message: bytes) -> None:
        pass

    def on_end(self) -> None:
        pass

    def on_cancel(self) -> None:
        pass


# -- what no client should send: a connection error, GOAWAY with its code, and the connection closed --------------


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        pytest.param(frame(DATA, PADDED, 1), PROTOCOL_ERROR, id="padded DATA without its pad length"),
        pytest.param(frame(DATA, PADDED, 1, b"\x05abc"), PROTOCOL_ERROR, id="padding longer than the DATA"),
        pytest.param(frame(HEADERS, PADDED | END_HEADERS, 1), PROTOCOL_ERROR, id="padded HEADERS, empty"),
        pytest.param(frame(HEADERS, PRIORITY | END_HEADERS, 1, b"\0\0"), FRAME_SIZE_ERROR, id="short priority"),
        pytest.param(frame(HEADERS, END_HEADERS, 2, b"\x82"), PROTOCOL_ERROR, id="even stream id from the client"),
        pytest.param(frame(HEADERS, END_HEADERS, 0, b"\x82"), PROTOCOL_ERROR, id="HEADERS on stream 0"),
        pytest.param(frame(HEADERS, END_HEADERS, 1, b"\xff\xff\xff\x7f"), COMPRESSION_ERROR, id="bad HPACK"),
        pytest.param(frame(DATA, 0, 0, b"x"), PROTOCOL_ERROR, id="DATA on stream 0"),
        pytest.param(frame(DATA, 0, 9, b"x"), PROTOCOL_ERROR, id="DATA on an idle stream"),
        pytest.param(frame(CONTINUATION, END_HEADERS, 1, b"\x82"), PROTOCOL_ERROR, id="CONTINUATION alone"),
        pytest.param(frame(SETTINGS, 0, 0, b"\0\x04\0"), FRAME_SIZE_ERROR, id="SETTINGS not in 6-byte pieces"),
        pytest.param(frame(SETTINGS, 0x1, 0, setting(4, 1)), FRAME_SIZE_ERROR, id="SETTINGS ack with a payload"),
        pytest.param(frame(SETTINGS, 0, 1), PROTOCOL_ERROR, id="SETTINGS on a stream"),
        pytest.param(frame(SETTINGS, 0, 0, setting(4, 2**31)), FLOW_CONTROL_ERROR, id="initial window too big"),
        pytest.param(frame(SETTINGS, 0, 0, setting(5, 0)), PROTOCOL_ERROR, id="max frame size 0"),
        pytest.param(frame(SETTINGS, 0, 0, setting(5, 2**24)), PROTOCOL_ERROR, id="max frame size over 2^24-1"),
        pytest.param(frame(SETTINGS, 0, 0, setting(2, 2)), PROTOCOL_ERROR, id="enable push 2"),
        pytest.param(frame(PING, 0, 0, b"1234"), FRAME_SIZE_ERROR, id="short PING"),
        pytest.param(frame(PING, 0, 1, b"12345678"), PROTOCOL_ERROR, id="PING on a stream"),
        pytest.param(frame(WINDOW_UPDATE, 0, 0, b"\0\0"), FRAME_SIZE_ERROR, id="short WINDOW_UPDATE"),
        pytest.param(frame(WINDOW_UPDATE, 0, 0, b"\0\0\0\0"), PROTOCOL_ERROR, id="connection window +0"),
        pytest.param(frame(WINDOW_UPDATE, 0, 0, (2**31 - 1).to_bytes(4, "big")), FLOW_CONTROL_ERROR, id="overflow"),
        pytest.param(frame(WINDOW_UPDATE, 0, 9, b"\0\0\0\1"), PROTOCOL_ERROR, id="WINDOW_UPDATE on idle stream"),
        pytest.param(frame(RST_STREAM, 0, 9, b"\0\0\0\0"), PROTOCOL_ERROR, id="RST_STREAM on an idle stream"),
        pytest.param(frame(RST_STREAM, 0, 0, b"\0\0\0\0"), PROTOCOL_ERROR, id="RST_STREAM on stream 0"),
        pytest.param(frame(RST_STREAM, 0, 1, b"\0\0"), FRAME_SIZE_ERROR, id="short RST_STREAM"),
        pytest.param(frame(PRIORITY_FRAME, 0, 0, b"\0\0\0\1\x10"), PROTOCOL_ERROR, id="PRIORITY on stream 0"),
        pytest.param(frame(PUSH_PROMISE, END_HEADERS, 1, b"\0\0\0\2\x82"), PROTOCOL_ERROR, id="PUSH_PROMISE"),
        pytest.param(frame(GOAWAY, 0, 1, b"\0" * 8), PROTOCOL_ERROR, id="GOAWAY on a stream"),
        pytest.param(frame(HEADERS, 0, 3, b"\x82") + frame(DATA, 0, 3), PROTOCOL_ERROR, id="interrupted headers"),
        pytest.param(b"\x10\0\x01" + bytes((DATA, 0)) + (1).to_bytes(4, "big"), FRAME_SIZE_ERROR, id="huge frame"),
    ],
)
def test_a_malformed_frame_closes_the_connection_with_goaway_and_its_error_code(frames: bytes, code: int) -> None:
    peer = Peer()
    peer.send(peer.headers(1))  # one stream open: frames on it are not on an idle stream
    peer.frames()
    peer.send(frames)
    assert goaway_code(peer.frames()) == code
    assert peer.transport.closed


def test_stream_errors_reset_only_that_stream() -> None:
    peer = Peer()
    peer.send(peer.headers(1) + peer.headers(3) + peer.headers(5))
    peer.send(_window(peer, 1, 0))  # a stream's window +0
    peer.send(_window(peer, 3, 2**31 - 1))  # a stream's window past 2^31-1
    peer.send(frame(PRIORITY_FRAME, 0, 5, b"\0\0\0\5\x10"))  # depends on itself
    frames = peer.frames()
    assert reset_code(frames, 1) == PROTOCOL_ERROR and reset_code(frames, 3) == FLOW_CONTROL_ERROR
    assert reset_code(frames, 5) == PROTOCOL_ERROR
    assert peer.calls[1].events == ["cancel"] and goaway_code(frames) is None


def test_the_first_frame_must_be_settings() -> None:
    connection = h2_grpc.Connection(h2_grpc.H2GrpcServer({}))
    transport = CapturingTransport()
    connection.connection_made(transport)
    connection.data_received(h2_wire.PREFACE + frame(PING, 0, 0, b"12345678"))
    assert goaway_code(Peer.parse(bytes(transport.written))) == PROTOCOL_ERROR and transport.closed


def test_drain_announces_goaway_then_refuses_only_streams_opened_after_the_client_saw_it() -> None:
    """RFC 9113 6.8: GOAWAY with the highest stream id first, then a PING; streams the client opened before it
    saw the GOAWAY are served, the final GOAWAY after the PING's ack names the last one."""

    async def scenario() -> None:
        peer = Peer()
        peer.send(peer.headers(1))
        peer.frames()
        drained = asyncio.create_task(peer.server.drain(5))
        await asyncio.sleep(0)
        frames = peer.frames()
        first = [f for f in frames if f.kind == GOAWAY]
        assert [int.from_bytes(f.payload[:4], "big") for f in first] == [2**31 - 1]
        ping = next(f for f in frames if f.kind == PING)
        peer.send(peer.headers(3))  # opened before the client saw the GOAWAY: served
        peer.send(frame(PING, 0x1, 0, ping.payload))
        final = [f for f in peer.frames() if f.kind == GOAWAY]
        assert [int.from_bytes(f.payload[:4], "big") for f in final] == [3]
        peer.send(peer.headers(5))
        assert reset_code(peer.frames(), 5) == REFUSED_STREAM
        assert not drained.done()
        peer.send(frame(DATA, END_STREAM, 1, grpc_message(b"a")) + frame(DATA, END_STREAM, 3, grpc_message(b"b")))
        frames = peer.frames()
        assert answer(peer, frames, 1).messages == [b"a"] and answer(peer, frames, 3).messages == [b"b"]
        assert await asyncio.wait_for(drained, 5)

    asyncio.run(scenario())


def test_a_request_that_ends_inside_a_message_fails_as_internal() -> None:
    peer = Peer()
    peer.send(peer.headers(1) + frame(DATA, END_STREAM, 1, grpc_message(b"whole")[:4]))
    got = answer(peer, peer.frames(), 1)
    assert got.trailers["grpc-status"] == "13" and peer.calls[1].events == []


def test_drain_sends_the_final_goaway_anyway_when_the_client_never_acknowledges(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(h2_grpc, "DRAIN_PING_WAIT", 0.01)

    async def scenario() -> None:
        peer = Peer()
        assert await asyncio.wait_for(peer.server.drain(5), 5)  # no stream in flight: over once the GOAWAY is final
        goaways = [int.from_bytes(f.payload[:4], "big") for f in peer.frames() if f.kind == GOAWAY]
        assert goaways == [2**31 - 1, 0]

    asyncio.run(scenario())


def _literal_indexed(name: bytes, value: bytes) -> bytes:
    """A header field that adds itself to the dynamic table (RFC 7541 6.2.1, new name, no Huffman)."""
    return b"\x40" + bytes((len(name),)) + name + bytes((len(value),)) + value


def test_a_repeated_header_block_reads_as_the_dynamic_table_says_now() -> None:
    """The server keeps decoded header blocks while the dynamic table is unchanged (Envoy repeats one block per
    stream); once a block changes the table, the same bytes must be decoded again, as their indexes now name
    other entries."""
    peer = Peer()
    base = b"\x83\x86\x04" + bytes((len(ECHO),)) + ECHO.encode()  # POST, http, :path not indexed
    newest = b"\xbe"  # index 62: the newest dynamic entry
    blocks = [
        base + _literal_indexed(b"x-tag", b"one"),
        base + newest,
        base + newest,  # kept from the block before: the table did not change
        base + _literal_indexed(b"x-tag", b"two"),
        base + newest,  # the same bytes as before, now naming "two"
    ]
    read = []
    for number, block in enumerate(blocks):
        stream = 2 * number + 1
        peer.send(frame(HEADERS, END_HEADERS, stream, block))
        read.append(peer.connection.streams[stream].request_headers[b"x-tag"])
    assert read == [b"one", b"one", b"one", b"two", b"two"]
