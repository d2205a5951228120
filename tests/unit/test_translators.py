"""OpenAI Chat Completions <-> Anthropic Messages translation, checked against recorded traffic.

Each fixture pair under tests/fixtures/translators/<client>_to_<provider>/ holds what one side sends and
exactly what the other side must receive. Outputs are compared as parsed JSON, event by event for streams;
only the generated `created` timestamps are normalised. Streams are also fed in awkward pieces (byte by
byte, random splits, CRLF line ends), because Envoy hands the ext_proc the body wherever the network split it.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from extproc.translators import StreamTranslator, Translator, UnsupportedParameterError, translator_for
from extproc.translators.anthropic_to_openai import AnthropicToOpenAI
from extproc.translators.openai_to_anthropic import DEFAULT_MAX_TOKENS, OpenAIToAnthropic
from extproc.translators.sse import SSEDecoder, SSEEvent

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "translators"
O2A = "openai_to_anthropic"  # OpenAI client, Anthropic target
A2O = "anthropic_to_openai"  # Anthropic client, OpenAI target
# (target model, model the client asked for) per pair, as in the fixtures
MODELS = {O2A: ("claude-sonnet-4-20250514", "gpt-4o"), A2O: ("gpt-4o-2024-08-06", "claude-sonnet-4-20250514")}
APIS = {O2A: ("openai", "anthropic"), A2O: ("anthropic", "openai")}
USAGE = {"stream": True, "stream_options": {"include_usage": True}}


def _translator(pair: str) -> Translator:
    translator = translator_for(*APIS[pair])
    assert translator is not None
    return translator


def _stream(pair: str, client_request: dict[str, Any] | None = None) -> StreamTranslator:
    target_model, client_model = MODELS[pair]
    return _translator(pair).stream(target_model, client_model, client_request or {"stream": True})


def _fixture(pair: str, name: str) -> bytes:
    return (FIXTURES / pair / name).read_bytes()


def _normalised(value: Any) -> Any:
    """`created` is the gateway's clock; everything else must match exactly."""
    if isinstance(value, dict):
        return {k: 0 if k == "created" else _normalised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    return value


def _events(raw: bytes) -> list[tuple[str | None, Any]]:
    """(event name, parsed data) per SSE event; a deliberately simple parser independent of the one under test."""
    text = raw.decode()
    assert text == "" or text.endswith("\n\n"), f"stream output must end with a complete event: {text[-80:]!r}"
    events: list[tuple[str | None, Any]] = []
    for block in text.split("\n\n")[:-1]:
        name, data = None, None
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            else:
                assert field == "data", f"unexpected SSE line {line!r}"
                data = value if value == "[DONE]" else json.loads(value)
        events.append((name, _normalised(data)))
    return events


def _run(translator: StreamTranslator, pieces: list[bytes]) -> bytes:
    return b"".join(translator.feed(piece) for piece in pieces) + translator.finish()


def _whole(raw: bytes) -> list[bytes]:
    return [raw]


def _bytewise(raw: bytes) -> list[bytes]:
    return [raw[i : i + 1] for i in range(len(raw))]


def _random_splits(raw: bytes) -> list[bytes]:
    rng = random.Random(len(raw))
    cuts = sorted(rng.sample(range(1, len(raw)), k=min(40, len(raw) - 1)))
    return [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]


SPLITTERS: list[Callable[[bytes], list[bytes]]] = [_whole, _bytewise, _random_splits]


# --- the registry ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_same_api_needs_no_translator(api: str) -> None:
    assert translator_for(api, api) is None


def test_each_pair_has_its_translator() -> None:
    assert isinstance(translator_for("openai", "anthropic"), OpenAIToAnthropic)
    assert isinstance(translator_for("anthropic", "openai"), AnthropicToOpenAI)
    for pair, (client_api, provider_api) in APIS.items():
        translator = _translator(pair)
        assert (translator.client_api, translator.provider_api) == (client_api, provider_api)


def test_unknown_pair_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="'vertex'"):
        translator_for("openai", "vertex")


