"""Token counts across APIs, checked against the providers' own definitions: the count requests each pair sends
(botocore's ParamValidator on CountTokens input, the anthropic SDK's MessageCountTokensParams, the openai SDK's
InputTokenCountParams, google-genai's types for the generateContentRequest inside Gemini's countTokens), and
the answers the client gets (anthropic's MessageTokensCount, openai's InputTokenCountResponse), errors
included."""

from __future__ import annotations

import json
from typing import Any

import anthropic.types
import botocore.session
import pytest
from anthropic.types import MessageCountTokensParams
from botocore.validate import ParamValidator
from openai.types.responses import InputTokenCountResponse
from openai.types.responses.input_token_count_params import InputTokenCountParams

from extproc.translators import Translator, UnsupportedParameterError, translator_for
from switchyard.contract import COUNT_TOKENS
from tests.unit.provider_schemas import _assert_model, assert_gemini_request, typed_dict_problems

IMAGE_DATA = "iVBORw0KGgo="
SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

# What Claude Code's count calls carry: system blocks, tools, a tool round trip with thinking, an image.
ANTHROPIC_COUNT: dict[str, Any] = {
    "model": "client-model",
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather in Paris?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": IMAGE_DATA}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Look it up.", "signature": "sig-1"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]},
    ],
    "tools": [{"name": "get_weather", "description": "The weather in a city.", "input_schema": WEATHER_SCHEMA}],
    "tool_choice": {"type": "auto"},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
}
RESPONSES_COUNT: dict[str, Any] = {
    "model": "client-model",
    "instructions": "Be brief.",
    "input": [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Weather in Paris?"},
                {"type": "input_image", "image_url": f"data:image/png;base64,{IMAGE_DATA}", "detail": "auto"},
            ],
        },
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    ],
    "tools": [
        {
            "type": "function",
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": WEATHER_SCHEMA,
            "strict": True,
        }
    ],
    "tool_choice": "auto",
    "text": {"format": {"type": "json_schema", "name": "answer", "schema": SCHEMA, "strict": True}},
    "reasoning": {"effort": "low"},
}


def counter(client_api: str, provider_api: str) -> Translator:
    translator = translator_for(client_api, provider_api, COUNT_TOKENS)
    assert translator is not None
    return translator


def assert_fits(value: Any, annotation: Any) -> None:
    problems = typed_dict_problems(value, annotation)
    assert not problems, "\n".join(problems)


def assert_count_tokens_input(body: dict[str, Any]) -> None:
    """`body` as the CountTokens operation's input (the model id travels in the path), by botocore's model."""
    operation = botocore.session.get_session().get_service_model("bedrock-runtime").operation_model("CountTokens")
    assert operation.input_shape is not None
    report = ParamValidator().validate({"modelId": "anthropic.claude-sonnet-4-5", **body}, operation.input_shape)
    assert not report.has_errors(), report.generate_report()


def test_the_sdks_own_requests_are_valid_count_requests() -> None:
    """The fixtures are what the SDKs send: anything else would prove nothing about the translations."""
    assert_fits(ANTHROPIC_COUNT, MessageCountTokensParams)
    assert_fits(RESPONSES_COUNT, InputTokenCountParams)


# --- requests ------------------------------------------------------------------------------------------------


def test_anthropic_counts_reach_bedrock_as_count_tokens_around_the_converse_request() -> None:
    body = counter("anthropic", "bedrock").request(json.loads(json.dumps(ANTHROPIC_COUNT)), "anthropic.claude-x")
    assert_count_tokens_input(body)
    converse = body["input"]["converse"]
    assert converse["system"][0] == {"text": "Be brief."} and {"cachePoint": {"type": "default"}} in converse["system"]
    assert [m["role"] for m in converse["messages"]] == ["user", "assistant", "user"]
    assert converse["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"
    assert converse["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 1024}}


def test_responses_counts_reach_bedrock_as_count_tokens_around_the_converse_request() -> None:
    body = counter("responses", "bedrock").request(json.loads(json.dumps(RESPONSES_COUNT)), "anthropic.claude-x")
    assert_count_tokens_input(body)
    converse = body["input"]["converse"]
    assert converse["system"] == [{"text": "Be brief."}]
    assert "outputConfig" not in converse and "inferenceConfig" not in converse, "what only generation reads"


@pytest.mark.parametrize(
    ("client_api", "request_body"), [("anthropic", ANTHROPIC_COUNT), ("responses", RESPONSES_COUNT)]
)
def test_counts_reach_gemini_as_count_tokens_with_the_whole_generate_content_request(
    client_api: str, request_body: dict[str, Any]
) -> None:
    body = counter(client_api, "gemini").request(json.loads(json.dumps(request_body)), "gemini-2.5-pro")
    assert set(body) == {"generateContentRequest"}, "not `contents` alone: that would leave system and tools out"
    generate = dict(body["generateContentRequest"])
    assert generate.pop("model") == "models/gemini-2.5-pro"
    assert_gemini_request(generate)
    assert generate["systemInstruction"]["parts"][0]["text"] == "Be brief."
    assert generate["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"


def test_responses_counts_reach_anthropic_as_count_tokens_params() -> None:
    body = counter("responses", "anthropic").request(json.loads(json.dumps(RESPONSES_COUNT)), "claude-target")
    assert_fits(body, MessageCountTokensParams)
    assert body["model"] == "claude-target" and body["system"] == "Be brief."
    assert "max_tokens" not in body, "the count endpoint refuses generation parameters"
    assert body["output_config"]["format"]["schema"] == SCHEMA
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]


def test_anthropic_counts_reach_openai_as_input_tokens_params() -> None:
    body = counter("anthropic", "responses").request(json.loads(json.dumps(ANTHROPIC_COUNT)), "gpt-5")
    assert_fits(body, InputTokenCountParams)
    assert body["model"] == "gpt-5" and body["instructions"] == "Be brief."
    assert body["input"] == [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Weather in Paris?"},
                {"type": "input_image", "image_url": f"data:image/png;base64,{IMAGE_DATA}", "detail": "auto"},
            ],
        },
        # the thinking block is another provider's reasoning: OpenAI cannot read it
        {"type": "function_call", "call_id": "toolu_1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"type": "function_call_output", "call_id": "toolu_1", "output": "sunny"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "parameters": WEATHER_SCHEMA,
            "description": "The weather in a city.",
            "strict": False,
        }
    ]
    assert body["tool_choice"] == "auto"


