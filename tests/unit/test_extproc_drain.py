"""`switchyard extproc` on SIGTERM: NOT_SERVING, no new streams, the streams in flight finish; a second signal
stops at once. One real ext_proc process on a Unix socket, driven by a gRPC client."""

from __future__ import annotations

import queue
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from envoy.service.ext_proc.v3 import external_processor_pb2 as ep
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as ep_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from extproc.server import SERVER_FLAVOUR_ENV
from switchyard.supervisor.processes import wait_until
from tests.support.grpc_process import GrpcProcess, switchyard_grpc_process


class Attempt:
    """One Process stream, fed a message at a time."""

    def __init__(self, stub: ep_grpc.ExternalProcessorStub) -> None:
        self._outgoing: queue.Queue[ep.ProcessingRequest | None] = queue.Queue()
        self.responses = stub.Process(iter(self._outgoing.get, None), timeout=30)

    def send(self, request: ep.ProcessingRequest) -> ep.ProcessingResponse:
        self._outgoing.put(request)
        return next(self.responses)

    def end(self) -> None:
        self._outgoing.put(None)


@pytest.fixture(params=["h2", "grpcio"])
def extproc(tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[GrpcProcess]:
    """Both server flavours drain alike: the small HTTP/2 server (the default) and grpc.aio."""
    if request.param == "grpcio":
        monkeypatch.setenv(SERVER_FLAVOUR_ENV, "grpcio")
    socket_path = tmp_path / "extproc.sock"
    args = ["extproc", "--listen", f"unix:{socket_path}", "--drain-timeout", "20"]
    with switchyard_grpc_process(args, socket_path, tmp_path / "extproc.log") as running:
        yield running


HEADERS = ep.ProcessingRequest(request_headers=ep.HttpHeaders())  # no translation header: let through
BODY = ep.ProcessingRequest(request_body=ep.HttpBody(body=b"{}", end_of_stream=True))


def test_sigterm_finishes_the_streams_in_flight_and_takes_no_new_ones(
    extproc: GrpcProcess,
) -> None:
    process, channel, log = extproc
    stub = ep_grpc.ExternalProcessorStub(channel)
    health = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=30)
    assert next(health).status == health_pb2.HealthCheckResponse.SERVING
    attempt = Attempt(stub)
    assert attempt.send(HEADERS).HasField("request_headers")

    process.send_signal(signal.SIGTERM)
    assert next(health).status == health_pb2.HealthCheckResponse.NOT_SERVING
    health.cancel()  # a watcher would otherwise be in flight too
    assert wait_until(lambda: "draining" in log.read_text(), 10)
    assert wait_until(lambda: _new_attempt_refused(stub), 10), "new attempts are refused once the drain is seen"
    assert process.poll() is None, "the attempt in flight keeps it up"
    assert attempt.send(BODY).HasField("request_body"), "the attempt in flight is still served"
    attempt.end()
    assert list(attempt.responses) == []
    process.wait(10)
    assert process.returncode == 0
    assert "stopped after" in log.read_text()


def _new_attempt_refused(stub: ep_grpc.ExternalProcessorStub) -> bool:
    """A new attempt is refused (UNAVAILABLE, or CANCELLED when it raced the shutdown on the connection already
    open); or, opened before the client saw the drain's first GOAWAY, it is served whole (RFC 9113 6.8: streams
    the client opened before then are the server's to finish), and the next one is tried."""
    attempt = Attempt(stub)
    try:
        answer = attempt.send(HEADERS)
    except grpc.RpcError as refused:
        assert refused.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
        return True
    assert answer.HasField("request_headers") and attempt.send(BODY).HasField("request_body"), "served whole"
    attempt.end()
    assert list(attempt.responses) == []
    return False


def test_a_second_sigterm_stops_at_once(extproc: GrpcProcess) -> None:
    process, channel, log = extproc
    attempt = Attempt(ep_grpc.ExternalProcessorStub(channel))
    attempt.send(HEADERS)
    process.send_signal(signal.SIGTERM)
    assert wait_until(lambda: "draining" in log.read_text(), 10)
    second = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(10)
    assert time.monotonic() - second < 2, "no waiting for the attempt in flight"
    assert process.returncode == 0
    with pytest.raises(grpc.RpcError):
        attempt.send(BODY)
