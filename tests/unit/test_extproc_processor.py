"""The ext_proc without Envoy: it translates the attempts that carry a translation request and nothing else.

The per-attempt rewrite of path, credentials and model is Envoy's (envoy/lua/attempt_rewrite.lua, tested in
test_attempt_rewrite_lua.py); what reaches Python is only the attempts to a target of another API.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as ep

from extproc.server import AttemptProcessor
from switchyard import contract
from switchyard.contract import TranslationRequest

REQUEST = TranslationRequest(
    client_api="openai", provider_api="anthropic", model="claude-4", client_model="gpt-4", route="gpt-4", target="c"
)


def _headers_message(**headers: str) -> ep.ProcessingRequest:
    header_map = base_pb2.HeaderMap(
        headers=[base_pb2.HeaderValue(key=k, raw_value=v.encode()) for k, v in headers.items()]
    )
    return ep.ProcessingRequest(request_headers=ep.HttpHeaders(headers=header_map))


def _run(*messages: ep.ProcessingRequest) -> list[ep.ProcessingResponse]:
    async def stream() -> AsyncIterator[ep.ProcessingRequest]:
        for message in messages:
            yield message

    async def run() -> list[ep.ProcessingResponse]:
        return [response async for response in AttemptProcessor().Process(stream(), None)]

    return asyncio.run(run())


def test_translation_request_round_trips_through_its_header_value() -> None:
    odd = TranslationRequest("anthropic", "openai", "m&x=1 é", "client/model%", "r", "t,1")
    assert contract.decode_translation_request(odd.encode()) == odd
    assert odd.encode().startswith(contract.TRANSLATION_VALUE_PREFIX), "Envoy's matcher relies on it"
    assert contract.decode_translation_request("client_api=openai") is None


def test_a_translated_attempt_removes_the_header_before_it_reaches_the_provider() -> None:
    (headers_answer,) = _run(_headers_message(**{contract.TRANSLATE_HEADER: REQUEST.encode()}))
    mutation = headers_answer.request_headers.response.header_mutation
    assert list(mutation.remove_headers) == [contract.TRANSLATE_HEADER]


def test_the_translated_body_carries_the_target_model_and_its_exact_length() -> None:
    body = json.dumps({"model": "gpt-4", "max_tokens": 5, "messages": [{"role": "user", "content": "héllo"}]})
    _, body_answer = _run(
        _headers_message(**{contract.TRANSLATE_HEADER: REQUEST.encode()}),
        ep.ProcessingRequest(request_body=ep.HttpBody(body=body.encode(), end_of_stream=True)),
    )
    common = body_answer.request_body.response
    sent = common.body_mutation.body
    assert json.loads(sent)["model"] == "claude-4"
    headers = {h.header.key: h.header.raw_value.decode() for h in common.header_mutation.set_headers}
    assert headers["content-length"] == str(len(sent))


def test_an_attempt_without_a_translation_request_passes_unchanged() -> None:
    (answer,) = _run(_headers_message(**{"content-type": "application/json"}))
    assert answer.WhichOneof("response") == "request_headers"
    assert not answer.request_headers.HasField("response")


@pytest.mark.parametrize("kind", ["response_headers", "response_body", "request_trailers", "response_trailers"])
def test_unexpected_messages_are_answered_not_left_to_time_out(kind: str) -> None:
    message_type = ep.HttpHeaders if "headers" in kind else ep.HttpBody if "body" in kind else ep.HttpTrailers
    (response,) = _run(ep.ProcessingRequest(**{kind: message_type()}))
    assert response.WhichOneof("response") == kind


def test_unsupported_parameters_are_refused_with_a_plain_message_envoy_shapes_for_the_client() -> None:
    body = json.dumps({"model": "gpt-4", "logprobs": True, "messages": [{"role": "user", "content": "x"}]})
    _, answer = _run(
        _headers_message(**{contract.TRANSLATE_HEADER: REQUEST.encode()}),
        ep.ProcessingRequest(request_body=ep.HttpBody(body=body.encode(), end_of_stream=True)),
    )
    reply = answer.immediate_response
    assert reply.status.code == 400
    assert b"`logprobs`" in reply.body and b"'c'" in reply.body


RULES = '{"cap":{"max_completion_tokens":100},"drop":["temperature"],"rename":{"max_tokens":"max_completion_tokens"}}'
RULES_ONLY = TranslationRequest("openai", "openai", "o3", "gpt-4", "gpt-4", "reasoning", body_rules=RULES)


def test_a_same_api_attempt_with_body_rules_gets_them_and_its_model_and_skips_the_response() -> None:
    body = json.dumps({"model": "gpt-4", "max_tokens": 500, "temperature": 0.2, "messages": []})
    headers_answer, body_answer = _run(
        _headers_message(**{contract.TRANSLATE_HEADER: RULES_ONLY.encode()}),
        ep.ProcessingRequest(request_body=ep.HttpBody(body=body.encode(), end_of_stream=True)),
        # Envoy sends nothing more after the override; were it to, the stream is already over.
        ep.ProcessingRequest(response_headers=ep.HttpHeaders()),
    )
    assert list(headers_answer.request_headers.response.header_mutation.remove_headers) == [contract.TRANSLATE_HEADER]
    override = headers_answer.mode_override
    assert (override.response_header_mode, override.response_body_mode) == (override.SKIP, override.NONE)
    common = body_answer.request_body.response
    sent = common.body_mutation.body
    assert json.loads(sent) == {"model": "o3", "max_completion_tokens": 100, "messages": []}
    headers = {h.header.key: h.header.raw_value.decode() for h in common.header_mutation.set_headers}
    assert headers == {"content-length": str(len(sent))}


def test_body_rules_apply_to_the_translated_body() -> None:
    request = TranslationRequest(
        "openai", "anthropic", "claude-4", "gpt-4", "gpt-4", "c", body_rules='{"set":{"top_k":5}}'
    )
    body = json.dumps({"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]})
    _, body_answer = _run(
        _headers_message(**{contract.TRANSLATE_HEADER: request.encode()}),
        ep.ProcessingRequest(request_body=ep.HttpBody(body=body.encode(), end_of_stream=True)),
    )
    sent = json.loads(body_answer.request_body.response.body_mutation.body)
    assert sent["top_k"] == 5 and sent["model"] == "claude-4" and sent["max_tokens"] == 4096
