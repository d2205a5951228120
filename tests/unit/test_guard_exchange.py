"""The guard exchange message by message, and the control plane's side of it: which routes carry which rules."""

from __future__ import annotations

import asyncio
import json

from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as ep

from controlplane.resources.guardrails import guard_spec
from controlplane.telemetry.guardrail_counts import GuardrailCounts
from extproc.guard_exchange import GuardExchange
from switchyard.config import ClientEndpoint, load_config_text
from switchyard.contract import CLIENT_HEADER, GUARDRAILS_METADATA_NAMESPACE, GuardSpec

CONFIG = """
listen: 127.0.0.1:8080
providers:
  oa: {kind: openai, base_url: "http://127.0.0.1:1", api_key: sk-x}
clients:
  team: {keys: ["team-key-0123456789abcdef"], models: [open], guardrails: [{check: terms, terms: [zeus]}]}
  plain: {keys: ["plain-key-0123456789abcdef"]}
routes:
  - model: guarded
    targets: [{provider: oa, model: gpt-4o}]
    guardrails: [{check: pii, stage: both}]
  - model: open
    targets: [{provider: oa, model: gpt-4o}]
  - model: bare
    targets: [{provider: oa, model: gpt-4o}]
"""


def _route(config_text: str, model: str) -> GuardSpec | None:
    config = load_config_text(config_text)
    route = next(r for r in config.routes if r.model == model)
    return guard_spec(config, ClientEndpoint.MESSAGES, route)


def test_routes_carry_their_rules_and_those_of_the_clients_that_may_call_them() -> None:
    guarded = _route(CONFIG, "guarded")
    assert guarded is not None and guarded.api == "anthropic"
    assert guarded.route == ({"check": "pii", "stage": "both"},) and guarded.clients == ()
    open_route = _route(CONFIG, "open")
    assert open_route is not None and open_route.route == ()
    assert open_route.clients == (("team", ({"check": "terms", "terms": ["zeus"]},)),)
    assert _route(CONFIG, "bare") is None  # never reaches the ext_proc


def _headers(client: str = "") -> ep.ProcessingRequest:
    headers = [base_pb2.HeaderValue(key=CLIENT_HEADER, raw_value=client.encode())] if client else []
    return ep.ProcessingRequest(request_headers=ep.HttpHeaders(headers=base_pb2.HeaderMap(headers=headers)))


def _body(document: object) -> ep.ProcessingRequest:
    return ep.ProcessingRequest(request_body=ep.HttpBody(body=json.dumps(document).encode(), end_of_stream=True))


SPEC = GuardSpec(
    "openai", route=({"check": "pii"},), clients=(("team", ({"check": "terms", "terms": ["zeus"]},)),)
).encode()


def test_a_client_without_rules_on_a_route_without_rules_costs_one_message() -> None:
    exchange = GuardExchange(GuardSpec("openai", clients=(("team", ({"check": "pii"},)),)).encode())
    answer = asyncio.run(exchange.answer(_headers("plain")))
    assert exchange.finished
    assert answer.mode_override.request_body_mode == answer.mode_override.NONE


def test_a_masked_request_and_its_report_name_rules_never_text() -> None:
    exchange = GuardExchange(SPEC)
    asyncio.run(exchange.answer(_headers()))
    body = {"model": "m", "messages": [{"role": "user", "content": "write to ada@example.com"}]}
    answer = asyncio.run(exchange.answer(_body(body)))
    sent = json.loads(answer.request_body.response.body_mutation.body)
    assert sent["messages"][0]["content"] == "write to [EMAIL_1]"
    report = answer.dynamic_metadata.fields[GUARDRAILS_METADATA_NAMESPACE].struct_value.fields["request"]
    assert report.string_value == "pii/pii/mask/1"
    assert exchange.finished  # no rule checks answers: the response never comes here


def test_the_clients_own_rules_come_with_the_routes_and_block_with_a_400() -> None:
    exchange = GuardExchange(SPEC)
    asyncio.run(exchange.answer(_headers("team")))
    answer = asyncio.run(exchange.answer(_body({"messages": [{"role": "user", "content": "about Zeus"}]})))
    assert answer.immediate_response.status.code == 400
    assert b"guardrail 'terms'" in answer.immediate_response.body and b"Zeus" not in answer.immediate_response.body


def test_unreadable_bodies_are_refused_not_passed_unchecked() -> None:
    for raw in (b"\xff\xfe not utf-8", b"[" * 100_000, b"[1, 2]"):
        exchange = GuardExchange(SPEC)
        asyncio.run(exchange.answer(_headers()))
        request = ep.ProcessingRequest(request_body=ep.HttpBody(body=raw, end_of_stream=True))
        assert asyncio.run(exchange.answer(request)).immediate_response.status.code == 400


def test_a_plugin_that_is_not_installed_refuses_the_request_saying_which() -> None:
    """Closed, never unchecked, and with a message an operator can act on (not a bare 500 from a failed stream)."""
    spec = GuardSpec("openai", route=({"check": "plugin", "name": "acme.absent"},)).encode()
    for _ in range(2):  # the failure is cached like a built rule set: the same answer every time
        exchange = GuardExchange(spec)
        answer = asyncio.run(exchange.answer(_headers()))
        assert answer.immediate_response.status.code == 500 and exchange.finished
        assert b"acme.absent" in answer.immediate_response.body


def test_counts_are_per_rule_action_and_stage() -> None:
    counts = GuardrailCounts()
    counts.add("request", "pii/pii/mask/3 secrets/secrets/block/1")
    counts.add("request", "pii/pii/mask/1")
    counts.add("response", "")
    assert counts.status() == [
        {"rule": "pii", "check": "pii", "action": "mask", "stage": "request", "requests": 2},
        {"rule": "secrets", "check": "secrets", "action": "block", "stage": "request", "requests": 1},
    ]
