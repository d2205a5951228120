"""OpenAI and Anthropic clients <-> Bedrock Converse targets, checked against fixtures of Converse's shapes.

Converse streams are AWS binary event-stream frames: the fixtures list each frame's event type and payload,
framed here by the mock provider's encoder (which itself is checked against botocore's decoder in
test_mock_provider_bedrock.py), and fed whole, byte by byte and in random pieces. Converse answers carry no
id, so the gateway's generated message ids are normalised.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from extproc.translators import StreamTranslator, Translator, UnsupportedParameterError, translator_for
from extproc.translators.anthropic_to_bedrock import AnthropicToBedrock
from extproc.translators.openai_to_bedrock import OpenAIToBedrock
from switchyard.mock_provider.bedrock_responses import event, frame
from tests.unit.test_translators import FIXTURES, SPLITTERS, _events, _normalised, _run

A2B = "anthropic_to_bedrock"
O2B = "openai_to_bedrock"
CLIENT = {A2B: ("anthropic", "claude-sonnet-4-5"), O2B: ("openai", "gpt-4o")}
TARGET_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
_GENERATED = re.compile(r"msg_bdrk_[0-9a-f]{24}")


def _translator(pair: str) -> Translator:
    translator = translator_for(CLIENT[pair][0], "bedrock")
    assert translator is not None
    return translator


def _fixture(pair: str, name: str) -> bytes:
    return (FIXTURES / pair / name).read_bytes()


def _ids_normalised(raw: bytes) -> bytes:
    return _GENERATED.sub("msg_bdrk_GENERATED", raw.decode()).encode()


def _frames(pair: str, case: str) -> bytes:
    out = b""
    for name, payload in json.loads(_fixture(pair, f"{case}.bedrock.json")):
        if name.startswith("exception:"):
            headers = {
                ":exception-type": name.removeprefix("exception:"),
                ":content-type": "application/json",
                ":message-type": "exception",
            }
            out += frame(headers, json.dumps(payload).encode())
        else:
            out += event(name, payload)
    return out


def _stream(pair: str) -> StreamTranslator:
    request: dict[str, Any] = {"stream": True, "stream_options": {"include_usage": True}}
    return _translator(pair).stream(TARGET_MODEL, CLIENT[pair][1], request)


def test_both_client_apis_have_a_bedrock_translator() -> None:
    assert isinstance(translator_for("anthropic", "bedrock"), AnthropicToBedrock)
    assert isinstance(translator_for("openai", "bedrock"), OpenAIToBedrock)


@pytest.mark.parametrize("pair", [A2B, O2B])
def test_request_fixtures(pair: str) -> None:
    body = json.loads(_fixture(pair, f"request_tools.{CLIENT[pair][0]}.json"))
    assert _translator(pair).request(body, TARGET_MODEL) == json.loads(_fixture(pair, "request_tools.bedrock.json"))


@pytest.mark.parametrize("pair", [A2B, O2B])
@pytest.mark.parametrize(
    ("case", "status", "client_status"),
    [
        ("response_text", 200, 200),
        ("response_tool_use", 200, 200),
        ("response_guardrail", 200, 200),
        ("error_throttling", 429, 429),
        ("error_unavailable", 503, 503),
        ("error_model_timeout", 408, 504),  # a model timeout falls back like a gateway timeout
    ],
)
def test_response_fixtures(pair: str, case: str, status: int, client_status: int) -> None:
    client_api, client_model = CLIENT[pair]
    translator = _translator(pair)
    body = _fixture(pair, f"{case}.bedrock.json")
    got_status, answer = translator.response(status, body, "application/json", client_model)
    assert got_status == client_status == translator.client_status(status)
    expected = json.loads(_fixture(pair, f"{case}.{client_api}.json"))
    assert _normalised(json.loads(_ids_normalised(answer))) == expected


@pytest.mark.parametrize("pair", [A2B, O2B])
@pytest.mark.parametrize("case", ["stream_text", "stream_tool_use", "stream_truncated", "stream_throttled"])
@pytest.mark.parametrize("split", SPLITTERS)
def test_stream_fixtures(pair: str, case: str, split: Any) -> None:
    out = _run(_stream(pair), split(_frames(pair, case)))
    assert _events(_ids_normalised(out)) == _events(_fixture(pair, f"{case}.{CLIENT[pair][0]}.sse"))


@pytest.mark.parametrize("pair", [A2B, O2B])
def test_a_corrupt_frame_ends_the_stream_with_an_error_event(pair: str) -> None:
    raw = bytearray(_frames(pair, "stream_text"))
    raw[-5] ^= 0xFF  # inside the last frame's payload: its CRC no longer matches
    events = _events(_run(_stream(pair), [bytes(raw)]))
    assert "malformed event stream" in json.dumps(events[-1])


@pytest.mark.parametrize("pair", [A2B, O2B])
def test_a_stream_reports_usage_and_its_first_token(pair: str) -> None:
    stream = _stream(pair)
    _run(stream, [_frames(pair, "stream_text")])
    assert stream.first_token_seen and stream.usage == (120, 9)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"tool_choice": {"type": "none"}, "tools": [{"name": "f", "input_schema": {}}]}, "tool_choice"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "https://x"}}]}
                ]
            },
            "messages[0].content[0].source",
        ),
        ({"container": "c"}, "container"),
    ],
)
def test_anthropic_parameters_converse_cannot_honour_are_refused_by_name(params: dict[str, Any], param: str) -> None:
    body = {"model": "c", "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}], **params}
    with pytest.raises(UnsupportedParameterError) as raised:
        _translator(A2B).request(body, TARGET_MODEL)
    assert raised.value.param == param


@pytest.mark.parametrize(
    ("params", "param"), [({"seed": 1}, "seed"), ({"n": 2}, "n"), ({"logprobs": True}, "logprobs")]
)
def test_openai_parameters_converse_cannot_honour_are_refused_by_name(params: dict[str, Any], param: str) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}], **params}
    with pytest.raises(UnsupportedParameterError) as raised:
        _translator(O2B).request(body, TARGET_MODEL)
    assert raised.value.param == param


def test_openai_temperature_goes_past_anthropics_limit_to_the_model() -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}], "temperature": 1.5}
    assert _translator(O2B).request(body, TARGET_MODEL) == {
        "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
        "inferenceConfig": {"temperature": 1.5},
    }


@pytest.mark.parametrize("pair", [A2B, O2B])
@pytest.mark.parametrize(
    ("error_type", "status"),
    [
        ("ModelNotReadyException:http://internal.amazon.com/coral/com.amazon.bedrock/", 503),
        ("ModelNotReadyException", 503),
        ("ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/", 429),
        ("", 429),
    ],
)
def test_a_model_not_ready_is_an_outage_not_a_rate_limit(pair: str, error_type: str, status: int) -> None:
    """Bedrock sends ModelNotReadyException as 429: the client, Envoy's fallback and the target's health see
    503 (an outage: no Retry-After parking), while real throttling stays 429."""
    translator = _translator(pair)
    assert translator.provider_status(429, {"x-amzn-errortype": error_type}) == status
    assert translator.client_status(translator.provider_status(429, {"x-amzn-errortype": error_type})) == status


def test_other_providers_keep_their_http_status() -> None:
    for client_api, provider_api in (("openai", "anthropic"), ("anthropic", "openai"), ("anthropic", "gemini")):
        translator = translator_for(client_api, provider_api)
        assert translator is not None
        assert translator.provider_status(429, {"x-amzn-errortype": "ModelNotReadyException"}) == 429
