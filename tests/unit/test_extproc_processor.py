"""The ext_proc without Envoy: it translates the attempts that carry a translation request and nothing else.

The per-attempt rewrite of path, credentials and model is Envoy's (envoy/lua/attempt_rewrite.lua, tested in
test_attempt_rewrite_lua.py); what reaches Python is only the attempts to a target of another API. Envoy sends
the request headers (with the attempt's marker), the request body, and the response body with the provider's
headers as metadata; a whole answer's status goes back as metadata for a Lua filter to apply.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as ep
from google.protobuf import json_format

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


def _marked(marker: str = contract.TRANSLATE_HEADER, value: str | None = None) -> ep.ProcessingRequest:
    """The request headers as Envoy sends them on a marked attempt, after its rewrite."""
    return _headers_message(
        **{
            marker: REQUEST.encode() if value is None else value,
            ":authority": "api.anthropic.com",
            ":path": "/v1/messages",
        }
    )


def _request_body(body: str) -> ep.ProcessingRequest:
    return ep.ProcessingRequest(request_body=ep.HttpBody(body=body.encode(), end_of_stream=True))


def _response_body(body: bytes, end: bool = True, **headers: str) -> ep.ProcessingRequest:
    message = ep.ProcessingRequest(response_body=ep.HttpBody(body=body, end_of_stream=end))
    if headers:
        message.metadata_context.filter_metadata[contract.ATTEMPT_METADATA_NAMESPACE].update(
            {contract.ATTEMPT_RESPONSE_HEADERS_KEY: headers}
        )
    return message


def _translated(answer: ep.ProcessingResponse) -> dict[str, Any]:
    """What the ext_proc asks the Lua filters to apply (metadata `switchyard.translated`)."""
    fields = answer.dynamic_metadata.fields
    if contract.TRANSLATED_METADATA_NAMESPACE not in fields:
        return {}
    value = json_format.MessageToDict(fields[contract.TRANSLATED_METADATA_NAMESPACE].struct_value)
    assert isinstance(value, dict)
    return value


BODY = json.dumps({"model": "gpt-4", "max_tokens": 5, "messages": [{"role": "user", "content": "héllo"}]})
ANSWER = json.dumps(
    {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-4",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }
).encode()


class _AttemptStreamContext:
    """What the servicer reads of a stream's context: its initial metadata, which for an attempt (not a
    guarded client request) carries no guardrails header."""

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()


def _run(*messages: ep.ProcessingRequest) -> list[ep.ProcessingResponse]:
    async def stream() -> AsyncIterator[ep.ProcessingRequest]:
        for message in messages:
            yield message

    async def run() -> list[ep.ProcessingResponse]:
        return [response async for response in AttemptProcessor().Process(stream(), _AttemptStreamContext())]

    return asyncio.run(run())


def test_translation_request_round_trips_through_its_header_value() -> None:
    odd = TranslationRequest("anthropic", "openai", "m&x=1 é", "client/model%", "r", "t,1")
    assert contract.decode_translation_request(odd.encode()) == odd
    assert odd.encode().startswith(contract.TRANSLATION_VALUE_PREFIX), "Envoy's matcher relies on it"
    assert contract.decode_translation_request("client_api=openai") is None


def test_a_streamed_attempt_asks_envoy_for_the_answer_in_chunks_and_a_whole_one_does_not() -> None:
    """One ext_proc filter serves both: it sends answers whole unless told otherwise in this answer."""
    (streamed,) = _run(_marked(contract.TRANSLATE_STREAM_HEADER))
    assert streamed.HasField("request_headers")
    mode = json_format.MessageToDict(streamed.mode_override, preserving_proto_field_name=True)
    assert mode == contract.TRANSLATED_STREAM_MODE
    assert mode["response_body_mode"] == "STREAMED" and mode["response_header_mode"] == "SKIP"
    (whole,) = _run(_marked(contract.TRANSLATE_HEADER))
    assert whole.HasField("request_headers") and not whole.HasField("mode_override")


@pytest.mark.parametrize("marker", [contract.TRANSLATE_HEADER, contract.TRANSLATE_STREAM_HEADER])
def test_the_marker_that_brought_a_translated_attempt_is_removed_before_the_provider(marker: str) -> None:
    """As for body rules: Envoy's matchers have read it by now, and no provider may receive it."""
    (headers_answer,) = _run(_marked(marker))
    assert list(headers_answer.request_headers.response.header_mutation.remove_headers) == [marker]


