"""The guardrails filter's ext_proc as Envoy gets it: what of the client's headers it is sent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from google.protobuf import json_format

from controlplane.translate import translate
from switchyard.config import load_config_text
from switchyard.contract import GUARD_READS_HEADERS

CONFIG = """
providers:
  p: {kind: openai, base_url: "http://127.0.0.1:9", api_key: sk-unit}
routes:
  - model: guarded
    guardrails: [{check: pii, action: mask}]
    targets: [{provider: p, model: m}]
"""


def _ext_procs(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if str(node.get("@type", "")).endswith("ext_proc.v3.ExternalProcessor"):
            yield node
        for value in node.values():
            yield from _ext_procs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _ext_procs(value)


def test_the_guard_streams_get_only_the_headers_they_read_never_the_clients_key() -> None:
    resources = translate(load_config_text(CONFIG))
    guards = [
        ext_proc
        for config in resources.route_configs
        for ext_proc in _ext_procs(json_format.MessageToDict(config, preserving_proto_field_name=True))
    ]

    assert guards, "the guarded route has a guard filter"
    for guard in guards:
        forwarded = [p["exact"] for p in guard["forward_rules"]["allowed_headers"]["patterns"]]
        assert forwarded == list(GUARD_READS_HEADERS)
        assert not {"authorization", "x-api-key"} & set(forwarded)
