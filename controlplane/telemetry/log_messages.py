"""Envoy's access-log messages as the control plane decodes them: Envoy's own definitions, cut to the fields it
reads (issue 21).

Every client request of the fleet reaches every replica as an answer-log entry, and an entry as Envoy sends it
is mostly what the control plane never reads: addresses, dynamic metadata as protobuf Structs, byte counts,
TLS details. Decoding that into protobuf objects was a tenth of the control plane's CPU per request. The
messages here have the same field numbers and types as Envoy's (copied from its descriptors when this module
is imported, so they cannot drift from the Envoy protos we are built against) and only the fields read by
attempt_log.py, answer_log.py and usage/record.py; the parser skips the rest in C, keeping their bytes
unread. An entry decoded this way offers the same attribute names as Envoy's HTTPAccessLogEntry for those
fields, which is how the handlers, typed with Envoy's classes, read it; a field left out is an
AttributeError, so tests/unit/test_log_messages.py feeds both decodings of full entries to the handlers.

Built at import rather than generated from a .proto: no build step, and nothing to keep in step by hand.
"""

from __future__ import annotations

from typing import Any

from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor

PACKAGE = "switchyard.telemetry.log"

# Envoy's message → (our name for it, the fields kept). Message fields of kept messages point to our copies;
# any other message type (Timestamp, Duration, the stream identifier) stays Envoy's.
_KEPT: dict[Descriptor, tuple[str, tuple[str, ...]]] = {
    als_pb2.StreamAccessLogsMessage.DESCRIPTOR: ("Message", ("identifier", "http_logs")),
    als_pb2.StreamAccessLogsMessage.HTTPAccessLogEntries.DESCRIPTOR: ("Entries", ("log_entry",)),
    accesslog_pb2.HTTPAccessLogEntry.DESCRIPTOR: ("Entry", ("common_properties", "request", "response")),
    accesslog_pb2.AccessLogCommon.DESCRIPTOR: (
        "Common",
        (
            "start_time",
            "time_to_first_upstream_tx_byte",
            "time_to_first_upstream_rx_byte",
            "time_to_last_upstream_rx_byte",
            "time_to_last_downstream_tx_byte",
            "response_flags",
            "route_name",
            "custom_tags",
            "upstream_request_attempt_count",
        ),
    ),
    accesslog_pb2.HTTPRequestProperties.DESCRIPTOR: ("Request", ("request_id",)),
    accesslog_pb2.HTTPResponseProperties.DESCRIPTOR: (
        "Response",
        ("response_code", "response_headers", "response_code_details"),
    ),
}


def _cut(message: Descriptor, name: str, fields: tuple[str, ...], ours: dict[str, str]) -> Any:
    """`message`'s DescriptorProto with only `fields`, named `name`: no options or oneofs (validation rules and
    their imports), its map entries kept as nested types."""
    proto = descriptor_pb2.DescriptorProto()
    message.CopyToProto(proto)
    kept = [field for field in proto.field if field.name in fields]
    missing = set(fields) - {field.name for field in kept}
    if missing:
        raise LookupError(f"{message.full_name} has no field {sorted(missing)}")
    types = {field.type_name.rsplit(".", 1)[-1] for field in kept}
    nested = [n for n in proto.nested_type if n.options.map_entry and n.name in types]
    entries = {n.name for n in nested}
    out = descriptor_pb2.DescriptorProto(name=name)
    for field in kept:
        copy = out.field.add()
        copy.CopyFrom(field)
        copy.ClearField("options")
        copy.ClearField("oneof_index")
        original = field.type_name.lstrip(".")
        if original in ours:
            copy.type_name = f".{PACKAGE}.{ours[original]}"
        elif original.startswith(f"{message.full_name}.") and original.rsplit(".", 1)[-1] in entries:
            copy.type_name = f".{PACKAGE}.{name}.{original.rsplit('.', 1)[-1]}"
    for entry in nested:
        copy_entry = out.nested_type.add()
        copy_entry.CopyFrom(entry)
        for field in copy_entry.field:
            field.ClearField("options")
        copy_entry.options.Clear()
        copy_entry.options.map_entry = True
    return out


def _build() -> Any:
    ours = {message.full_name: name for message, (name, _) in _KEPT.items()}
    file = descriptor_pb2.FileDescriptorProto(name="switchyard/telemetry/log_messages.proto", package=PACKAGE)
    file.syntax = "proto3"
    dependencies: set[str] = set()
    for message, (name, fields) in _KEPT.items():
        file.message_type.append(_cut(message, name, fields, ours))
        for field in message.fields:
            kind = field.message_type
            if (
                field.name in fields
                and kind is not None
                and kind.full_name not in ours
                and not kind.GetOptions().map_entry
            ):
                dependencies.add(kind.file.name)
    file.dependency.extend(sorted(dependencies))
    pool = descriptor_pool.Default()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.Message"))


# StreamAccessLogsMessage as the access-log service decodes it: .FromString is its request deserializer.
StreamAccessLogsMessage: Any = _build()
