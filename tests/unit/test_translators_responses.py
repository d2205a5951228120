"""OpenAI Responses API clients <-> Anthropic, chat-completions, Bedrock and Gemini targets, checked against the
providers' own definitions: translated requests with the `anthropic` SDK's MessageCreateParams, the `openai`
SDK's chat CompletionCreateParams and botocore's Converse input (ParamValidator); answers and every stream
event with the `openai` SDK's Responses types (tests/unit/responses_types.py)."""

from __future__ import annotations

import json
import typing
from typing import Any

import botocore.session
import pytest
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from botocore.validate import ParamValidator
from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming
from pydantic import TypeAdapter

from extproc.translators import Translator, UnsupportedParameterError, translator_for
from extproc.translators.base import AnswersWithRequest
from extproc.translators.sse import SSEDecoder
from tests.unit.responses_types import valid_event, valid_response

IMAGE = "data:image/png;base64,iVBORw0KGgo="
TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
# Everything a Responses client may ask that other providers can serve.
REQUEST: dict[str, Any] = {
    "model": "client-model",
    "instructions": "Be brief.",
    "input": [
        {"role": "developer", "content": "Answer in JSON."},
        {
            "role": "user",
            "content": [{"type": "input_text", "text": "Weather here?"}, {"type": "input_image", "image_url": IMAGE}],
        },
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    ],
    "tools": [TOOL],
    "tool_choice": "auto",
    "max_output_tokens": 256,
    "temperature": 0.5,
    "top_p": 0.9,
    "text": {"format": {"type": "json_schema", "name": "answer", "schema": SCHEMA, "strict": True}},
    "reasoning": {"effort": "low"},
    "store": False,
}
ANTHROPIC_MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-target",
    "content": [
        {"type": "thinking", "thinking": "The user wants weather.", "signature": "sig-abc"},
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 7, "cache_read_input_tokens": 30, "cache_creation_input_tokens": 2},
}


def _translator(provider_api: str) -> Translator:
    translator = translator_for("responses", provider_api)
    assert translator is not None
    return translator


def _valid_anthropic(body: dict[str, Any]) -> None:
    TypeAdapter(MessageCreateParamsNonStreaming).validate_python(body)
    assert set(body) <= set(typing.get_type_hints(MessageCreateParamsNonStreaming)), "members Anthropic defines"


def _valid_chat(body: dict[str, Any]) -> None:
    params = {name: value for name, value in body.items() if name not in ("stream", "stream_options")}
    TypeAdapter(CompletionCreateParamsNonStreaming).validate_python(params)
    assert set(body) <= set(typing.get_type_hints(CompletionCreateParamsNonStreaming)) | {"stream"}


def _valid_converse(body: dict[str, Any]) -> None:
    shape = botocore.session.get_session().get_service_model("bedrock-runtime").operation_model("Converse")
    report = ParamValidator().validate({"modelId": "anthropic.claude-x", **body}, shape.input_shape)
    assert not report.has_errors(), report.generate_report()


def _answer(translator: Translator, request: dict[str, Any], body: Any) -> tuple[int, dict[str, Any]]:
    assert isinstance(translator, AnswersWithRequest)
    status, raw = translator.response_to(request, 200, json.dumps(body).encode(), "application/json", "client-model")
    return status, json.loads(raw)


def _client_events(raw: bytes) -> list[dict[str, Any]]:
    events = []
    for event in SSEDecoder().feed(raw):
        payload = json.loads(event.data)
        assert event.event == payload["type"]
        valid_event(payload)
        events.append(payload)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


# --- Anthropic targets ------------------------------------------------------------------------------------


def test_a_full_request_becomes_a_valid_anthropic_request() -> None:
    body = _translator("anthropic").request(REQUEST, "claude-target")
    _valid_anthropic(body)
    assert body == {
        "model": "claude-target",
        "system": "Be brief.\n\nAnswer in JSON.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather here?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                ],
            },
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"}]},
        ],
        "max_tokens": 256,
        "tools": [{"name": "get_weather", "description": "The weather in a city.", "input_schema": TOOL["parameters"]}],
        "tool_choice": {"type": "auto"},
        # temperature and top_p: the current Messages API defines neither
        "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}, "effort": "low"},
    }


def test_text_input_and_no_max_output_tokens() -> None:
    body = _translator("anthropic").request({"model": "m", "input": "hello", "stream": True}, "claude-target")
    _valid_anthropic({k: v for k, v in body.items() if k != "stream"})
    assert body == {
        "model": "claude-target",
        "messages": [{"role": "user", "content": "hello"}],
        "max_tokens": 4096,
        "stream": True,
    }


