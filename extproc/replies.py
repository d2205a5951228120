"""The few ready-made pieces of ext_proc answers the exchange builds from."""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as ep
from envoy.type.v3 import http_status_pb2


def header(name: str, value: str | bytes) -> base_pb2.HeaderValueOption:
    raw = value.encode() if isinstance(value, str) else value
    return base_pb2.HeaderValueOption(
        header=base_pb2.HeaderValue(key=name, raw_value=raw),
        append_action=base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD,
    )


def local_error(status: int, message: str, details: str) -> ep.ProcessingResponse:
    """A reply from the gateway itself. The body is the plain message: Envoy's local-reply mappers put it in
    the error shape of the API the client called, like every other reply Envoy makes by itself."""
    return ep.ProcessingResponse(
        immediate_response=ep.ImmediateResponse(
            status=http_status_pb2.HttpStatus(code=status),
            headers=ep.HeaderMutation(set_headers=[header("content-type", "text/plain")]),
            body=message.encode(),
            details=details,
        )
    )