# --- requests --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pair", "case"),
    [
        (O2A, "request_system"),
        (O2A, "request_tools"),
        (O2A, "request_images"),
        (A2O, "request_system"),
        (A2O, "request_tools"),
    ],
)
def test_request_fixtures(pair: str, case: str) -> None:
    client_api, provider_api = APIS[pair]
    body = json.loads(_fixture(pair, f"{case}.{client_api}.json"))
    expected = json.loads(_fixture(pair, f"{case}.{provider_api}.json"))

    assert _translator(pair).request(body, MODELS[pair][0]) == expected


def _openai_request(**params: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}], **params}


def _anthropic_request(**params: Any) -> dict[str, Any]:
    return {"model": "claude-x", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}], **params}


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
            "response_format.json_schema.schema",
        ),
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"frequency_penalty": -1}, "frequency_penalty"),
        ({"logit_bias": {"50256": -100}}, "logit_bias"),
        ({"seed": 42}, "seed"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        (
            {"tool_choice": {"type": "allowed_tools"}, "tools": [{"type": "function", "function": {"name": "f"}}]},
            "tool_choice",
        ),
        ({"tools": [{"type": "custom", "custom": {"name": "f"}}]}, "tools[0].type"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "input_audio"}]}]},
            "messages[0].content[1].type",
        ),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]},
            "messages[0].content[0].image_url.url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "[1]"}}],
                    }
                ]
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
    ],
)
def test_openai_parameters_anthropic_cannot_honour_are_refused_by_name(params: dict[str, Any], param: str) -> None:
    with pytest.raises(UnsupportedParameterError) as raised:
        _translator(O2A).request(_openai_request(**params), "claude-x")

    assert raised.value.param == param
    assert raised.value.reason


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"top_k": 5}, "top_k"),
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, "thinking"),
        ({"container": "container_abc"}, "container"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
        ({"tool_choice": {"type": "sometimes"}, "tools": [{"name": "f", "input_schema": {}}]}, "tool_choice.type"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "document", "source": {"type": "text", "data": "x"}}]}
                ]
            },
            "messages[0].content[0].type",
        ),
    ],
)
def test_anthropic_parameters_openai_cannot_honour_are_refused_by_name(params: dict[str, Any], param: str) -> None:
    with pytest.raises(UnsupportedParameterError) as raised:
        _translator(A2O).request(_anthropic_request(**params), "gpt-4o")

    assert raised.value.param == param


def test_harmless_openai_defaults_pass_and_max_tokens_defaults() -> None:
    body = _openai_request(
        n=1, presence_penalty=0, frequency_penalty=0.0, logit_bias={}, logprobs=False, seed=None, temperature=1
    )

    sent = _translator(O2A).request(body, "claude-x")

    assert sent == {
        "model": "claude-x",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": DEFAULT_MAX_TOKENS,
    }


def test_max_completion_tokens_wins_over_the_deprecated_max_tokens() -> None:
    sent = _translator(O2A).request(_openai_request(max_tokens=50, max_completion_tokens=70), "claude-x")

    assert sent["max_tokens"] == 70


_WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
        (None, {"type": "auto"}),
    ],
)
def test_openai_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    sent = _translator(O2A).request(_openai_request(tools=[_WEATHER], tool_choice=choice), "claude-x")

    assert sent["tools"] == [{"name": "get_weather", "input_schema": {"type": "object"}}]
    assert sent["tool_choice"] == expected


def test_openai_tool_choice_none_drops_the_tools() -> None:
    sent = _translator(O2A).request(_openai_request(tools=[_WEATHER], tool_choice="none"), "claude-x")

    assert "tools" not in sent
    assert "tool_choice" not in sent


