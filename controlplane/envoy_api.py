"""The Envoy API messages the control plane emits, in one place.

Resources are written as plain dicts (they read like Envoy's docs) and converted with `json_format`,
which checks every field name. Converting `typed_config` needs each message type registered first,
hence the imports below even where a module is not referenced by name.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any, TypeVar

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.config.trace.v3 import opentelemetry_pb2  # noqa: F401
from envoy.extensions.access_loggers.filters.cel.v3 import cel_pb2  # noqa: F401 - registers the type
from envoy.extensions.access_loggers.grpc.v3 import als_pb2  # noqa: F401
from envoy.extensions.common.matching.v3 import extension_matcher_pb2  # noqa: F401
from envoy.extensions.filters.common.matcher.action.v3 import skip_action_pb2  # noqa: F401
from envoy.extensions.filters.http.composite.v3 import composite_pb2  # noqa: F401
from envoy.extensions.filters.http.ext_proc.v3 import ext_proc_pb2  # noqa: F401
from envoy.extensions.filters.http.header_mutation.v3 import header_mutation_pb2  # noqa: F401
from envoy.extensions.filters.http.health_check.v3 import health_check_pb2  # noqa: F401
from envoy.extensions.filters.http.json_to_metadata.v3 import json_to_metadata_pb2  # noqa: F401
from envoy.extensions.filters.http.local_ratelimit.v3 import local_rate_limit_pb2  # noqa: F401
from envoy.extensions.filters.http.lua.v3 import lua_pb2  # noqa: F401
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.http.upstream_codec.v3 import upstream_codec_pb2  # noqa: F401
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2  # noqa: F401
from envoy.extensions.retry.priority.previous_priorities.v3 import previous_priorities_config_pb2  # noqa: F401
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2  # noqa: F401
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
from envoy.type.matcher.v3 import http_inputs_pb2  # noqa: F401
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

Cluster = cluster_pb2.Cluster
HttpConnectionManager = http_connection_manager_pb2.HttpConnectionManager
Listener = listener_pb2.Listener
RouteConfiguration = route_pb2.RouteConfiguration
Route = route_components_pb2.Route

CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE_TYPE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"

# The order a state-of-the-world ADS server should push in: clusters before the routes that name them.
PUSH_ORDER = (CLUSTER_TYPE, LISTENER_TYPE, ROUTE_TYPE)

# The metadata namespaces shared with Envoy's Lua filters and the ext_proc (switchyard/contract.py).
from controlplane import message_parts  # noqa: E402
from switchyard.contract import METADATA_NAMESPACE as METADATA_NAMESPACE  # noqa: E402
from switchyard.contract import STREAM_METADATA_NAMESPACE as STREAM_METADATA_NAMESPACE  # noqa: E402
from switchyard.contract import USAGE_METADATA_NAMESPACE as USAGE_METADATA_NAMESPACE  # noqa: E402

M = TypeVar("M", bound=Message)


def typed(type_name: str, **fields: Any) -> dict[str, Any]:
    return {"@type": f"type.googleapis.com/{type_name}", **fields}


def to_message(data: dict[str, Any], message_type: type[M]) -> M:
    return json_format.ParseDict(data, message_type())


def canonical_json(data: dict[str, Any]) -> str:
    """A resource's dict as JSON with sorted keys: the same text for the same content, in every process (what
    snapshot hashes and versions are taken over, and what MessageCache keys by)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


class MessageCache:
    """Resources already converted, by their canonical JSON: `json_format.ParseDict` is pure Python and was
    three fifths of a translation (113 ms for 9 routes), paid again for every resource whenever health or
    latency changed one endpoint. A hit is the message parsed from its serialized bytes (upb, in C): always a
    fresh object, so no caller can change another's.

    Least recently used entries go past the bound: `max_bytes`, or `RETAINED` times the latest translation's size
    (`retain`), whichever is larger, so a config's resources, its successor's and the live variants between them
    always fit. A fixed bound alone did not: a cluster is about 30 KB of JSON (its Lua inline), so 300 routes
    filled 64 MiB, and past that every push converted everything again (6.5 s for 600 routes)."""

    RETAINED = 3

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        # Keyed by the text itself: the same str object ResourceMemo holds (no copy), its hash computed once.
        self._entries: OrderedDict[tuple[type[Message], str], bytes] = OrderedDict()
        self._bytes = 0
        self._min_bytes = self._max_bytes = max_bytes

    def get(self, text: str, message_type: type[M]) -> M | None:
        """The message of `text` if it is still here."""
        key = (message_type, text)
        serialized = self._entries.get(key)
        if serialized is None:
            return None
        self._entries.move_to_end(key)
        return message_type.FromString(serialized)

    def retain(self, translation_bytes: int) -> None:
        """Keep at least `RETAINED` translations of this size (their texts and serialized messages)."""
        self._max_bytes = max(self._min_bytes, self.RETAINED * translation_bytes)

    def message(self, text: str, data: dict[str, Any], message_type: type[M]) -> M:
        """`data` as a `message_type`; `text` is canonical_json(data)."""
        known = self.get(text, message_type)
        if known is not None:
            return known
        message = message_type()
        message_parts.parse(data, message, self._part)
        self._keep(text, message)
        return message

    def _part(self, kind: Descriptor, data: dict[str, Any]) -> Message:
        """A part most resources of a config share, a `typed_config` or a retry policy (message_parts.py)."""
        text = canonical_json(data)
        message_type = message_factory.GetMessageClass(kind)
        known = self.get(text, message_type)
        if known is not None:
            return known
        converted = message_parts.convert(kind, data, self._part)
        self._keep(text, converted)
        return converted

    def _keep(self, text: str, message: Message) -> None:
        serialized = message.SerializeToString()
        self._entries[(type(message), text)] = serialized
        self._bytes += len(text) + len(serialized)
        while self._bytes > self._max_bytes and len(self._entries) > 1:
            (_, old_text), old = self._entries.popitem(last=False)
            self._bytes -= len(old_text) + len(old)

    def __len__(self) -> int:
        return len(self._entries)


def to_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def seconds(value: float) -> str:
    """A `google.protobuf.Duration` in its JSON form, to the millisecond."""
    return f"{value:.3f}s"
