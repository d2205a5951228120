"""The ext_proc's own HTTP/2 gRPC server (extproc/h2_grpc.py) as an unmodified gRPC client sees it: grpcio's, in a
real `switchyard extproc` process on a Unix socket. Envoy's client is exercised by the end-to-end tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as ep
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as ep_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from switchyard import contract
from tests.support.grpc_process import GrpcProcess, switchyard_grpc_process

RULES_ONLY = contract.TranslationRequest(
    "openai", "openai", "o3", "gpt-4", "gpt-4", "reasoning", body_rules='{"drop":["temperature"]}'
)


@pytest.fixture
def extproc(tmp_path: Path) -> Iterator[GrpcProcess]:
    socket_path = tmp_path / "extproc.sock"
    with switchyard_grpc_process(["extproc", "--listen", f"unix:{socket_path}"], socket_path, tmp_path / "log") as p:
        yield p


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