def test_the_translated_body_carries_the_target_model_and_its_exact_length() -> None:
    _, body_answer = _run(_marked(), _request_body(BODY))
    common = body_answer.request_body.response
    sent = common.body_mutation.body
    assert json.loads(sent)["model"] == "claude-4"
    headers = {h.header.key: h.header.raw_value.decode() for h in common.header_mutation.set_headers}
    assert headers["content-length"] == str(len(sent))
    assert headers["content-type"] == "application/json"
    # For an answer without a body (no message to the ext_proc), the statuses that change: Anthropic's 529.
    assert _translated(body_answer) == {"stream": False, "status": "", "statuses": {"529": "503"}}


def test_a_whole_answer_is_translated_with_the_clients_status_for_the_lua_filter_to_apply() -> None:
    *_, answer = _run(
        _marked(),
        _request_body(BODY),
        _response_body(ANSWER, **{":status": "200", "content-type": "application/json"}),
    )
    translated = json.loads(answer.response_body.response.body_mutation.body)
    assert translated["object"] == "chat.completion" and translated["model"] == "claude-4"  # the model that served
    assert _translated(answer)["status"] == "200"
    # Read once: the provider's headers are blanked in the request's metadata (Envoy's logs carry it).
    attempt = answer.dynamic_metadata.fields[contract.ATTEMPT_METADATA_NAMESPACE].struct_value
    assert attempt.fields[contract.ATTEMPT_RESPONSE_HEADERS_KEY].string_value == ""


def test_an_overloaded_provider_is_a_503_for_an_openai_client_in_time_for_the_fallback() -> None:
    error = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    *_, answer = _run(
        _marked(), _request_body(BODY), _response_body(error, **{":status": "529", "content-type": "application/json"})
    )
    assert _translated(answer)["status"] == "503"
    assert json.loads(answer.response_body.response.body_mutation.body)["error"]["message"] == "Overloaded"


def test_a_stream_is_translated_chunk_by_chunk() -> None:
    streamed = json.dumps({"model": "gpt-4", "stream": True, "messages": [{"role": "user", "content": "x"}]})
    start = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","type":"message","role":'
        b'"assistant","model":"claude-4","content":[],"usage":{"input_tokens":3,"output_tokens":1}}}\n\n'
    )
    _, body_answer, first, last = _run(
        _marked(contract.TRANSLATE_STREAM_HEADER),
        _request_body(streamed),
        _response_body(start, end=False, **{":status": "200", "content-type": "text/event-stream"}),
        _response_body(b'event: message_stop\ndata: {"type":"message_stop"}\n\n'),
    )
    assert _translated(body_answer)["stream"] is True
    assert first.response_body.response.body_mutation.body.startswith(b"data: ")
    assert last.response_body.response.body_mutation.body.endswith(b"data: [DONE]\n\n")


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
    _, answer = _run(_marked(), _request_body(body))
    reply = answer.immediate_response
    assert reply.status.code == 400
    assert b"`logprobs`" in reply.body and b"'c'" in reply.body


RULES = '{"cap":{"max_completion_tokens":100},"drop":["temperature"],"rename":{"max_tokens":"max_completion_tokens"}}'
RULES_ONLY = TranslationRequest("openai", "openai", "o3", "gpt-4", "gpt-4", "reasoning", body_rules=RULES)


def test_a_same_api_attempt_with_body_rules_gets_them_and_its_model_and_leaves_the_response_alone() -> None:
    body = json.dumps({"model": "gpt-4", "max_tokens": 500, "temperature": 0.2, "messages": []})
    headers_answer, body_answer = _run(_marked(contract.RULES_HEADER, RULES_ONLY.encode()), _request_body(body))
    common = body_answer.request_body.response
    sent = common.body_mutation.body
    assert json.loads(sent) == {"model": "o3", "max_completion_tokens": 100, "messages": []}
    headers = {h.header.key: h.header.raw_value.decode() for h in common.header_mutation.set_headers}
    assert headers == {"content-length": str(len(sent))}
    # and the stream ended: its ext_proc filter skips the response. No Lua filter follows it: the ext_proc
    # removes the marker itself.
    assert list(headers_answer.request_headers.response.header_mutation.remove_headers) == [contract.RULES_HEADER]


def test_body_rules_apply_to_the_translated_body() -> None:
    request = TranslationRequest(
        "openai", "anthropic", "claude-4", "gpt-4", "gpt-4", "c", body_rules='{"set":{"top_k":5}}'
    )
    body = json.dumps({"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]})
    _, body_answer = _run(_marked(value=request.encode()), _request_body(body))
    sent = json.loads(body_answer.request_body.response.body_mutation.body)
    assert sent["top_k"] == 5 and sent["model"] == "claude-4" and sent["max_tokens"] == 4096
