"""The ext_proc's view of the rewrite table, prepared for the hot path.

Each target's header writes are built once per table version, as ready-to-send protobuf messages, so an
attempt costs a dictionary lookup. Entries dropped by a reload stay resolvable for a grace period: a
request that started before the reload may still retry onto a target of the previous version.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as ep

from extproc.translators import Translator, translator_for
from switchyard.api.v1 import rewrite_pb2
from switchyard.config import ClientEndpoint

RETIRED_GRACE_S = 120.0


def header(name: str, value: str | bytes) -> base_pb2.HeaderValueOption:
    raw = value.encode() if isinstance(value, str) else value
    return base_pb2.HeaderValueOption(
        header=base_pb2.HeaderValue(key=name, raw_value=raw),
        append_action=base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD,
    )


@dataclass(frozen=True)
class PreparedTarget:
    key: str
    route: str
    target: str
    model: str
    # client endpoint → headers to set on every attempt (path first, then credentials)
    set_headers: dict[str, tuple[base_pb2.HeaderValueOption, ...]]
    remove_headers: tuple[str, ...]
    # client endpoint → the complete answer for an attempt that changes headers only (built once per table)
    headers_only: dict[str, ep.ProcessingResponse]
    # client endpoint → (translator, client path) where the client speaks another API than this target
    translations: dict[str, tuple[Translator, str]]

    @classmethod
    def from_rewrite(cls, rewrite: rewrite_pb2.TargetRewrite) -> PreparedTarget:
        credentials = tuple(header(h.name, h.value) for h in rewrite.set_headers)
        set_headers = {endpoint: (header(":path", path), *credentials) for endpoint, path in rewrite.paths.items()}
        remove_headers = tuple(rewrite.remove_headers)
        return cls(
            key=rewrite.key,
            route=rewrite.route,
            target=rewrite.target,
            model=rewrite.model,
            set_headers=set_headers,
            remove_headers=remove_headers,
            headers_only={
                endpoint: ep.ProcessingResponse(
                    request_headers=ep.HeadersResponse(
                        response=ep.CommonResponse(
                            header_mutation=ep.HeaderMutation(set_headers=headers, remove_headers=remove_headers)
                        )
                    )
                )
                for endpoint, headers in set_headers.items()
            },
            translations={
                endpoint.value: (translator, endpoint.path)
                for endpoint in ClientEndpoint
                if (translator := translator_for(endpoint.api, rewrite.api or "openai")) is not None
            },
        )


class TargetIndex:
    def __init__(self) -> None:
        self.version = ""
        self._current: dict[str, PreparedTarget] = {}
        self._retired: dict[str, tuple[float, PreparedTarget]] = {}

    @property
    def ready(self) -> bool:
        return bool(self.version)

    def apply(self, table: rewrite_pb2.RewriteTable) -> None:
        now = time.monotonic()
        fresh = {t.key: PreparedTarget.from_rewrite(t) for t in table.targets}
        for key, old in self._current.items():
            if key not in fresh:
                self._retired[key] = (now + RETIRED_GRACE_S, old)
        self._retired = {k: v for k, v in self._retired.items() if v[0] > now and k not in fresh}
        self._current = fresh
        self.version = table.version

    def get(self, key: str) -> PreparedTarget | None:
        found = self._current.get(key)
        if found is None and (retired := self._retired.get(key)) is not None:
            return retired[1]
        return found
