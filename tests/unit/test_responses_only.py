"""Responses requests only OpenAI can serve (controlplane/responses_only.py), as Envoy configuration: flagged from
the body, routed to the route's Responses API targets only, or answered 400 saying why on a route without one."""

from __future__ import annotations

import textwrap
from typing import Any

from envoy.extensions.filters.network.http_connection_manager.v3.http_connection_manager_pb2 import (
    HttpConnectionManager,
)

from controlplane.envoy_api import to_dict
from controlplane.resources.responses_only import FLAGS
from controlplane.resources.route_index import route_dicts
from controlplane.translate import translate
from switchyard.config import load_config_text

CONFIG = """\
providers:
  oa: {kind: openai, base_url: "https://api.openai.com", api_key: sk-responses-only-test}
  an: {kind: anthropic, base_url: "https://api.anthropic.com", api_key: sk-ant-responses-only-test}
routes:
  - model: mixed
    targets: [{name: gpt, provider: oa, model: gpt-4o}, {name: claude, provider: an, model: claude-4}]
  - model: claude-only
    targets: [{name: claude, provider: an, model: claude-4}]
  - model: gpt-only
    targets: [{name: gpt, provider: oa, model: gpt-4o}]
"""


def _resources() -> Any:
    return translate(load_config_text(textwrap.dedent(CONFIG), source="test.yaml", environ={}))


def _routes(name: str) -> list[dict[str, Any]]:
    (route_config,) = _resources().route_configs
    return [r for r in route_dicts(to_dict(route_config)["virtual_hosts"][0]) if r["name"] == name]


def test_flagged_requests_of_a_mixed_route_go_to_its_openai_targets_only() -> None:
    *flagged, unflagged = _routes("responses:mixed")
    assert [r["route"]["cluster"] for r in flagged] == ["route/mixed@responses~gpt"] * len(FLAGS)
    assert unflagged["route"]["cluster"] == "route/mixed@responses"
    flags = [r["match"]["dynamic_metadata"][1] for r in flagged]
    assert [(f["path"][0]["key"], f["value"]) for f in flags] == [
        ("openai_only_previous_response", {"present_match": True}),
        ("openai_only_conversation", {"present_match": True}),
        ("openai_only_prompt", {"present_match": True}),
        ("openai_only_store", {"bool_match": True}),
        ("openai_only_background", {"bool_match": True}),
    ]
    assert [r["route"]["cluster"] for r in _routes("chat:mixed")] == ["route/mixed"], "chat is not concerned"


def test_flagged_requests_of_a_route_without_an_openai_target_get_a_400_saying_why() -> None:
    *flagged, unflagged = _routes("responses:claude-only")
    assert unflagged["route"]["cluster"] == "route/claude-only@responses"
    assert {r["direct_response"]["status"] for r in flagged} == {400}
    message = flagged[0]["direct_response"]["body"]["inline_string"]
    assert message == (
        "`previous_response_id` continues a response stored at OpenAI: only a target of OpenAI's Responses API can "
        "serve this request, and model claude-only has none (its targets: anthropic)."
    )


def test_a_route_of_openai_targets_only_needs_no_flagged_route() -> None:
    assert [r["route"]["cluster"] for r in _routes("responses:gpt-only")] == ["route/gpt-only@responses"]


def test_every_flagging_parameter_is_lifted_from_the_body() -> None:
    (listener,) = _resources().listeners
    hcm = HttpConnectionManager()
    listener.filter_chains[0].filters[0].typed_config.Unpack(hcm)
    rules = to_dict(hcm)["http_filters"][1]["typed_config"]["request_rules"]["rules"]
    lifted = {(tuple(s["key"] for s in r["selectors"]), r["on_present"]["key"]) for r in rules}
    assert {
        (("previous_response_id",), "openai_only_previous_response"),
        (("conversation",), "openai_only_conversation"),
        (("conversation", "id"), "openai_only_conversation"),
        (("prompt", "id"), "openai_only_prompt"),
        (("store",), "openai_only_store"),
        (("background",), "openai_only_background"),
    } <= lifted