@pytest.mark.parametrize(
    ("extra", "param", "why"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id", "needs an OpenAI target"),
        ({"store": True}, "store", "store: false"),
        ({"conversation": "conv_1"}, "conversation", "needs an OpenAI target"),
        ({"background": True}, "background", "needs an OpenAI target"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type", "built-in tool 'web_search'"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type", "stored items"),
        ({"text": {"format": {"type": "json_object"}}}, "text.format", "json_schema"),
        ({"top_logprobs": 2}, "top_logprobs", "log probabilities"),
    ],
)
def test_what_only_openai_can_serve_is_refused_naming_why(extra: dict[str, Any], param: str, why: str) -> None:
    for provider_api in ("anthropic", "openai", "bedrock", "gemini"):
        with pytest.raises(UnsupportedParameterError) as refused:
            _translator(provider_api).request({"model": "m", "input": "hello", **extra}, "target")
        assert refused.value.param == param and why in refused.value.reason


def test_an_answer_becomes_a_valid_response_with_reasoning_tool_call_and_cached_tokens() -> None:
    status, body = _answer(_translator("anthropic"), REQUEST, ANTHROPIC_MESSAGE)
    assert status == 200
    response = valid_response(body)
    assert response.model == "client-model" and response.status == "completed"
    assert [item.type for item in response.output] == ["reasoning", "message", "function_call"]
    assert response.output_text == "Let me check."
    call = response.output[2]
    assert (call.call_id, call.name, json.loads(call.arguments)) == ("toolu_1", "get_weather", {"city": "Paris"})  # type: ignore[union-attr]
    assert response.tools[0].name == "get_weather" and response.instructions == "Be brief."  # type: ignore[union-attr]
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (42, 7)
    assert response.usage.input_tokens_details.cached_tokens == 30


def test_reasoning_sent_back_continues_as_signed_thinking() -> None:
    _, body = _answer(_translator("anthropic"), REQUEST, ANTHROPIC_MESSAGE)
    history = [item for item in body["output"] if item["type"] in ("reasoning", "function_call")]
    follow_up = {
        "model": "m",
        "input": [*history, {"type": "function_call_output", "call_id": "toolu_1", "output": "sunny"}],
        "tools": [TOOL],
    }
    request = _translator("anthropic").request(follow_up, "claude-target")
    _valid_anthropic(request)
    assert request["messages"][0]["content"][0] == {
        "type": "thinking",
        "thinking": "The user wants weather.",
        "signature": "sig-abc",
    }


def test_redacted_thinking_becomes_a_reasoning_item_that_goes_back_redacted() -> None:
    """Anthropic encrypts some thinking (redacted_thinking): the block must reach the next turn unchanged, so it
    rides in the reasoning item's encrypted_content, whole answer and stream alike."""
    redacted = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}
    message = {**ANTHROPIC_MESSAGE, "content": [redacted, *typing.cast(list[Any], ANTHROPIC_MESSAGE["content"])]}
    _, body = _answer(_translator("anthropic"), REQUEST, message)
    assert [item.type for item in valid_response(body).output] == ["reasoning", "reasoning", "message", "function_call"]
    stream = _translator("anthropic").stream("claude-target", "client-model", REQUEST)
    raw = _anthropic_events(
        {"type": "message_start", "message": {**ANTHROPIC_MESSAGE, "content": [], "usage": {"input_tokens": 10}}},
        {"type": "content_block_start", "index": 0, "content_block": redacted},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}},
        {"type": "message_stop"},
    )
    events = _client_events(stream.feed(raw) + stream.finish())
    streamed = valid_response(events[-1]["response"]).output
    for output in (body["output"], [item.model_dump() for item in streamed]):
        history = [item for item in output if item["type"] in ("reasoning", "function_call")]
        follow_up = {
            "model": "m",
            "input": [*history, {"type": "function_call_output", "call_id": "toolu_1", "output": "x"}],
        }
        request = _translator("anthropic").request({**follow_up, "tools": [TOOL]}, "claude-target")
        _valid_anthropic(request)
        assert request["messages"][0]["content"][0] == redacted


def test_max_tokens_makes_an_incomplete_response() -> None:
    message = {**ANTHROPIC_MESSAGE, "content": [{"type": "text", "text": "Cut"}], "stop_reason": "max_tokens"}
    _, body = _answer(_translator("anthropic"), {"model": "m", "input": "hi"}, message)
    response = valid_response(body)
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"


def test_an_overloaded_anthropic_error_is_an_openai_shaped_503() -> None:
    translator = _translator("anthropic")
    overloaded = json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    status, body = translator.response(529, overloaded.encode(), "application/json", "client-model")
    assert translator.client_status(529) == status == 503
    assert json.loads(body)["error"]["message"] == "Overloaded"


