"""OpenAI's Responses API (`POST /v1/responses`) end to end, with the official `openai` SDK as the client,
unmodified (`client.responses.create`): natively to an OpenAI target (Envoy's per-attempt rewrite only, the
stream passed through), and errors the gateway answers by itself in OpenAI's error shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from switchyard.processes import free_port
from tests.e2e.harness import MockProvider, Stack, mock_provider_fixture, running_stack, wait_for

pytestmark = pytest.mark.e2e

OPENAI_KEY = "sk-oa-responses-e2e"
WEATHER_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}


def _config(port: int, oa: MockProvider) -> str:
    return f"""
listen: 127.0.0.1:{port}
providers:
  oa: {{kind: openai, base_url: "{oa.url}", api_key: {OPENAI_KEY}}}
routes:
  - model: native
    health: {{consecutive_failures: 0, failure_rate: null}}
    targets:
      - {{name: primary, provider: oa, model: gpt-primary}}
      - {{name: backup, provider: oa, model: gpt-backup}}
  - model: metered  # the usage test's alone: usage of other tests' answers may still be on its way
    targets:
      - {{name: only, provider: oa, model: gpt-metered}}
"""


oa = mock_provider_fixture("oa", "--chunk-delay-ms", "5")


@pytest.fixture(scope="module")
def stack(oa: MockProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(_config(free_port(), oa), Path(tmp_path_factory.mktemp("stack"))) as running:
        yield running


@pytest.fixture(autouse=True)
def primary_fails(oa: MockProvider) -> None:
    oa.set_rules([{"match": {"model": "gpt-primary"}, "status": 502}])
    oa.clear()


def _client(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.url + "/v1", api_key="client-key", max_retries=0)


def _sent(oa: MockProvider, model: str) -> dict[str, Any]:
    (sent,) = oa.requests(model)
    assert sent["path"] == "/v1/responses"
    assert sent["headers"]["authorization"] == f"Bearer {OPENAI_KEY}"
    assert "x-switchyard-translate" not in sent["headers"] and "x-switchyard-rewrite" not in sent["headers"]
    body: dict[str, Any] = sent["body"]
    return body


def test_native_response_fails_over_to_the_backup_openai_target(stack: Stack, oa: MockProvider) -> None:
    raw = _client(stack).responses.with_raw_response.create(
        model="native", input="hello", instructions="Be brief.", max_output_tokens=64
    )
    assert (raw.headers["x-switchyard-target"], raw.headers["x-switchyard-attempts"]) == ("backup", "2")
    response = raw.parse()
    assert response.output_text == "Hello from oa (gpt-backup)"
    assert response.usage is not None and response.usage.output_tokens == 4
    assert [r["body"]["model"] for r in oa.requests()] == ["gpt-primary", "gpt-backup"]
    body = _sent(oa, "gpt-backup")
    assert body == {"model": "gpt-backup", "input": "hello", "instructions": "Be brief.", "max_output_tokens": 64}


def test_native_stream_passes_through_event_by_event(stack: Stack, oa: MockProvider) -> None:
    with _client(stack).responses.stream(model="native", input="hello") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert len(deltas) == 5, "each of the provider's events reaches the client on its own"
    assert "".join(deltas) == final.output_text == "Hello from oa (gpt-backup)"
    assert final.usage is not None and final.usage.output_tokens == 4
    body = _sent(oa, "gpt-backup")
    assert body["stream"] is True and "stream_options" not in body, "the Responses API has no include_usage"


def test_native_request_with_a_function_tool_reaches_openai_unchanged(stack: Stack, oa: MockProvider) -> None:
    items: Any = [
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    ]
    response = _client(stack).responses.create(model="native", input=items, tools=[WEATHER_TOOL])
    assert response.output_text == "Hello from oa (gpt-backup)"
    body = _sent(oa, "gpt-backup")
    assert body["input"] == items and body["tools"] == [WEATHER_TOOL]


def test_usage_of_native_responses_reaches_usage_accounting(stack: Stack) -> None:
    _client(stack).responses.create(model="metered", input="hello")
    with _client(stack).responses.stream(model="metered", input="hello") as stream:
        stream.until_done()
    wait_for(lambda: _usage_output_tokens(stack) == 8, 10, "two answers of 4 output tokens in /usage")


def _usage_output_tokens(stack: Stack) -> int:
    document = httpx.get(f"http://{stack.api}/usage", params={"route": "metered"}, timeout=10).json()
    return int(document["total"]["completion_tokens"])


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"{not json", 400, "invalid_request"),
        (b'{"input": "hello"}', 400, "invalid_request"),
        (b'{"model": "nobody", "input": "hello"}', 404, "not_found"),
    ],
)
def test_client_errors_are_answered_by_envoy_in_openais_shape(
    stack: Stack, content: bytes, status: int, code: str
) -> None:
    response = stack.client.post("/v1/responses", content=content, headers={"content-type": "application/json"})
    assert response.status_code == status
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", code)


def test_wrong_method_gets_405_in_openais_shape(stack: Stack) -> None:
    response = stack.client.get("/v1/responses")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"


def test_too_large_a_body_gets_413_in_openais_shape(stack: Stack) -> None:
    body = b'{"model": "native", "input": "' + b"x" * (9 * 1024 * 1024) + b'"}'
    response = stack.client.post("/v1/responses", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
