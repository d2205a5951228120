"""Fuzzing extproc/h2_grpc.py's Connection: random frame sequences, and real conversations with bytes flipped,
cut or repeated, fed to `data_received` in random pieces. Whatever comes, nothing raises out of the protocol,
our code's catch-all for its own bugs never fires, what the server writes is well-formed HTTP/2, a connection
it closes ends with a GOAWAY, and another connection of the same server goes on serving."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extproc import h2_grpc, h2_wire
from tests.support.h2_peer import ECHO, Peer, answer, frame, grpc_message, setting

FUZZ = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure in CI reproduces at a developer's desk
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

streams = st.sampled_from([0, 1, 2, 3, 5, 7, 2**31 - 1])
flags = st.sampled_from([0, 0x1, 0x4, 0x5, 0x8, 0x9, 0x20, 0x24, 0x25, 0x2D, 0xFF])


@st.composite
def random_frame(draw: st.DrawFn) -> bytes:
    """One frame of any type, from plausible to absurd."""
    kind = draw(st.sampled_from([*range(10), 0x0A, 0x42, 0xFF]))
    stream = draw(streams)
    chosen = draw(flags)
    shape = draw(st.integers(0, 5))
    payload: bytes
    if shape == 0:
        payload = draw(st.binary(max_size=40))
    elif shape == 1:  # a message, maybe split or compressed
        payload = grpc_message(draw(st.binary(max_size=30)), compressed=draw(st.booleans()))
        payload = payload[: draw(st.integers(0, len(payload)))]
    elif shape == 2:  # settings, valid keys with any values
        pairs = draw(st.lists(st.tuples(st.integers(0, 8), st.integers(0, 2**32 - 1)), max_size=3))
        payload = b"".join(setting(k, v) for k, v in pairs)
    elif shape == 3:  # a window increment
        payload = draw(st.integers(0, 2**32 - 1)).to_bytes(4, "big")
    elif shape == 4:  # a request's header block
        payload = Peer.block_for(draw(st.sampled_from([ECHO, "/x", ""])))
    else:  # padding of any length, then content
        payload = bytes((draw(st.integers(0, 255)),)) + draw(st.binary(max_size=20))
    return frame(kind, chosen, stream, payload)


def _conversation() -> bytes:
    """A well-behaved client's bytes: SETTINGS, two calls (one cancelled), a PING, window updates."""
    block = Peer.block_for(ECHO)
    return b"".join(
        [
            h2_wire.PREFACE,
            frame(h2_wire.SETTINGS, 0, 0, setting(4, 100) + setting(5, 16_384)),
            frame(h2_wire.HEADERS, 0x4, 1, block),
            frame(h2_wire.DATA, 0, 1, grpc_message(b"x" * 300)),
            frame(h2_wire.HEADERS, 0x4, 3, Peer.block_for(ECHO)),
            frame(h2_wire.WINDOW_UPDATE, 0, 1, (1000).to_bytes(4, "big")),
            frame(h2_wire.RST_STREAM, 0, 3, (8).to_bytes(4, "big")),
            frame(h2_wire.PING, 0, 0, b"abcdefgh"),
            frame(h2_wire.DATA, 0x1, 1, grpc_message(b"y" * 10)),
            frame(h2_wire.WINDOW_UPDATE, 0, 0, (1000).to_bytes(4, "big")),
        ]
    )


CONVERSATION = _conversation()


@st.composite
def mutated_conversation(draw: st.DrawFn) -> bytes:
    data = bytearray(CONVERSATION)
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(len(h2_wire.PREFACE), len(data) - 1))
        action = draw(st.sampled_from(["flip", "cut", "repeat", "insert"]))
        if action == "flip":
            data[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[at : at + draw(st.integers(1, 40))]
        elif action == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 60))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=12))
    return bytes(data)


def _random_sequence(frames: list[bytes]) -> bytes:
    return h2_wire.PREFACE + frame(h2_wire.SETTINGS, 0, 0) + b"".join(frames)


def _feed_in_pieces(peer: Peer, data: bytes, cuts: list[int]) -> None:
    at = 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        if cut > at:
            peer.send(data[at:cut])
            at = cut


def _check(data: bytes, cuts: list[int], caplog: pytest.LogCaptureFixture) -> None:
    server = h2_grpc.H2GrpcServer({})
    fuzzed = Peer(server=server, preface=False)
    bystander = Peer(server=server)
    server.handlers[ECHO] = lambda stream: (fuzzed if stream.connection is fuzzed.connection else bystander)._echo(
        stream
    )
    caplog.clear()
    _feed_in_pieces(fuzzed, data, cuts)

    assert not [r for r in caplog.records if "HTTP/2 connection failed" in r.getMessage()], "a bug of ours"
    written = fuzzed.frames()
    # Well-formed: the frames account for every byte written, none over the default max frame size of a peer
    # that never raised it in SETTINGS.
    assert sum(9 + len(f.payload) for f in written) == len(fuzzed.transport.written)
    if fuzzed.transport.closed:
        assert written[-1].kind == h2_wire.GOAWAY
        assert int.from_bytes(written[-1].payload[4:8], "big") != 0  # an error code
    # The other connection of the same server is unaffected.
    bystander.frames()
    bystander.send(bystander.headers(1) + frame(h2_wire.DATA, 0x1, 1, grpc_message(b"still here")))
    got = answer(bystander, bystander.frames(), 1)
    assert got.messages == [b"still here"] and got.trailers["grpc-status"] == "0"


@FUZZ
@given(frames=st.lists(random_frame(), max_size=12), cuts=st.lists(st.integers(0, 10_000), max_size=4))
def test_random_frames_never_break_the_server(
    frames: list[bytes], cuts: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "switchyard.extproc"):
        _check(_random_sequence(frames), cuts, caplog)


@FUZZ
@given(data=mutated_conversation(), cuts=st.lists(st.integers(0, 10_000), max_size=4))
def test_mutated_conversations_never_break_the_server(
    data: bytes, cuts: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "switchyard.extproc"):
        _check(data, cuts, caplog)


def test_the_unmutated_conversation_is_served() -> None:
    """The fuzzers' starting point is a valid conversation: its call is answered, nothing is closed."""
    peer = Peer(preface=False)
    peer.send(CONVERSATION)
    written = peer.frames()
    assert answer(peer, written, 1).messages == [b"x" * 300, b"y" * 10] and not peer.transport.closed
    assert [f.payload for f in written if f.kind == h2_wire.PING] == [b"abcdefgh"]