def _anthropic_events(*events: dict[str, Any]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


ANTHROPIC_STREAM = _anthropic_events(
    {"type": "message_start", "message": {**ANTHROPIC_MESSAGE, "content": [], "usage": {"input_tokens": 10}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm."}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig-abc"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Let me "}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "check."}},
    {"type": "content_block_stop", "index": 1},
    {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f"}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"city":'}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'}},
    {"type": "content_block_stop", "index": 2},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
    {"type": "message_stop"},
)


@pytest.mark.parametrize("piece", [len(ANTHROPIC_STREAM), 1, 17])
def test_a_stream_becomes_the_responses_event_stream_at_any_chunk_boundary(piece: int) -> None:
    stream = _translator("anthropic").stream("claude-target", "client-model", REQUEST)
    raw = b"".join(stream.feed(ANTHROPIC_STREAM[i : i + piece]) for i in range(0, len(ANTHROPIC_STREAM), piece))
    events = _client_events(raw + stream.finish())
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    arguments = "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta")
    assert (text, arguments) == ("Let me check.", '{"city":"Paris"}')
    final = valid_response(events[-1]["response"])
    assert [item.type for item in final.output] == ["reasoning", "message", "function_call"]
    assert final.output[0].encrypted_content == "sig-abc"  # type: ignore[union-attr]
    assert final.usage is not None and (final.usage.input_tokens, final.usage.output_tokens) == (10, 9)
    assert stream.usage == (10, 9) and stream.first_token_seen


def test_a_stream_cut_short_or_failing_ends_with_an_error_event() -> None:
    cut = ANTHROPIC_STREAM[: ANTHROPIC_STREAM.index(b"event: message_delta")]
    stream = _translator("anthropic").stream("claude-target", "client-model", REQUEST)
    events = _client_events(stream.feed(cut) + stream.finish())
    assert events[-1]["type"] == "error" and "response.completed" not in [e["type"] for e in events]
    failing = _translator("anthropic").stream("claude-target", "client-model", REQUEST)
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    events = _client_events(failing.feed(_anthropic_events(error)) + failing.finish())
    assert [(e["type"], e["message"]) for e in events] == [("error", "Overloaded")]


# --- targets reached through the Anthropic form -----------------------------------------------------------


def test_chat_completions_targets_get_a_valid_chat_request_with_structured_output_and_effort() -> None:
    body = _translator("openai").request(REQUEST, "llama3")
    _valid_chat(body)
    assert body["messages"][0] == {"role": "system", "content": "Be brief.\n\nAnswer in JSON."}
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.5, 0.9, 256)
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True},
    }
    assert body["reasoning_effort"] == "low"
    assert body["tools"][0]["function"]["name"] == "get_weather"
    streamed = _translator("openai").request({"model": "m", "input": "hi", "stream": True}, "llama3")
    assert streamed["stream_options"] == {"include_usage": True}, "the stream must end with its usage"


def test_a_chat_completion_becomes_a_valid_response() -> None:
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "llama3",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }
    _, body = _answer(_translator("openai"), {"model": "m", "input": "hi"}, completion)
    response = valid_response(body)
    assert response.output_text == "Hi!" and response.usage is not None and response.usage.output_tokens == 2


def test_bedrock_targets_get_a_valid_converse_request_with_output_config() -> None:
    body = _translator("bedrock").request(REQUEST, "anthropic.claude-x")
    _valid_converse(body)
    assert body["inferenceConfig"] == {"maxTokens": 256, "temperature": 0.5, "topP": 0.9}
    schema = {"jsonSchema": {"schema": json.dumps(SCHEMA), "name": "answer"}}
    assert body["outputConfig"] == {"textFormat": {"type": "json_schema", "structure": schema}, "effort": "low"}
    assert body["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"


def test_a_converse_answer_becomes_a_valid_response() -> None:
    converse = {
        "output": {"message": {"role": "assistant", "content": [{"text": "Hi!"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 5, "outputTokens": 2, "totalTokens": 7},
        "metrics": {"latencyMs": 10},
    }
    _, body = _answer(_translator("bedrock"), {"model": "m", "input": "hi"}, converse)
    response = valid_response(body)
    assert response.output_text == "Hi!" and response.usage is not None and response.usage.input_tokens == 5


def test_gemini_targets_get_structured_output_and_a_thinking_level() -> None:
    body = _translator("gemini").request(REQUEST, "gemini-2.5-flash")
    assert body["generationConfig"] == {
        "maxOutputTokens": 256,
        "temperature": 0.5,
        "topP": 0.9,
        "responseMimeType": "application/json",
        "responseJsonSchema": SCHEMA,
        "thinkingConfig": {"thinkingLevel": "low"},
    }
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief.\n\nAnswer in JSON."}]}
    assert body["contents"][1]["parts"] == [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]