def test_openai_tool_choice_none_keeps_definitions_a_tool_history_needs() -> None:
    """Anthropic rejects tool_use/tool_result blocks without tool definitions, so "none" is said explicitly."""
    messages = [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]

    sent = _translator(O2A).request(_openai_request(messages=messages, tools=[_WEATHER], tool_choice="none"), "x")

    assert sent["tool_choice"] == {"type": "none"}
    assert sent["messages"][1]["content"] == [{"type": "tool_use", "id": "c1", "name": "get_weather", "input": {}}]


def test_anthropic_tool_choice_tool_and_none() -> None:
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    translator = _translator(A2O)

    named = translator.request(
        _anthropic_request(tools=tools, tool_choice={"type": "tool", "name": "get_weather"}), "m"
    )
    none = translator.request(_anthropic_request(tools=tools, tool_choice={"type": "none"}), "m")
    auto = translator.request(_anthropic_request(tools=tools, tool_choice={"type": "auto"}), "m")

    assert named["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert none["tool_choice"] == "none"
    assert auto["tool_choice"] == "auto"
    assert "parallel_tool_calls" not in auto


# --- whole responses -------------------------------------------------------------------------------------------

HTML = "text/html; charset=utf-8"
JSON_TYPE = "application/json"


@pytest.mark.parametrize(
    ("pair", "case", "source", "status", "content_type", "expected_status"),
    [
        (O2A, "response_text", "response_text.anthropic.json", 200, JSON_TYPE, 200),
        (O2A, "response_tool_use", "response_tool_use.anthropic.json", 200, JSON_TYPE, 200),
        (O2A, "error_overloaded", "error_overloaded.anthropic.json", 529, JSON_TYPE, 503),
        (O2A, "error_rate_limit", "error_rate_limit.anthropic.json", 429, JSON_TYPE, 429),
        (O2A, "error_authentication", "error_authentication.anthropic.json", 401, JSON_TYPE, 401),
        (O2A, "error_invalid_request", "error_invalid_request.anthropic.json", 400, JSON_TYPE, 400),
        (O2A, "error_bad_gateway", "error_bad_gateway.html", 502, HTML, 502),
        (A2O, "response_text", "response_text.openai.json", 200, JSON_TYPE, 200),
        (A2O, "response_tool_calls", "response_tool_calls.openai.json", 200, JSON_TYPE, 200),
        (A2O, "error_overloaded", "error_overloaded.openai.json", 503, JSON_TYPE, 503),
        (A2O, "error_rate_limit", "error_rate_limit.openai.json", 429, JSON_TYPE, 429),
        (A2O, "error_invalid_api_key", "error_invalid_api_key.openai.json", 401, JSON_TYPE, 401),
        (A2O, "error_invalid_request", "error_invalid_request.openai.json", 400, JSON_TYPE, 400),
        (A2O, "error_bad_gateway", "error_bad_gateway.html", 502, HTML, 502),
    ],
)
def test_response_fixtures(
    pair: str, case: str, source: str, status: int, content_type: str, expected_status: int
) -> None:
    client_api = APIS[pair][0]
    expected = json.loads(_fixture(pair, f"{case}.{client_api}.json"))

    out_status, out_body = _translator(pair).response(status, _fixture(pair, source), content_type, MODELS[pair][1])

    assert out_status == expected_status
    assert _normalised(json.loads(out_body)) == _normalised(expected)


@pytest.mark.parametrize(
    ("pair", "source", "status"),
    [
        (O2A, "error_overloaded.anthropic.json", 529),
        (O2A, "error_bad_gateway.html", 502),
        (O2A, "error_rate_limit.anthropic.json", 429),
        (A2O, "error_overloaded.openai.json", 503),
        (A2O, "error_invalid_api_key.openai.json", 401),
    ],
)
def test_error_status_is_known_before_the_body(pair: str, source: str, status: int) -> None:
    """The ext_proc answers a streamed request's error headers before the error body has arrived."""
    translator = _translator(pair)

    early, _ = translator.response(status, b"", "", "")
    late, _ = translator.response(status, _fixture(pair, source), JSON_TYPE, MODELS[pair][1])

    assert early == late


def test_openai_completion_created_is_now() -> None:
    _, body = _translator(O2A).response(200, _fixture(O2A, "response_text.anthropic.json"), JSON_TYPE, "gpt-4o")

    assert abs(json.loads(body)["created"] - time.time()) < 5


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_anthropic_stop_reasons(stop_reason: str, finish_reason: str) -> None:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "stop_reason": stop_reason}

    _, body = _translator(O2A).response(200, json.dumps(message).encode(), JSON_TYPE, "gpt-4o")

    choice = json.loads(body)["choices"][0]
    assert choice["finish_reason"] == finish_reason
    assert choice["message"]["content"] is None  # no text blocks at all


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"), ("content_filter", "refusal")],
)
def test_openai_finish_reasons(finish_reason: str, stop_reason: str) -> None:
    choice = {"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": finish_reason}
    completion = {"id": "chatcmpl-1", "choices": [choice]}

    _, body = _translator(A2O).response(200, json.dumps(completion).encode(), JSON_TYPE, "claude-x")

    assert json.loads(body)["stop_reason"] == stop_reason


