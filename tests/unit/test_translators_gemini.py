"""OpenAI and Anthropic clients <-> Gemini targets, checked against fixtures of Gemini's documented shapes.

Each fixture pair under tests/fixtures/translators/<client>_to_gemini/ holds what one side sends and exactly
what the other side must receive; streams are also fed in awkward pieces (byte by byte, random splits), since
Envoy hands the ext_proc the body wherever the network split it. Gemini's streams end with the connection,
after the chunk that carries a finishReason: a stream without one must end as an error, never as a success.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from extproc.translators import StreamTranslator, Translator, UnsupportedParameterError, translator_for
from extproc.translators.anthropic_to_gemini import AnthropicToGemini
from extproc.translators.openai_to_gemini import OpenAIToGemini
from tests.unit.test_translators import FIXTURES, SPLITTERS, _events, _normalised, _run

A2G = "anthropic_to_gemini"
O2G = "openai_to_gemini"
CLIENT = {A2G: ("anthropic", "claude-sonnet-4-5"), O2G: ("openai", "gpt-4o")}
TARGET_MODEL = "gemini-2.5-flash"


def _translator(pair: str) -> Translator:
    translator = translator_for(CLIENT[pair][0], "gemini")
    assert translator is not None
    return translator


def _fixture(pair: str, name: str) -> bytes:
    return (FIXTURES / pair / name).read_bytes()


def _stream(pair: str) -> StreamTranslator:
    request: dict[str, Any] = {"stream": True, "stream_options": {"include_usage": True}}
    return _translator(pair).stream(TARGET_MODEL, CLIENT[pair][1], request)


def test_both_client_apis_have_a_gemini_translator() -> None:
    assert isinstance(translator_for("anthropic", "gemini"), AnthropicToGemini)
    assert isinstance(translator_for("openai", "gemini"), OpenAIToGemini)


@pytest.mark.parametrize(("pair", "case"), [(A2G, "request_tools"), (O2G, "request_tools"), (O2G, "request_params")])
def test_request_fixtures(pair: str, case: str) -> None:
    client_api = CLIENT[pair][0]
    body = json.loads(_fixture(pair, f"{case}.{client_api}.json"))
    expected = json.loads(_fixture(pair, f"{case}.gemini.json"))
    assert _translator(pair).request(body, TARGET_MODEL) == expected


@pytest.mark.parametrize("pair", [A2G, O2G])
@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("response_text", 200),
        ("response_tool_call", 200),
        ("response_safety", 200),
        ("response_prompt_blocked", 200),
        ("error_rate_limit", 429),
        ("error_unavailable", 503),
    ],
)
def test_response_fixtures(pair: str, case: str, status: int) -> None:
    client_api, client_model = CLIENT[pair]
    translator = _translator(pair)
    got_status, body = translator.response(
        status, _fixture(pair, f"{case}.gemini.json"), "application/json", client_model
    )
    assert got_status == status == translator.client_status(status)
    assert _normalised(json.loads(body)) == json.loads(_fixture(pair, f"{case}.{client_api}.json"))


@pytest.mark.parametrize("pair", [A2G, O2G])
def test_safety_blocks_are_answers_with_the_client_apis_refusal_not_errors(pair: str) -> None:
    client_api, client_model = CLIENT[pair]
    for case in ("response_safety", "response_prompt_blocked"):
        status, body = _translator(pair).response(200, _fixture(pair, f"{case}.gemini.json"), "", client_model)
        answer = json.loads(body)
        assert status == 200
        if client_api == "anthropic":
            assert answer["stop_reason"] == "refusal"
        else:
            assert answer["choices"][0]["finish_reason"] == "content_filter"


@pytest.mark.parametrize("pair", [A2G, O2G])
@pytest.mark.parametrize(
    "case", ["stream_text", "stream_tool_call", "stream_truncated", "stream_error", "stream_safety"]
)
@pytest.mark.parametrize("split", SPLITTERS)
def test_stream_fixtures(pair: str, case: str, split: Any) -> None:
    client_api = CLIENT[pair][0]
    out = _run(_stream(pair), split(_fixture(pair, f"{case}.gemini.sse")))
    assert _events(out) == _events(_fixture(pair, f"{case}.{client_api}.sse"))


@pytest.mark.parametrize("pair", [A2G, O2G])
def test_a_stream_reports_usage_and_its_first_token(pair: str) -> None:
    stream = _stream(pair)
    assert not stream.first_token_seen
    _run(stream, [_fixture(pair, "stream_text.gemini.sse")])
    assert stream.first_token_seen and stream.usage == (120, 9)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "response_format"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}
                ]
            },
            "messages[0].content[0].source",
        ),
    ],
)
def test_openai_parameters_gemini_cannot_honour_are_refused_by_name(params: dict[str, Any], param: str) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}], **params}
    with pytest.raises(UnsupportedParameterError) as raised:
        _translator(O2G).request(body, TARGET_MODEL)
    assert raised.value.param == param


def test_openai_requests_without_a_limit_leave_gemini_to_its_own() -> None:
    sent = _translator(O2G).request({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}, TARGET_MODEL)
    assert sent == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"container": "c"}, "container"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
        ({"tool_choice": {"type": "sometimes"}, "tools": [{"name": "f", "input_schema": {}}]}, "tool_choice"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "nope", "content": "x"}]}
                ]
            },
            "messages[0].content[0].tool_use_id",
        ),
    ],
)
def test_anthropic_parameters_gemini_cannot_honour_are_refused_by_name(params: dict[str, Any], param: str) -> None:
    body = {"model": "c", "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}], **params}
    with pytest.raises(UnsupportedParameterError) as raised:
        _translator(A2G).request(body, TARGET_MODEL)
    assert raised.value.param == param


def test_anthropic_thinking_becomes_a_thinking_budget() -> None:
    body = {"model": "c", "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]}
    sent = _translator(A2G).request({**body, "thinking": {"type": "enabled", "budget_tokens": 2048}}, TARGET_MODEL)
    assert sent["generationConfig"] == {"maxOutputTokens": 10, "thinkingConfig": {"thinkingBudget": 2048}}


@pytest.mark.parametrize("pair", [A2G, O2G])
def test_a_success_body_of_the_wrong_shape_is_a_502_in_the_client_api(pair: str) -> None:
    status, body = _translator(pair).response(200, b'{"candidates": "nope"}', "application/json", "m")
    assert status == 502 and b"error" in body
    status, body = _translator(pair).response(200, b"<html>", "text/html", "m")
    assert status == 502
