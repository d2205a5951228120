"""A real OTLP/gRPC trace receiver for tests: the collector's `TraceService/Export`, decoded with the
`opentelemetry.proto` copy xds-protos ships (installing opentelemetry-proto next to it would overwrite it),
served by grpcio on a free loopback port. It keeps every span it receives."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

EXPORT_METHOD = "Export"
SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    service: str
    attributes: dict[str, Any]
    start_ns: int
    end_ns: int


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


class OtlpReceiver:
    def __init__(self) -> None:
        self._spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                EXPORT_METHOD: grpc.unary_unary_rpc_method_handler(
                    self._export,
                    request_deserializer=trace_service_pb2.ExportTraceServiceRequest.FromString,
                    response_serializer=trace_service_pb2.ExportTraceServiceResponse.SerializeToString,
                )
            },
        )
        self._server.add_generic_rpc_handlers((handler,))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _export(self, request: Any, context: grpc.ServicerContext) -> Any:
        received = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            # xds-protos' copy predates the rename of `instrumentation_library_spans` (field 2) to `scope_spans`.
            scopes = getattr(resource_spans, "scope_spans", None) or resource_spans.instrumentation_library_spans
            for scope_spans in scopes:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            name=span.name,
                            kind=span.kind,
                            service=str(resource.get("service.name", "")),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            start_ns=span.start_time_unix_nano,
                            end_ns=span.end_time_unix_nano,
                        )
                    )
        with self._lock:
            self._spans.extend(received)
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans(self, where: Callable[[ReceivedSpan], bool] = lambda _: True) -> list[ReceivedSpan]:
        with self._lock:
            return [span for span in self._spans if where(span)]

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()

    def stop(self) -> None:
        self._server.stop(grace=None)
