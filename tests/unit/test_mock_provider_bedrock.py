"""The fake provider's Bedrock Converse API (``--api bedrock``): it checks SigV4 like AWS (403 when the
signature is not the test credential's), and frames streams in AWS's binary event stream."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import botocore.session
import pytest
import yarl
from botocore.eventstream import EventStreamBuffer

from extproc.sigv4 import signature_headers
from switchyard.mock_provider import anthropic_responses, bedrock_responses, gemini_responses, responses
from switchyard.mock_provider.bedrock_responses import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY
from switchyard.mock_provider.rules import Match, Rule, parse_rule_spec, rule_from_json
from switchyard.mock_provider.server import MockProvider
from tests.unit.test_mock_provider_anthropic import run

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
PATH = f"/model/{quote(MODEL, safe='')}/converse"
BODY = json.dumps({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}).encode()


def _signing(secret: str = TEST_SECRET_ACCESS_KEY, key_id: str = TEST_ACCESS_KEY_ID) -> str:
    fields = {"region": "us-east-1", "service": "bedrock", "access_key_id": key_id, "secret_access_key": secret}
    return urlencode(fields, quote_via=quote)


def _signed(base: str, path: str, body: bytes = BODY, **signing: str) -> dict[str, str]:
    host = base.removeprefix("http://")
    headers = signature_headers(_signing(**signing), "POST", "http", host, path, body)
    return {**headers, "content-type": "application/json", "host": host}


async def _post(
    session: aiohttp.ClientSession, base: str, path: str, headers: dict[str, str], body: bytes = BODY
) -> tuple[int, dict[str, str], bytes]:
    async with session.post(yarl.URL(base + path, encoded=True), data=body, headers=headers) as resp:
        return resp.status, {k.lower(): v for k, v in resp.headers.items()}, await resp.read()


def test_a_request_signed_with_the_test_credential_is_answered() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        status, _, raw = await _post(session, base, PATH, _signed(base, PATH))
        assert status == 200, raw
        answer = json.loads(raw)
        assert answer["output"]["message"]["content"] == [{"text": responses.reply_text("t", MODEL)}]
        assert answer["stopReason"] == "end_turn" and answer["usage"]["outputTokens"] == 4

    run(scenario, api="bedrock")


def test_a_wrong_signature_is_refused_with_403_like_aws() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        cases: list[tuple[dict[str, str], bytes, str]] = [
            (_signed(base, PATH, secret="wrong"), BODY, "InvalidSignatureException"),
            (_signed(base, PATH, key_id="AKIDOTHER"), BODY, "UnrecognizedClientException"),
            (_signed(base, PATH), BODY.replace(b"hi", b"ho"), "InvalidSignatureException"),  # body changed after
            ({"content-type": "application/json"}, BODY, "MissingAuthenticationTokenException"),
        ]
        for headers, body, kind in cases:
            status, response_headers, raw = await _post(session, base, PATH, headers, body)
            assert (status, response_headers["x-amzn-errortype"]) == (403, kind), raw
            assert json.loads(raw)["message"]

    run(scenario, api="bedrock")


def _frames(raw: bytes) -> list[tuple[dict[str, Any], Any]]:
    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    return [(dict(m.headers), json.loads(m.payload)) for m in buffer]


def test_streams_are_aws_event_stream_frames() -> None:
    path = PATH + "-stream"

    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        async with session.post(yarl.URL(base + path, encoded=True), data=BODY, headers=_signed(base, path)) as resp:
            assert resp.status == 200 and resp.headers["content-type"] == "application/vnd.amazon.eventstream"
            frames = _frames(await resp.read())
        kinds = [headers[":event-type"] for headers, _ in frames]
        assert kinds == ["messageStart", *["contentBlockDelta"] * 3, "contentBlockStop", "messageStop", "metadata"]
        text = "".join(
            payload["delta"]["text"] for headers, payload in frames if headers[":event-type"] == "contentBlockDelta"
        )
        assert text == responses.reply_text("t", MODEL)

    run(scenario, api="bedrock", stream_chunks=3, chunk_delay_ms=0)


def test_failure_rules_and_mid_stream_exceptions() -> None:
    path = PATH + "-stream"

    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        status, _, raw = await _post(session, base, PATH.replace("haiku", "busy"), {})
        assert status == 429 and "injected 429" in json.loads(raw)["message"]
        async with session.post(yarl.URL(base + path, encoded=True), data=BODY, headers=_signed(base, path)) as resp:
            frames = _frames(await resp.read())
        headers, payload = frames[-1]
        assert headers[":message-type"] == "exception" and headers[":exception-type"] == "serviceUnavailableException"
        assert "injected stream error" in payload["message"]

    rules = [Rule(match=Match(model=MODEL.replace("haiku", "busy")), status=429), Rule(stream_error_after=1)]
    run(scenario, rules, api="bedrock", stream_chunks=3, chunk_delay_ms=0)


def _converse_errors() -> dict[str, int]:
    """The errors botocore's bedrock-runtime model lists for Converse, with their HTTP status."""
    operation = botocore.session.get_session().get_service_model("bedrock-runtime").operation_model("Converse")
    return {shape.name: shape.metadata["error"]["httpStatusCode"] for shape in operation.error_shapes}


def test_injected_errors_carry_the_error_type_header_bedrock_names_them_with() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        got = []
        for _ in range(3):
            status, headers, raw = await _post(session, base, PATH, _signed(base, PATH))
            got.append((status, headers["x-amzn-errortype"], headers.get("retry-after")))
            assert json.loads(raw)["message"]
        assert got == [
            (429, "ThrottlingException", "1"),  # the status's usual name
            (429, "ModelNotReadyException", "1"),  # a rule's own
            (503, "ServiceUnavailableException", None),
        ]

    rules = [
        Rule(status=429, times=1),
        Rule(status=429, error_type="ModelNotReadyException", times=1),
        Rule(status=503),
    ]
    run(scenario, rules, api="bedrock")


def test_the_error_types_the_mock_names_are_bedrocks_own() -> None:
    """Each status's usual name, and the 429 a loading model answers with, are errors botocore's model lists for
    Converse with that status (ValidationException's 400 aside, the catch-all the mock shares with AWS)."""
    errors = _converse_errors()
    for status, kind in bedrock_responses.ERROR_TYPES.items():
        assert errors.get(kind) == status, (kind, status, errors)
    assert errors["ModelNotReadyException"] == 429


def test_a_rule_names_its_error_in_each_apis_own_shape() -> None:
    assert json.loads(responses.error_body(429, "m", kind="insufficient_quota"))["error"] == {
        "message": "m",
        "type": "insufficient_quota",
        "param": None,
        "code": "insufficient_quota",
    }
    assert json.loads(anthropic_responses.error_body(529, "m", "overloaded_error"))["error"]["type"] == (
        "overloaded_error"
    )
    assert json.loads(gemini_responses.error_body(429, "m", "RESOURCE_EXHAUSTED"))["error"]["status"] == (
        "RESOURCE_EXHAUSTED"
    )


def test_error_type_needs_a_status_and_parses_from_specs_and_json() -> None:
    assert parse_rule_spec("status=429,error_type=ModelNotReadyException").error_type == "ModelNotReadyException"
    rule = rule_from_json({"status": 429, "error_type": "insufficient_quota"})
    assert rule.error_type == "insufficient_quota" and rule_from_json(rule.to_json()) == rule
    for bad in ({"error_type": "X"}, {"status": 429, "error_type": " "}, {"status": 429, "error_type": 3}):
        with pytest.raises(ValueError, match="error_type"):
            rule_from_json(bad)