def test_anthropic_structured_output_and_a_named_tool_reach_openai_in_their_responses_form() -> None:
    request = {
        **ANTHROPIC_COUNT,
        "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}, "effort": "high"},
    }
    body = counter("anthropic", "responses").request(request, "gpt-5")
    assert_fits(body, InputTokenCountParams)
    assert body["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert body["parallel_tool_calls"] is False
    assert body["text"] == {"format": {"type": "json_schema", "name": "output", "schema": SCHEMA, "strict": True}}
    assert body["reasoning"] == {"effort": "high"}


@pytest.mark.parametrize(
    ("client_api", "provider_api"),
    [
        ("anthropic", "bedrock"),
        ("anthropic", "gemini"),
        ("anthropic", "responses"),
        ("responses", "anthropic"),
        ("responses", "bedrock"),
        ("responses", "gemini"),
    ],
)
def test_a_count_asked_to_stream_is_refused_by_name(client_api: str, provider_api: str) -> None:
    request = {**(ANTHROPIC_COUNT if client_api == "anthropic" else RESPONSES_COUNT), "stream": True}
    with pytest.raises(UnsupportedParameterError) as refused:
        counter(client_api, provider_api).request(request, "target-model")
    assert refused.value.param == "stream"


def test_what_only_openai_can_count_is_refused_elsewhere() -> None:
    with pytest.raises(UnsupportedParameterError) as refused:
        counter("responses", "anthropic").request({**RESPONSES_COUNT, "previous_response_id": "resp_1"}, "claude")
    assert refused.value.param == "previous_response_id"


def test_only_pairs_whose_provider_counts_have_a_count_translator() -> None:
    assert translator_for("anthropic", "anthropic", COUNT_TOKENS) is None, "same API: Envoy alone"
    for client_api in ("anthropic", "responses"):
        with pytest.raises(ValueError, match="no token counts"):
            translator_for(client_api, "openai", COUNT_TOKENS)  # chat completions have no counting


# --- answers -------------------------------------------------------------------------------------------------

PROVIDER_COUNTS = {
    "bedrock": {"inputTokens": 37},
    "gemini": {"totalTokens": 37, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 37}]},
    "anthropic": {"input_tokens": 37},
    "responses": {"object": "response.input_tokens", "input_tokens": 37},
}


@pytest.mark.parametrize("provider_api", ["bedrock", "gemini", "responses"])
def test_anthropic_clients_get_a_message_tokens_count(provider_api: str) -> None:
    status, body = counter("anthropic", provider_api).response(
        200, json.dumps(PROVIDER_COUNTS[provider_api]).encode(), "application/json", "target-model"
    )
    assert status == 200
    count = _assert_model(anthropic.types.MessageTokensCount, json.loads(body))
    assert count.input_tokens == 37


@pytest.mark.parametrize("provider_api", ["bedrock", "gemini", "anthropic"])
def test_responses_clients_get_an_input_token_count_response(provider_api: str) -> None:
    status, body = counter("responses", provider_api).response(
        200, json.dumps(PROVIDER_COUNTS[provider_api]).encode(), "application/json", "target-model"
    )
    assert status == 200
    count = _assert_model(InputTokenCountResponse, json.loads(body))
    assert (count.object, count.input_tokens) == ("response.input_tokens", 37)


def test_a_count_answer_without_a_count_is_a_502_in_the_clients_shape() -> None:
    status, body = counter("anthropic", "bedrock").response(200, b'{"inputTokens": "many"}', "application/json", "m")
    assert status == 502
    assert _assert_model(anthropic.types.ErrorResponse, json.loads(body)).error.type == "api_error"
    status, body = counter("responses", "gemini").response(200, b"<html>", "text/html", "m")
    assert status == 502 and json.loads(body)["error"]["type"] == "server_error"


def test_provider_errors_reach_the_client_in_its_shape_with_the_status_fallback_goes_by() -> None:
    """A throttled Bedrock count is Anthropic's rate_limit_error for an Anthropic client; Anthropic's 529
    (overloaded) is a 503 for a Responses client, as for its messages."""
    bedrock = counter("anthropic", "bedrock")
    throttled = json.dumps({"message": "Too many tokens"}).encode()
    status = bedrock.provider_status(429, {"x-amzn-errortype": "ThrottlingException:http://internal"})
    assert bedrock.client_status(status) == 429
    code, body = bedrock.response(status, throttled, "application/json", "m")
    error = _assert_model(anthropic.types.ErrorResponse, json.loads(body))
    assert (code, error.error.type, error.error.message) == (429, "rate_limit_error", "Too many tokens")
    anthropic_pair = counter("responses", "anthropic")
    overloaded = json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert anthropic_pair.client_status(529) == 503
    code, body = anthropic_pair.response(529, overloaded.encode(), "application/json", "m")
    assert code == 503 and json.loads(body)["error"]["message"] == "Overloaded"