@pytest.mark.parametrize(
    ("pair", "body"),
    [
        (O2A, b"<html>oops</html>"),
        (O2A, b'{"id": "msg_1"}'),
        (A2O, b"[]"),
        (A2O, b'{"id": "c", "choices": [{"message": {"role": "assistant", "tool_calls": "oops"}}]}'),
        (A2O, b'{"id": "c", "choices": []}'),
        (
            A2O,
            b'{"id": "c", "choices": [{"message": {"role": "assistant", "tool_calls": '
            b'[{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\\"a\\": "}}]}}]}',
        ),
    ],
)
def test_an_untranslatable_success_body_is_a_502_in_the_client_api(pair: str, body: bytes) -> None:
    status, out = _translator(pair).response(200, body, JSON_TYPE, "m")

    error = json.loads(out)
    assert status == 502
    if APIS[pair][0] == "openai":
        assert error["error"]["type"] == "server_error"
    else:
        assert error["type"] == "error"
        assert error["error"]["type"] == "api_error"


def test_compatible_servers_string_errors_and_empty_bodies() -> None:
    translator = _translator(A2O)

    status, plain = translator.response(404, b'{"error": "model \'llama3\' not found"}', JSON_TYPE, "m")
    _, empty = translator.response(500, b"", "", "m")

    assert status == 404
    assert json.loads(plain) == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "model 'llama3' not found"},
    }
    assert json.loads(empty)["error"] == {
        "type": "api_error",
        "message": "upstream answered HTTP 500 with an empty body",
    }


# --- streams ---------------------------------------------------------------------------------------------------

STREAM_CASES = [
    (O2A, "stream_text.anthropic.sse", "stream_text.openai.sse", {"stream": True}),
    (O2A, "stream_text.anthropic.sse", "stream_text_usage.openai.sse", USAGE),
    (O2A, "stream_tool_use.anthropic.sse", "stream_tool_use.openai.sse", USAGE),
    (O2A, "stream_error.anthropic.sse", "stream_error.openai.sse", {"stream": True}),
    (O2A, "stream_truncated.anthropic.sse", "stream_truncated.openai.sse", {"stream": True}),
    (A2O, "stream_text.openai.sse", "stream_text.anthropic.sse", {"stream": True}),
    (A2O, "stream_tool_calls.openai.sse", "stream_tool_calls.anthropic.sse", {"stream": True}),
    (A2O, "stream_error.openai.sse", "stream_error.anthropic.sse", {"stream": True}),
    (A2O, "stream_truncated.openai.sse", "stream_truncated.anthropic.sse", {"stream": True}),
]


