"""The ext_proc's own HTTP/2 gRPC server (extproc/h2_grpc.py) as unmodified gRPC clients see it: grpcio's, sync and
aio, against a real `switchyard extproc` process on a Unix socket. Envoy's client is exercised by the end-to-end
tests (tests/e2e/test_cross_provider.py), each frame by tests/unit/test_extproc_h2_frames.py."""

from __future__ import annotations

import asyncio
import json
import queue
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as ep
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as ep_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from switchyard import contract
from switchyard.supervisor.processes import wait_until
from tests.support.grpc_process import GrpcProcess, switchyard_grpc_process

RULES_ONLY = contract.TranslationRequest(
    "openai", "openai", "o3", "gpt-4", "gpt-4", "reasoning", body_rules='{"drop":["temperature"]}'
)


@pytest.fixture
def extproc(tmp_path: Path) -> Iterator[GrpcProcess]:
    socket_path = tmp_path / "extproc.sock"
    args = ["extproc", "--listen", f"unix:{socket_path}", "--drain-timeout", "20"]
    with switchyard_grpc_process(args, socket_path, tmp_path / "log") as p:
        yield p


BIG = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
PASS_THROUGH_HEADERS = ep.ProcessingRequest(request_headers=ep.HttpHeaders())  # no marker: let through, stream open


def _rules_only(body: bytes) -> list[ep.ProcessingRequest]:
    """A same-API attempt with body rules as Envoy sends it: headers with the marker, then the body."""
    marker = base_pb2.HeaderValue(key=contract.RULES_HEADER, raw_value=RULES_ONLY.encode().encode())
    return [
        ep.ProcessingRequest(request_headers=ep.HttpHeaders(headers=base_pb2.HeaderMap(headers=[marker]))),
        ep.ProcessingRequest(request_body=ep.HttpBody(body=body, end_of_stream=True)),
    ]


def test_health_is_served_for_envoys_checks(extproc: GrpcProcess) -> None:
    _, channel, _ = extproc
    answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_a_body_of_megabytes_goes_through_both_ways_within_the_flow_control_windows(extproc: GrpcProcess) -> None:
    _, channel, _ = extproc
    text = "é" * 1_700_000  # 3.4 MB of UTF-8 (under the client's 4 MiB limit), far beyond 64 KiB windows
    body = json.dumps({"model": "gpt-4", "temperature": 1, "messages": [{"role": "user", "content": text}]})
    responses = list(ep_grpc.ExternalProcessorStub(channel).Process(iter(_rules_only(body.encode())), timeout=30))
    _, answer = responses  # and the stream ended: a rules-only attempt is two messages
    sent = json.loads(answer.request_body.response.body_mutation.body)
    assert sent["model"] == "o3" and "temperature" not in sent
    assert sent["messages"][0]["content"] == text


def test_many_streams_at_once_on_one_connection_each_get_their_own_answer(extproc: GrpcProcess) -> None:
    _, channel, _ = extproc
    stub = ep_grpc.ExternalProcessorStub(channel)
    calls = [
        stub.Process(iter(_rules_only(json.dumps({"model": "gpt-4", "n": i}).encode())), timeout=30) for i in range(50)
    ]
    for i, call in enumerate(calls):
        _, answer = list(call)
        assert json.loads(answer.request_body.response.body_mutation.body) == {"model": "o3", "n": i}


def test_an_unknown_method_is_unimplemented_and_the_connection_goes_on(extproc: GrpcProcess) -> None:
    _, channel, _ = extproc
    unknown = channel.unary_unary("/envoy.service.ext_proc.v3.ExternalProcessor/Nope")
    with pytest.raises(grpc.RpcError) as error:
        unknown(b"", timeout=10)
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]
    answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def _socket(log: Path) -> str:
    return f"unix:{log.parent / 'extproc.sock'}"


