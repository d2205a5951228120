"""What agents depend on survives every translation, checked against the providers' own definitions.

Every translated body (the recorded fixtures, and the cases here for prompt caching, reasoning, structured
output and cached tokens) is validated with `provider_schemas`: botocore's Converse model, the official
`anthropic` and `openai` SDK types, and google-genai's types. The feature cases then check what the user of
each client would look at: the cache marker where the provider wants it, the thinking block with its
signature, the schema the model must follow, the cached-token counts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from extproc.translators import Translator, translator_for
from switchyard.mock_provider.bedrock_responses import event
from tests.unit import provider_schemas as schemas
from tests.unit.test_translators import FIXTURES, _events, _run

JSON = dict[str, Any]
JSON_TYPE = "application/json"
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER_TOOL = {"name": "get_weather", "description": "Current weather", "input_schema": SCHEMA}


def _translator(client_api: str, provider_api: str) -> Translator:
    translator = translator_for(client_api, provider_api)
    assert translator is not None
    return translator


def _anthropic(**params: Any) -> JSON:
    return {"model": "claude-x", "max_tokens": 2048, "messages": [{"role": "user", "content": "Weather?"}], **params}


def _openai(**params: Any) -> JSON:
    return {"model": "gpt-x", "messages": [{"role": "user", "content": "Weather?"}], **params}


def _answer(client_api: str, provider_api: str, provider_body: JSON) -> JSON:
    status, body = _translator(client_api, provider_api).response(
        200, json.dumps(provider_body).encode(), JSON_TYPE, "m"
    )
    assert status == 200, body
    answer: JSON = json.loads(body)
    return answer


# --- every recorded translation is valid for its receiver ---------------------------------------------------------

_PAIRS = {
    "openai_to_anthropic": ("openai", "anthropic"),
    "anthropic_to_openai": ("anthropic", "openai"),
    "anthropic_to_bedrock": ("anthropic", "bedrock"),
    "openai_to_bedrock": ("openai", "bedrock"),
    "anthropic_to_gemini": ("anthropic", "gemini"),
    "openai_to_gemini": ("openai", "gemini"),
}
_REQUEST_CHECKS = {
    "anthropic": schemas.assert_anthropic_request,
    "openai": schemas.assert_openai_request,
    "gemini": schemas.assert_gemini_request,
}


def _fixtures(pattern: str, side: int) -> list[Path]:
    """The fixture files of every pair matching `pattern`, on the client (0) or the provider (1) side."""
    return sorted(
        path
        for pair, apis in _PAIRS.items()
        for path in (FIXTURES / pair).glob(pattern)
        if path.name.split(".")[-2] == apis[side]
    )


@pytest.mark.parametrize("path", _fixtures("request_*.json", 1), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_translated_requests_are_valid_for_the_provider(path: Path) -> None:
    body = json.loads(path.read_text())
    provider_api = path.name.split(".")[-2]
    if provider_api == "bedrock":
        schemas.assert_converse_request(body)
    else:
        _REQUEST_CHECKS[provider_api](body)


@pytest.mark.parametrize("path", _fixtures("response_*.json", 0), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_translated_answers_are_valid_for_the_client(path: Path) -> None:
    body = json.loads(path.read_text())
    if path.name.endswith(".anthropic.json"):
        schemas.assert_anthropic_message(body)
    else:
        schemas.assert_openai_completion(body)


@pytest.mark.parametrize("path", _fixtures("stream_*.sse", 0), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_translated_stream_events_are_valid_for_the_client(path: Path) -> None:
    for name, data in _events(path.read_bytes()):
        if data == "[DONE]" or name == "error" or "error" in data:
            continue  # error events are the SDKs' exceptions, not stream event types
        if path.name.endswith(".anthropic.sse"):
            schemas.assert_anthropic_event(data)
        else:
            schemas.assert_openai_chunk(data)


@pytest.mark.parametrize("path", _fixtures("response_*.json", 1), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recorded_provider_answers_are_what_the_providers_define(path: Path) -> None:
    """The fixtures the translators are tested on are themselves valid provider answers."""
    body = json.loads(path.read_text())
    if path.name.endswith(".bedrock.json"):
        schemas.assert_converse_response(body)
    elif path.name.endswith(".gemini.json"):
        schemas.assert_gemini_response(body)
    elif path.name.endswith(".anthropic.json"):
        schemas.assert_anthropic_message(body)
    else:
        schemas.assert_openai_completion(body)


def test_the_checks_can_fail() -> None:
    """A parameter the current Anthropic schema dropped, an Anthropic cache marker left in a Converse body and
    one sent to OpenAI are caught."""
    with pytest.raises(AssertionError, match="temperature: not defined"):
        schemas.assert_anthropic_request(_anthropic(temperature=0.5))
    with pytest.raises(AssertionError, match="cache_control"):
        marked = {"text": "x", "cache_control": {"type": "ephemeral"}}
        schemas.assert_converse_request({"messages": [{"role": "user", "content": [marked]}]})
    with pytest.raises(AssertionError, match="cache_control"):
        schemas.assert_openai_request(_openai(cache_control={"type": "ephemeral"}))


# --- prompt caching -------------------------------------------------------------------------------------------


def test_anthropic_cache_markers_become_converse_cache_points_where_converse_takes_them() -> None:
    body = _anthropic(
        system=[{"type": "text", "text": "Long instructions.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        tools=[WEATHER_TOOL | {"cache_control": {"type": "ephemeral"}}],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "A long document.", "cache_control": {"type": "ephemeral"}},
                    {"type": "text", "text": "Weather?"},
                ],
            }
        ],
    )

    sent = _translator("anthropic", "bedrock").request(body, "anthropic.claude-sonnet-4-5")

    schemas.assert_converse_request(sent)
    assert sent["system"] == [{"text": "Long instructions."}, {"cachePoint": {"type": "default", "ttl": "1h"}}]
    assert sent["toolConfig"]["tools"][1] == {"cachePoint": {"type": "default"}}
    assert sent["messages"][0]["content"] == [
        {"text": "A long document."},
        {"cachePoint": {"type": "default"}},
        {"text": "Weather?"},
    ]


def test_top_level_cache_control_marks_the_last_block_for_bedrock() -> None:
    sent = _translator("anthropic", "bedrock").request(_anthropic(cache_control={"type": "ephemeral"}), "m")

    schemas.assert_converse_request(sent, stream=True)
    assert sent["messages"][-1]["content"] == [{"text": "Weather?"}, {"cachePoint": {"type": "default"}}]


@pytest.mark.parametrize("provider_api", ["openai", "gemini"])
def test_cache_markers_are_dropped_without_error_where_the_provider_has_none(provider_api: str) -> None:
    body = _anthropic(
        cache_control={"type": "ephemeral"},
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    )

    sent = _translator("anthropic", provider_api).request(body, "m")

    _REQUEST_CHECKS[provider_api](sent)
    assert "cache" not in json.dumps(sent).lower()


# --- reasoning ------------------------------------------------------------------------------------------------


def test_thinking_with_its_signature_goes_back_to_bedrock_so_a_tool_continuation_is_accepted() -> None:
    body = _anthropic(
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "I should call the tool.", "signature": "EqQBCkYIBxgCKkB"},
                    {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                ],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}]},
        ],
    )

    sent = _translator("anthropic", "bedrock").request(body, "m")

    schemas.assert_converse_request(sent)
    assert sent["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    assert sent["messages"][1]["content"][:2] == [
        {"reasoningContent": {"reasoningText": {"text": "I should call the tool.", "signature": "EqQBCkYIBxgCKkB"}}},
        {"reasoningContent": {"redactedContent": "EmwKAhgBEgy3va3pzix"}},
    ]


_CONVERSE_REASONING = {
    "output": {
        "message": {
            "role": "assistant",
            "content": [
                {"reasoningContent": {"reasoningText": {"text": "Paris, so call it.", "signature": "c2lnbmF0dXJl"}}},
                {"reasoningContent": {"redactedContent": "cmVkYWN0ZWQ="}},
                {"text": "Let me check."},
            ],
        }
    },
    "stopReason": "end_turn",
    "usage": {"inputTokens": 10, "outputTokens": 20, "totalTokens": 30},
    "metrics": {"latencyMs": 100},
}


def test_bedrock_reasoning_reaches_anthropic_clients_as_thinking_blocks_with_signatures() -> None:
    schemas.assert_converse_response(_CONVERSE_REASONING)

    message = schemas.assert_anthropic_message(_answer("anthropic", "bedrock", _CONVERSE_REASONING))

    assert [block.model_dump(exclude_none=True) for block in message.content] == [
        {"type": "thinking", "thinking": "Paris, so call it.", "signature": "c2lnbmF0dXJl"},
        {"type": "redacted_thinking", "data": "cmVkYWN0ZWQ="},
        {"type": "text", "text": "Let me check."},
    ]


def test_bedrock_streamed_reasoning_becomes_thinking_and_signature_deltas() -> None:
    frames = [
        ("messageStart", {"role": "assistant"}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Paris, "}}}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "so call it."}}}),
        ("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "c2ln"}}}),
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "Sunny."}}),
        ("contentBlockStop", {"contentBlockIndex": 1}),
        ("messageStop", {"stopReason": "end_turn"}),
        ("metadata", {"usage": {"inputTokens": 5, "outputTokens": 9, "totalTokens": 14}, "metrics": {"latencyMs": 1}}),
    ]
    for name, payload in frames:
        schemas.assert_converse_stream_event(name, payload)
    stream = _translator("anthropic", "bedrock").stream("m", "claude-x", {"stream": True})

    events = _events(_run(stream, [b"".join(event(name, payload) for name, payload in frames)]))

    for _, data in events:
        schemas.assert_anthropic_event(data)
    assert events[1][1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    deltas = [data["delta"] for name, data in events if name == "content_block_delta" and data["index"] == 0]
    assert deltas == [
        {"type": "thinking_delta", "thinking": "Paris, "},
        {"type": "thinking_delta", "thinking": "so call it."},
        {"type": "signature_delta", "signature": "c2ln"},
    ]


@pytest.mark.parametrize(
    ("effort", "expected"),
    [
        ("minimal", {"output_config": {"effort": "low"}}),
        ("high", {"output_config": {"effort": "high"}}),
        ("none", {"thinking": {"type": "disabled"}}),
    ],
)
def test_openai_reasoning_effort_is_anthropic_output_config_effort(effort: str, expected: JSON) -> None:
    sent = _translator("openai", "anthropic").request(_openai(reasoning_effort=effort), "claude-x")

    schemas.assert_anthropic_request(sent)
    assert {k: sent[k] for k in ("output_config", "thinking") if k in sent} == expected


def test_anthropic_output_config_is_openai_reasoning_effort_and_strict_json_schema() -> None:
    body = _anthropic(output_config={"effort": "xhigh", "format": {"type": "json_schema", "schema": SCHEMA}})

    sent = _translator("anthropic", "openai").request(body, "gpt-x")

    schemas.assert_openai_request(sent)
    assert sent["reasoning_effort"] == "xhigh"
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": SCHEMA, "strict": True},
    }


# --- structured output ----------------------------------------------------------------------------------------


def test_openai_json_schema_is_anthropic_output_config_format_and_sampling_is_not_sent() -> None:
    response_format = {"type": "json_schema", "json_schema": {"name": "weather", "schema": SCHEMA, "strict": True}}
    body = _openai(response_format=response_format, temperature=0.3, top_p=0.5)

    sent = _translator("openai", "anthropic").request(body, "claude-x")

    schemas.assert_anthropic_request(sent)
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert "temperature" not in sent and "top_p" not in sent


@pytest.mark.parametrize("client_api", ["openai", "anthropic"])
def test_structured_output_and_effort_reach_converse_output_config(client_api: str) -> None:
    if client_api == "openai":
        response_format = {"type": "json_schema", "json_schema": {"name": "weather", "schema": SCHEMA}}
        body = _openai(response_format=response_format, reasoning_effort="medium", temperature=1.5, top_p=0.5)
    else:
        body = _anthropic(output_config={"effort": "medium", "format": {"type": "json_schema", "schema": SCHEMA}})

    sent = _translator(client_api, "bedrock").request(body, "m")

    schemas.assert_converse_request(sent)
    text_format = sent["outputConfig"]["textFormat"]
    assert sent["outputConfig"]["effort"] == "medium"
    assert text_format["type"] == "json_schema"
    assert json.loads(text_format["structure"]["jsonSchema"]["schema"]) == SCHEMA
    if client_api == "openai":  # Converse defines sampling: it is kept
        assert sent["inferenceConfig"] == {"temperature": 1.5, "topP": 0.5}


@pytest.mark.parametrize("client_api", ["openai", "anthropic"])
def test_structured_output_reaches_gemini_as_response_json_schema(client_api: str) -> None:
    if client_api == "openai":
        response_format = {"type": "json_schema", "json_schema": {"name": "weather", "schema": SCHEMA}}
        body = _openai(response_format=response_format, reasoning_effort="high")
    else:
        body = _anthropic(output_config={"effort": "high", "format": {"type": "json_schema", "schema": SCHEMA}})

    sent = _translator(client_api, "gemini").request(body, "gemini-3-pro")

    schemas.assert_gemini_request(sent)
    generation = sent["generationConfig"]
    assert generation["responseMimeType"] == "application/json"
    assert generation["responseJsonSchema"] == SCHEMA
    assert generation["thinkingConfig"] == {"thinkingLevel": "HIGH"}


# --- Gemini thought signatures through a tool round trip ------------------------------------------------------

_SIGNATURE = "CiQBVKhc7+/0Aw=="  # base64 with the characters ids cannot hold: + / =
_GEMINI_CALL = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {
                        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                        "thoughtSignature": _SIGNATURE,
                    }
                ],
            },
            "finishReason": "STOP",
        }
    ],
    "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
}


def _gemini_function_calls(request: JSON) -> list[JSON]:
    return [part for content in request["contents"] for part in content["parts"] if "functionCall" in part]


def test_an_anthropic_client_sends_geminis_thought_signature_back_without_knowing_it() -> None:
    schemas.assert_gemini_response(_GEMINI_CALL)
    message = schemas.assert_anthropic_message(_answer("anthropic", "gemini", _GEMINI_CALL))
    call = message.content[0].model_dump(exclude_none=True)
    history = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": [call]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "18C"}]},
    ]
    next_turn = _anthropic(messages=history, tools=[WEATHER_TOOL])
    schemas.assert_anthropic_request(next_turn)  # what the client sends back is valid Anthropic

    sent = _translator("anthropic", "gemini").request(next_turn, "gemini-3-pro")

    schemas.assert_gemini_request(sent)
    assert _gemini_function_calls(sent) == [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": _SIGNATURE}
    ]
    assert sent["contents"][2]["parts"][0]["functionResponse"]["name"] == "get_weather"


def test_an_openai_client_sends_geminis_thought_signature_back_streamed_or_not() -> None:
    stream = _translator("openai", "gemini").stream("gemini-3-pro", "gpt-x", {"stream": True})
    chunks = _events(_run(stream, [b"data: " + json.dumps(_GEMINI_CALL).encode() + b"\n\n"]))
    streamed_id = next(c["choices"][0]["delta"]["tool_calls"][0]["id"] for _, c in chunks if "tool_calls" in str(c))
    completion = schemas.assert_openai_completion(_answer("openai", "gemini", _GEMINI_CALL))
    tool_calls = completion.choices[0].message.tool_calls
    assert tool_calls is not None
    call = tool_calls[0].model_dump(exclude_none=True)
    assert call["id"].startswith("toolu_") and streamed_id.startswith("toolu_")
    for call_id in (call["id"], streamed_id):
        history = [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": None, "tool_calls": [call | {"id": call_id}]},
            {"role": "tool", "tool_call_id": call_id, "content": "18C"},
        ]
        next_turn = _openai(messages=history)
        schemas.assert_openai_request(next_turn)

        sent = _translator("openai", "gemini").request(next_turn, "gemini-3-pro")

        schemas.assert_gemini_request(sent)
        assert [part["thoughtSignature"] for part in _gemini_function_calls(sent)] == [_SIGNATURE]


def test_a_call_without_a_signature_keeps_its_id_and_sends_none() -> None:
    unsigned = json.loads(json.dumps(_GEMINI_CALL))
    del unsigned["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    unsigned["candidates"][0]["content"]["parts"][0]["functionCall"]["id"] = "call-1"

    message = _answer("anthropic", "gemini", unsigned)
    history = [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": message["content"]}]
    sent = _translator("anthropic", "gemini").request(_anthropic(messages=history), "m")

    assert message["content"][0]["id"] == "call-1"
    assert _gemini_function_calls(sent) == [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]


# --- cached tokens --------------------------------------------------------------------------------------------

_ANTHROPIC_CACHED = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-x",
    "content": [{"type": "text", "text": "Sunny."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_read_input_tokens": 2000,
        "cache_creation_input_tokens": 300,
    },
}


def test_anthropic_cached_tokens_reach_openai_clients_inside_prompt_tokens() -> None:
    schemas.assert_anthropic_message(_ANTHROPIC_CACHED)

    usage = schemas.assert_openai_completion(_answer("openai", "anthropic", _ANTHROPIC_CACHED)).usage

    assert usage is not None and usage.prompt_tokens_details is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (2310, 5, 2315)
    assert (usage.prompt_tokens_details.cached_tokens, usage.prompt_tokens_details.cache_write_tokens) == (2000, 300)


def test_openai_cached_tokens_reach_anthropic_clients_apart_from_input_tokens() -> None:
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-x",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Sunny."},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": 2310,
            "completion_tokens": 5,
            "total_tokens": 2315,
            "prompt_tokens_details": {"cached_tokens": 2000, "cache_write_tokens": 300},
        },
    }
    schemas.assert_openai_completion(completion)

    usage = schemas.assert_anthropic_message(_answer("anthropic", "openai", completion)).usage

    assert (usage.input_tokens, usage.output_tokens) == (10, 5)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (2000, 300)


def test_streamed_cached_tokens_cross_both_ways() -> None:
    anthropic_stream = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
        b'"role":"assistant","model":"c","content":[],"stop_reason":null,"stop_sequence":null,"usage":'
        b'{"input_tokens":10,"output_tokens":1,"cache_read_input_tokens":2000,"cache_creation_input_tokens":300}}}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn",'
        b'"stop_sequence":null},"usage":{"output_tokens":5}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    openai_stream = (
        b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"g","choices":[{"index":0,'
        b'"delta":{"content":"Hi"},"finish_reason":"stop"}]}\n\n'
        b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"g","choices":[],"usage":'
        b'{"prompt_tokens":2310,"completion_tokens":5,"total_tokens":2315,"prompt_tokens_details":{"cached_tokens":2000}}}\n\n'
        b"data: [DONE]\n\n"
    )
    usage_request = {"stream": True, "stream_options": {"include_usage": True}}

    to_openai = _events(_run(_translator("openai", "anthropic").stream("c", "g", usage_request), [anthropic_stream]))
    to_anthropic = _events(_run(_translator("anthropic", "openai").stream("g", "c", {"stream": True}), [openai_stream]))

    openai_usage = next(data["usage"] for _, data in to_openai if isinstance(data, dict) and data.get("usage"))
    assert openai_usage["prompt_tokens"] == 2310
    assert openai_usage["prompt_tokens_details"] == {"cached_tokens": 2000, "cache_write_tokens": 300}
    anthropic_usage = next(data["usage"] for name, data in to_anthropic if name == "message_delta")
    assert anthropic_usage == {
        "input_tokens": 310,
        "output_tokens": 5,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 2000,
    }


def test_bedrock_cache_writes_and_reads_reach_both_clients() -> None:
    answer = json.loads(json.dumps(_CONVERSE_REASONING))
    answer["usage"] = {
        "inputTokens": 10,
        "outputTokens": 20,
        "totalTokens": 2330,
        "cacheReadInputTokens": 2000,
        "cacheWriteInputTokens": 300,
    }
    schemas.assert_converse_response(answer)

    anthropic_usage = schemas.assert_anthropic_message(_answer("anthropic", "bedrock", answer)).usage
    openai_usage = schemas.assert_openai_completion(_answer("openai", "bedrock", answer)).usage

    assert (anthropic_usage.input_tokens, anthropic_usage.cache_read_input_tokens) == (10, 2000)
    assert anthropic_usage.cache_creation_input_tokens == 300
    assert openai_usage is not None and openai_usage.prompt_tokens_details is not None
    assert (openai_usage.prompt_tokens, openai_usage.prompt_tokens_details.cached_tokens) == (2310, 2000)


@pytest.mark.parametrize("provider", ["openai", "bedrock", "gemini"])
@pytest.mark.parametrize("output_format", ["json", {"type": "json_object"}, {"type": "json_schema"}])
def test_an_output_format_no_provider_can_honour_is_refused_by_name(provider: str, output_format: Any) -> None:
    """One judgement for every provider (params.output_schema): only a JSON schema can be enforced; a format of any
    other shape, a string included, is a 400 naming the parameter, never a crash of the ext_proc."""
    from extproc.translators.base import UnsupportedParameterError

    pair = translator_for("anthropic", provider)
    assert pair is not None
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(UnsupportedParameterError, match=r"output_config\.format"):
        pair.request({**body, "output_config": {"format": output_format}}, "target-model")