@pytest.mark.parametrize("split", SPLITTERS, ids=lambda f: f.__name__.strip("_"))
@pytest.mark.parametrize(("pair", "source", "expected", "client_request"), STREAM_CASES)
def test_stream_fixtures(
    pair: str, source: str, expected: str, client_request: dict[str, Any], split: Callable[[bytes], list[bytes]]
) -> None:
    out = _run(_stream(pair, client_request), split(_fixture(pair, source)))

    assert _events(out) == _events(_fixture(pair, expected))


@pytest.mark.parametrize(("pair", "source", "expected", "client_request"), STREAM_CASES)
def test_stream_with_crlf_line_ends(pair: str, source: str, expected: str, client_request: dict[str, Any]) -> None:
    crlf = _fixture(pair, source).replace(b"\n", b"\r\n")

    out = _run(_stream(pair, client_request), _bytewise(crlf))

    assert _events(out) == _events(_fixture(pair, expected))


def test_openai_chunks_share_one_id_and_created_and_name_the_client_model() -> None:
    out = _run(_stream(O2A, USAGE), [_fixture(O2A, "stream_tool_use.anthropic.sse")])

    chunks = [json.loads(line[6:]) for line in out.decode().split("\n\n") if line.startswith("data: {")]
    assert {(c["id"], c["created"], c["model"], c["object"]) for c in chunks} == {
        ("chatcmpl-msg_014p7gG3wDgGV9EUtLvnow3U", chunks[0]["created"], "gpt-4o", "chat.completion.chunk")
    }
    assert abs(chunks[0]["created"] - time.time()) < 5


@pytest.mark.parametrize(
    ("pair", "source", "usage"),
    [
        (O2A, "stream_text.anthropic.sse", (1049, 15)),
        (O2A, "stream_tool_use.anthropic.sse", (472, 89)),
        (A2O, "stream_text.openai.sse", (19, 10)),
        (A2O, "stream_tool_calls.openai.sse", (82, 51)),
    ],
)
def test_stream_usage_and_first_token(pair: str, source: str, usage: tuple[int, int]) -> None:
    stream = _stream(pair)
    raw = _fixture(pair, source)
    first_event = raw.index(b"\n\n") + 2  # message_start / the role chunk: no content yet

    stream.feed(raw[:first_event])
    before = stream.first_token_seen
    stream.feed(raw[first_event:])

    assert before is False
    assert stream.first_token_seen is True
    assert stream.usage == usage


def test_usage_is_unknown_until_reported() -> None:
    stream = _stream(A2O)

    assert stream.usage == (None, None)
    assert stream.first_token_seen is False