def _big_body(size: int) -> tuple[bytes, str]:
    text = "é" * (size // 2)  # two bytes of UTF-8 each
    body = json.dumps({"model": "gpt-4", "temperature": 1, "messages": [{"role": "user", "content": text}]})
    return body.encode(), text


def test_a_body_of_9_mib_in_one_message_goes_through_both_ways(extproc: GrpcProcess) -> None:
    """The gateway's largest request body (8 MiB) fits, with room: flow control both ways over many windows."""
    _, _, log = extproc
    body, text = _big_body(9 << 20)
    with grpc.insecure_channel(_socket(log), options=BIG) as channel:
        stub = ep_grpc.ExternalProcessorStub(channel)
        _, answer = list(stub.Process(iter(_rules_only(body)), timeout=60))
    sent = json.loads(answer.request_body.response.body_mutation.body)
    assert sent["model"] == "o3" and sent["messages"][0]["content"] == text


def test_aio_client_200_concurrent_streams_and_a_big_body_among_them(extproc: GrpcProcess) -> None:
    _, _, log = extproc
    big_body, text = _big_body(2 << 20)

    async def attempt(stub: ep_grpc.ExternalProcessorStub, n: int) -> ep.ProcessingResponse:
        body = big_body if n == 100 else json.dumps({"model": "gpt-4", "n": n}).encode()
        call = stub.Process(timeout=60)
        for request in _rules_only(body):
            await call.write(request)
        await call.done_writing()
        answers = [answer async for answer in call]
        assert len(answers) == 2
        return answers[1]

    async def main() -> list[ep.ProcessingResponse]:
        async with grpc.aio.insecure_channel(_socket(log), options=BIG) as channel:
            stub = ep_grpc.ExternalProcessorStub(channel)
            return await asyncio.gather(*(attempt(stub, n) for n in range(200)))

    answers = asyncio.run(main())
    sent = [json.loads(answer.request_body.response.body_mutation.body) for answer in answers]
    assert [s for n, s in enumerate(sent) if n != 100] == [{"model": "o3", "n": n} for n in range(200) if n != 100]
    assert sent[100]["model"] == "o3" and sent[100]["messages"][0]["content"] == text


class _Attempt:
    """One Process stream, fed a message at a time."""

    def __init__(self, stub: ep_grpc.ExternalProcessorStub) -> None:
        self._outgoing: queue.Queue[ep.ProcessingRequest | None] = queue.Queue()
        self.responses = stub.Process(iter(self._outgoing.get, None), timeout=60)

    def send(self, request: ep.ProcessingRequest) -> ep.ProcessingResponse:
        self._outgoing.put(request)
        return next(self.responses)


def test_a_client_cancelling_mid_stream_frees_the_stream_and_the_connection_goes_on(extproc: GrpcProcess) -> None:
    """Seen from outside: the cancelled stream does not hold up a drain, and the connection keeps serving."""
    process, channel, log = extproc
    stub = ep_grpc.ExternalProcessorStub(channel)
    cancelled = [_Attempt(stub) for _ in range(5)]
    for attempt in cancelled:
        assert attempt.send(PASS_THROUGH_HEADERS).HasField("request_headers")
        attempt.responses.cancel()  # type: ignore[attr-defined]
    _, answer = list(stub.Process(iter(_rules_only(b'{"model":"gpt-4"}')), timeout=30))
    assert json.loads(answer.request_body.response.body_mutation.body) == {"model": "o3"}
    process.send_signal(signal.SIGTERM)
    process.wait(10)  # the drain timeout is 20 s: a stream left open after its cancellation would hold it up
    assert process.returncode == 0 and "ERROR" not in log.read_text()


def test_aio_drain_lets_every_stream_in_flight_finish_and_refuses_new_ones(extproc: GrpcProcess) -> None:
    process, _, log = extproc
    body = ep.ProcessingRequest(request_body=ep.HttpBody(body=b"{}", end_of_stream=True))

    async def main() -> None:
        async with grpc.aio.insecure_channel(_socket(log)) as channel:
            stub = ep_grpc.ExternalProcessorStub(channel)
            calls = [stub.Process(timeout=30) for _ in range(20)]
            for call in calls:
                await call.write(PASS_THROUGH_HEADERS)
                assert (await call.read()).HasField("request_headers")
            process.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(wait_until, lambda: "draining" in log.read_text(), 10)
            deadline = time.monotonic() + 10
            while not await _new_stream_refused(stub):
                assert time.monotonic() < deadline, "new streams are refused once the drain is seen"
            assert process.poll() is None, "the streams in flight keep it up"
            for call in calls:
                await call.write(body)
                assert (await call.read()).HasField("request_body")
                await call.done_writing()
                assert await call.code() == grpc.StatusCode.OK

    asyncio.run(main())
    process.wait(10)
    assert process.returncode == 0


async def _new_stream_refused(stub: ep_grpc.ExternalProcessorStub) -> bool:
    """A new stream is refused; or, opened before the client read the drain's first GOAWAY, it is served whole
    (RFC 9113 6.8: streams the client opened before then are the server's to finish), and the next is tried."""
    call = stub.Process(iter(_rules_only(b"{}")), timeout=10)
    try:
        answers = [answer async for answer in call]
    except grpc.RpcError:
        return True
    assert [a.WhichOneof("response") for a in answers] == ["request_headers", "request_body"], "served whole"
    return False


def test_a_header_of_200_kib_is_served(extproc: GrpcProcess) -> None:
    """hpack's default limit (64 KiB) used to close the connection on it, failing every stream on it."""
    _, channel, _ = extproc
    stub = ep_grpc.ExternalProcessorStub(channel)
    requests = iter(_rules_only(b'{"model":"gpt-4"}'))
    _, answer = list(stub.Process(requests, timeout=30, metadata=[("x-big", "v" * 200_000)]))
    assert json.loads(answer.request_body.response.body_mutation.body) == {"model": "o3"}


def test_a_compressed_call_is_refused_as_unimplemented_and_the_connection_goes_on(extproc: GrpcProcess) -> None:
    _, channel, _ = extproc
    stub = ep_grpc.ExternalProcessorStub(channel)
    requests = iter(_rules_only(b'{"model":"gpt-4", "pad": "' + b"x" * 10_000 + b'"}'))
    with pytest.raises(grpc.RpcError) as error:
        list(stub.Process(requests, timeout=30, compression=grpc.Compression.Gzip))
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]
    _, answer = list(stub.Process(iter(_rules_only(b'{"model":"gpt-4"}')), timeout=30))
    assert json.loads(answer.request_body.response.body_mutation.body) == {"model": "o3"}
