"""The ext_proc's answers as protobuf bytes, put together from cached parts instead of built as messages.

Why: building a `ProcessingResponse` with its header options, body mutation and metadata took about 40 us of
Python per request body, more than the translation of a small body; the answers have a fixed shape, so their
bytes are written here directly (protobuf's wire format: a tag, a length, the payload) around what varies, the
body and a few header values. What does not vary (the metadata of a translator, of a status) is serialized once
by protobuf itself and cached. Serialized messages can be concatenated: a second occurrence of a message field
merges into the first, so a metadata part is just appended to an answer (protobuf's encoding rules say so).
Field numbers come from the generated descriptors, and tests/unit/test_extproc_answer_bytes.py checks each
answer against the same message built with protobuf.
"""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as ep
from google.protobuf.descriptor import Descriptor


def _number(message: Descriptor, name: str) -> int:
    return int(message.fields_by_name[name].number)


def varint(value: int) -> bytes:
    """A protobuf base-128 varint (also how bench/fleet.py frames log messages without parsing them)."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(number: int, wire_type: int = 2) -> bytes:
    return varint(number << 3 | wire_type)


_RESPONSE = ep.ProcessingResponse.DESCRIPTOR
REQUEST_BODY = _tag(_number(_RESPONSE, "request_body"))
RESPONSE_BODY = _tag(_number(_RESPONSE, "response_body"))
_COMMON = _tag(_number(ep.BodyResponse.DESCRIPTOR, "response"))
_HEADER_MUTATION = _tag(_number(ep.CommonResponse.DESCRIPTOR, "header_mutation"))
_BODY_MUTATION = _tag(_number(ep.CommonResponse.DESCRIPTOR, "body_mutation"))
_BODY = _tag(_number(ep.BodyMutation.DESCRIPTOR, "body"))
_SET_HEADERS = _tag(_number(ep.HeaderMutation.DESCRIPTOR, "set_headers"))
_OPTION = base_pb2.HeaderValueOption.DESCRIPTOR
_HEADER = _tag(_number(_OPTION, "header"))
_KEY = _tag(_number(base_pb2.HeaderValue.DESCRIPTOR, "key"))
_RAW_VALUE = _tag(_number(base_pb2.HeaderValue.DESCRIPTOR, "raw_value"))
_OVERWRITE = _tag(_number(_OPTION, "append_action"), 0) + varint(base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD)


def _delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + varint(len(payload)) + payload


def set_header(name: str, value: bytes) -> bytes:
    """One entry of a header mutation's `set_headers`: the header replaced, or added if absent."""
    header = _delimited(_KEY, name.encode()) + _delimited(_RAW_VALUE, value)
    return _delimited(_SET_HEADERS, _delimited(_HEADER, header) + _OVERWRITE)


def body_answer(kind: bytes, body: bytes, set_headers: bytes = b"") -> bytes:
    """A `ProcessingResponse` whose body response (`kind`: REQUEST_BODY or RESPONSE_BODY) replaces the body with
    `body` (even an empty one) and sets the headers in `set_headers` (entries from `set_header`)."""
    common = _delimited(_BODY_MUTATION, _delimited(_BODY, body))
    if set_headers:
        common = _delimited(_HEADER_MUTATION, set_headers) + common
    return _delimited(kind, _delimited(_COMMON, common))
