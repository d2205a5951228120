"""A resource's dict into its message, with the parts most resources share converted apart (by a caller's cache).

`json_format.ParseDict` is pure Python, and much of what it converted was the same in every cluster or route:
a 300-route config held 9,301 `typed_config`s, 5 distinct, 12 MB of JSON (the upstream filters with their Lua
inline in each translating cluster, the retry predicates in each route), and 2,110 route retry policies, one
distinct. Here each such part (`SHARED`) is cut out of the dict before `ParseDict`, a stand-in holding its place,
and set afterwards from `convert_part`, which the MessageCache answers from the part's canonical JSON. Nothing
else changes: the message is byte for byte the one `ParseDict` makes of the whole dict
(tests/unit/test_message_cache.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from google.protobuf import any_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

ANY = any_pb2.Any.DESCRIPTOR.full_name
# Message types converted apart: the same in most resources of a config, or (routes) kept apart so that a
# reload that edits one route of 300 converts that route only, not the route configuration that holds them all
# (0.58 s of CPU), wherever the route is (the virtual host's list, the route index's map: route_index.py).
SHARED = frozenset(
    {ANY, "envoy.config.route.v3.RetryPolicy", "envoy.config.core.v3.HeaderValueOption", "envoy.config.route.v3.Route"}
)
_ANY_STAND_IN = {"@type": "type.googleapis.com/google.protobuf.Empty"}  # converted in no time, then overwritten
_Path = tuple[str | int, ...]  # field names, repeated indexes and map keys, from the message down to a part
ConvertPart = Callable[[Descriptor, dict[str, Any]], Message]


def parse(data: dict[str, Any], message: Message, convert_part: ConvertPart) -> None:
    """Fill `message` from `data` as `json_format.ParseDict` would, every `SHARED` part from `convert_part`."""
    parts: list[tuple[_Path, Descriptor, dict[str, Any]]] = []
    descriptor = cast(Descriptor, message.DESCRIPTOR)  # upb's descriptor class, the same interface
    json_format.ParseDict(_cut(data, descriptor, (), parts), message)
    for path, kind, value in parts:
        _at(message, path).CopyFrom(convert_part(kind, value))


def convert(kind: Descriptor, data: dict[str, Any], convert_part: ConvertPart) -> Message:
    """One part as its message (an Any's dict is `{"@type": ..., fields}`), the parts inside it from
    `convert_part` too."""
    if kind.full_name != ANY:
        message = message_factory.GetMessageClass(kind)()
        parse(data, message, convert_part)
        return message
    packed = _message_class(data["@type"])
    if packed is None or packed.DESCRIPTOR.full_name.startswith("google.protobuf."):
        return json_format.ParseDict(data, any_pb2.Any())  # a well-known type: its JSON has a form of its own
    inner = packed()
    parse({k: v for k, v in data.items() if k != "@type"}, inner, convert_part)
    return any_pb2.Any(type_url=data["@type"], value=inner.SerializeToString())


def _message_class(type_url: str) -> type[Message] | None:
    try:
        descriptor = descriptor_pool.Default().FindMessageTypeByName(type_url.rsplit("/", 1)[-1])
    except KeyError:
        return None  # ParseDict says so, in its words
    cls: type[Message] = message_factory.GetMessageClass(descriptor)
    return cls


def _cut(
    node: dict[str, Any], descriptor: Descriptor, path: _Path, parts: list[tuple[_Path, Descriptor, dict[str, Any]]]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        field = descriptor.fields_by_name.get(key) or descriptor.fields_by_camelcase_name.get(key)
        if field is None or field.message_type is None:
            out[key] = value  # a scalar, or a name ParseDict will refuse in its own words
            continue
        kind = field.message_type
        if kind.GetOptions().map_entry:
            entry = kind.fields_by_name["value"].message_type
            string_keys = kind.fields_by_name["key"].type == FieldDescriptor.TYPE_STRING
            out[key] = (
                {k: _value(v, entry, (*path, field.name, k), parts) for k, v in value.items()}
                if entry is not None and string_keys and isinstance(value, dict)
                else value
            )
        elif field.is_repeated and isinstance(value, list):
            out[key] = [_value(v, kind, (*path, field.name, i), parts) for i, v in enumerate(value)]
        else:
            out[key] = _value(value, kind, (*path, field.name), parts)
    return out


def _value(value: Any, kind: Descriptor, path: _Path, parts: list[tuple[_Path, Descriptor, dict[str, Any]]]) -> Any:
    if not isinstance(value, dict) or (kind.full_name.startswith("google.protobuf.") and kind.full_name != ANY):
        return value  # well-known types (Struct, Duration, wrappers...) have JSON forms of their own
    if kind.full_name in SHARED:
        if kind.full_name == ANY and not isinstance(value.get("@type"), str):
            return value  # ParseDict says what is wrong with it
        parts.append((path, kind, value))
        return dict(_ANY_STAND_IN) if kind.full_name == ANY else {}  # ParseDict takes an Any's "@type" out and back
    return _cut(value, kind, path, parts)


def _at(message: Any, path: _Path) -> Any:
    """The part at `path`: a message's field by name, a repeated field's element or a map's value by key."""
    for step in path:
        message = getattr(message, str(step)) if hasattr(message, "DESCRIPTOR") else message[step]
    return message