@pytest.mark.parametrize("pair", [O2A, A2O])
def test_gateway_failure_mid_stream_is_an_error_event_and_the_end(pair: str) -> None:
    source = {O2A: "stream_text.anthropic.sse", A2O: "stream_text.openai.sse"}[pair]
    raw = _fixture(pair, source)
    stream = _stream(pair)
    head = stream.feed(raw[: len(raw) // 2])

    failed = stream.fail("upstream connection reset")

    events = _events(head + failed)
    if pair == O2A:
        assert events[-1] == (
            None,
            {"error": {"message": "upstream connection reset", "type": "server_error", "param": None, "code": None}},
        )
    else:
        assert events[-1] == (
            "error",
            {"type": "error", "error": {"type": "api_error", "message": "upstream connection reset"}},
        )
    assert stream.feed(raw[len(raw) // 2 :]) == b""
    assert stream.finish() == b""
    assert stream.fail("again") == b""


def test_anthropic_stream_without_message_stop_is_not_a_success() -> None:
    raw = _fixture(O2A, "stream_text.anthropic.sse")
    cut = raw[: raw.index(b"event: message_stop")]  # message_delta with end_turn arrived, message_stop did not

    events = _events(_run(_stream(O2A), [cut]))

    assert events[-2][1]["choices"][0]["finish_reason"] == "stop"
    assert events[-1][1]["error"]["message"] == "upstream stream ended before the response was complete"
    assert (None, "[DONE]") not in events


def test_openai_stream_without_done_is_not_a_success() -> None:
    raw = _fixture(A2O, "stream_text.openai.sse")
    cut = raw[: raw.index(b"data: [DONE]")]  # finish_reason and usage arrived, [DONE] did not

    events = _events(_run(_stream(A2O), [cut]))

    assert [name for name, _ in events][-2:] == ["content_block_stop", "error"]
    assert "message_stop" not in [name for name, _ in events]


def test_last_event_without_its_blank_line_still_counts() -> None:
    raw = _fixture(A2O, "stream_text.openai.sse").removesuffix(b"\n")  # ends "data: [DONE]\n"

    events = _events(_run(_stream(A2O), [raw]))

    assert events[-1] == ("message_stop", {"type": "message_stop"})


def test_malformed_provider_event_ends_the_stream_with_an_error() -> None:
    out = _run(_stream(O2A), [b"event: message_start\ndata: {not json\n\n", b"data: more\n\n"])

    assert _events(out) == [
        (
            None,
            {
                "error": {
                    "message": "upstream sent a malformed stream event",
                    "type": "server_error",
                    "param": None,
                    "code": None,
                }
            },
        )
    ]


@pytest.mark.parametrize(
    ("pair", "event"),
    [
        (O2A, b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":"oops"}\n\n'),
        (O2A, b'event: message_delta\ndata: {"type":"message_delta","delta":"end_turn"}\n\n'),
        (A2O, b'data: {"id":"chatcmpl-1","choices":[{"index":0,"delta":"oops"}]}\n\n'),
        (A2O, b"data: [1, 2]\n\n"),
    ],
)
def test_provider_events_of_the_wrong_shape_end_the_stream_with_an_error(pair: str, event: bytes) -> None:
    stream = _stream(pair)

    events = _events(stream.feed(event))

    last_name, last = events[-1]
    message = last["error"]["message"]
    assert message == "upstream sent a malformed stream event"
    assert last_name == ("error" if pair == A2O else None)
    assert stream.finish() == b""


def test_openai_event_error_shape_is_also_understood() -> None:
    out = _run(_stream(A2O), [b'event: error\ndata: {"message": "boom", "type": "server_error"}\n\n'])

    assert _events(out) == [("error", {"type": "error", "error": {"type": "api_error", "message": "boom"}})]


# --- the SSE decoder -------------------------------------------------------------------------------------------


def test_sse_decoder_handles_comments_multiline_data_and_split_crlf() -> None:
    decoder = SSEDecoder()
    raw = b": keep-alive\r\nevent: a\r\ndata: one\r\ndata:two\r\n\r\nretry: 10\ndata: \xc3\xa9\n\n"
    events: list[SSEEvent] = []

    for i in range(len(raw)):
        events += decoder.feed(raw[i : i + 1])

    assert events == [SSEEvent("a", "one\ntwo"), SSEEvent(None, "é")]
    assert decoder.close() == []


def test_sse_decoder_drops_a_cut_off_final_line() -> None:
    decoder = SSEDecoder()

    assert decoder.feed(b"data: complete\ndata: cut of") == []
    assert decoder.close() == []


@pytest.mark.parametrize("raw", [b"data: x\r", b"data: x\r\r", b"data: x\n", b"event: e\ndata: x"])
def test_sse_decoder_close_delivers_complete_lines_only(raw: bytes) -> None:
    decoder = SSEDecoder()

    events = decoder.feed(raw) + decoder.close()

    assert events == ([] if raw.endswith(b"x") else [SSEEvent(None, "x")])


def test_the_client_status_is_known_from_the_provider_status_alone() -> None:
    to_anthropic = translator_for("openai", "anthropic")
    to_openai = translator_for("anthropic", "openai")
    assert to_anthropic is not None and to_openai is not None
    assert [to_anthropic.client_status(s) for s in (200, 429, 500, 529)] == [200, 429, 500, 503]
    assert [to_openai.client_status(s) for s in (200, 429, 503)] == [200, 429, 503]
