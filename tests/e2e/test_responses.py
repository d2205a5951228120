"""OpenAI's Responses API (`POST /v1/responses`) end to end, with the official `openai` SDK as the client,
unmodified (`client.responses.create`): natively to an OpenAI target (Envoy's per-attempt rewrite only, the
stream passed through); through a route whose OpenAI primary fails with 502 and whose backup is each of
Anthropic, Bedrock and Gemini (translated by the ext_proc: plain, streamed, with a function tool and a tool
round trip in the input); and errors the gateway answers by itself in OpenAI's error shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from switchyard.supervisor.processes import free_port
from tests.support.harness import (
    BEDROCK_ENV,
    MockProvider,
    Stack,
    bedrock_provider,
    mock_provider_fixture,
    running_stack,
    wait_for,
)

pytestmark = pytest.mark.e2e

OPENAI_KEY = "sk-oa-responses-e2e"
WEATHER_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}


ANTHROPIC_KEY = "sk-ant-responses-e2e"
GEMINI_KEY = "g-responses-e2e"
BEDROCK_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
# backup kind -> (route, backup target model, the mock's path for a plain answer)
BACKUPS = {
    "anthropic": ("to-anthropic", "claude-backup", "/v1/messages"),
    "bedrock": ("to-bedrock", BEDROCK_MODEL, f"/model/{BEDROCK_MODEL}/converse"),
    "gemini": ("to-gemini", "gemini-2.5-flash", "/v1beta/models/gemini-2.5-flash:generateContent"),
}
NO_HEALTH = "health: {consecutive_failures: 0, failure_rate: null}"


def _config(port: int, oa: MockProvider, an: MockProvider, br: MockProvider, gm: MockProvider) -> str:
    return f"""
listen: 127.0.0.1:{port}
providers:
  oa: {{kind: openai, base_url: "{oa.url}", api_key: {OPENAI_KEY}}}
  an: {{kind: anthropic, base_url: "{an.url}", api_key: {ANTHROPIC_KEY}}}
  gm: {{kind: gemini, base_url: "{gm.url}", api_key: {GEMINI_KEY}}}
{bedrock_provider("br", br)}
routes:
  - model: to-anthropic
    {NO_HEALTH}
    targets: [{{name: openai, provider: oa, model: gpt-primary}}, {{name: backup, provider: an, model: claude-backup}}]
  - model: to-bedrock
    {NO_HEALTH}
    targets:
      - {{name: openai, provider: oa, model: gpt-primary}}
      - {{name: backup, provider: br, model: {BEDROCK_MODEL}}}
  - model: to-gemini
    {NO_HEALTH}
    targets:
      - {{name: openai, provider: oa, model: gpt-primary}}
      - {{name: backup, provider: gm, model: gemini-2.5-flash}}
  - model: claude-only
    targets: [{{name: claude, provider: an, model: claude-backup}}]
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
an = mock_provider_fixture("an", "--api", "anthropic", "--chunk-delay-ms", "5")
br = mock_provider_fixture("br", "--api", "bedrock", "--chunk-delay-ms", "5")
gm = mock_provider_fixture("gm", "--api", "gemini", "--chunk-delay-ms", "5")


@pytest.fixture(scope="module")
def mocks(an: MockProvider, br: MockProvider, gm: MockProvider) -> dict[str, MockProvider]:
    return {"anthropic": an, "bedrock": br, "gemini": gm}


@pytest.fixture(scope="module")
def stack(
    oa: MockProvider, mocks: dict[str, MockProvider], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = BEDROCK_ENV
    config = _config(free_port(), oa, mocks["anthropic"], mocks["bedrock"], mocks["gemini"])
    with running_stack(config, Path(tmp_path_factory.mktemp("stack")), env=env) as running:
        yield running


@pytest.fixture(autouse=True)
def primary_fails(oa: MockProvider, mocks: dict[str, MockProvider]) -> None:
    oa.set_rules([{"match": {"model": "gpt-primary"}, "status": 502}])
    oa.clear()
    for mock in mocks.values():
        mock.set_rules([])
        mock.clear()


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


# --- an OpenAI primary failing over to each other provider kind --------------------------------------------


def _backup_request(mocks: dict[str, MockProvider], kind: str) -> dict[str, Any]:
    (sent,) = mocks[kind].requests()
    assert "x-switchyard-translate" not in sent["headers"]
    assert kind == "bedrock" or "authorization" not in sent["headers"], "no OpenAI key (Bedrock's is its signature)"
    request: dict[str, Any] = sent
    return request


@pytest.mark.parametrize("kind", list(BACKUPS))
def test_sdk_response_from_each_backup_kind_after_a_502(
    stack: Stack, oa: MockProvider, mocks: dict[str, MockProvider], kind: str
) -> None:
    route, model, path = BACKUPS[kind]
    raw = _client(stack).responses.with_raw_response.create(
        model=route, input="hello", instructions="Be brief.", max_output_tokens=64
    )
    assert (raw.headers["x-switchyard-target"], raw.headers["x-switchyard-attempts"]) == ("backup", "2")
    response = raw.parse()
    assert response.model == model, "the model that served (docs: the model in answers)"
    assert response.output_text == f"Hello from {mocks[kind].name} ({model})"
    assert response.status == "completed" and response.usage is not None and response.usage.output_tokens == 4
    assert [r["body"]["model"] for r in oa.requests()] == ["gpt-primary"]
    sent = _backup_request(mocks, kind)
    assert sent["path"] == path


@pytest.mark.parametrize("kind", list(BACKUPS))
def test_sdk_stream_from_each_backup_kind_after_a_502(stack: Stack, mocks: dict[str, MockProvider], kind: str) -> None:
    route, model, _ = BACKUPS[kind]
    with _client(stack).responses.stream(model=route, input="hello", instructions="Be brief.") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    assert final.output_text == f"Hello from {mocks[kind].name} ({model})"
    assert final.usage is not None and final.usage.output_tokens == 4 and final.model == model


@pytest.mark.parametrize("kind", list(BACKUPS))
def test_sdk_request_with_a_function_tool_and_a_tool_round_trip_reaches_each_backup_kind(
    stack: Stack, mocks: dict[str, MockProvider], kind: str
) -> None:
    route, model, _ = BACKUPS[kind]
    items: Any = [
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    ]
    response = _client(stack).responses.create(model=route, input=items, tools=[WEATHER_TOOL])
    assert response.output_text == f"Hello from {mocks[kind].name} ({model})"
    assert [tool.name for tool in response.tools] == ["get_weather"]  # type: ignore[union-attr]
    body = _backup_request(mocks, kind)["body"]
    sent_tools = {
        "anthropic": lambda: [t["name"] for t in body["tools"]],
        "bedrock": lambda: [t["toolSpec"]["name"] for t in body["toolConfig"]["tools"]],
        "gemini": lambda: [d["name"] for d in body["tools"][0]["functionDeclarations"]],
    }[kind]()
    assert sent_tools == ["get_weather"]
    assert len(body.get("messages") or body.get("contents")) == 3, "the call and its output reach the provider"


# --- what only OpenAI can serve ---------------------------------------------------------------------------


def test_previous_response_id_on_a_route_without_an_openai_target_gets_a_clear_400(
    stack: Stack, mocks: dict[str, MockProvider]
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        _client(stack).responses.create(model="claude-only", input="and then?", previous_response_id="resp_123")
    assert refused.value.status_code == 400
    message = refused.value.body["message"]  # type: ignore[index]
    assert "`previous_response_id` continues a response stored at OpenAI" in message
    assert "model claude-only has none (its targets: anthropic)" in message
    assert mocks["anthropic"].requests() == [], "refused by Envoy: no provider was asked"


def test_store_true_stays_on_openai_targets_and_store_false_falls_back(
    stack: Stack, oa: MockProvider, mocks: dict[str, MockProvider]
) -> None:
    with pytest.raises(openai.InternalServerError) as failed:
        _client(stack).responses.create(model="to-anthropic", input="hello", store=True)
    assert failed.value.status_code == 502, "the OpenAI primary's own failure: no other target may serve it"
    assert mocks["anthropic"].requests() == []
    response = _client(stack).responses.create(model="to-anthropic", input="hello", store=False)
    assert response.output_text == "Hello from an (claude-backup)"
    response = _client(stack).responses.create(model="to-anthropic", input="hello")
    assert response.output_text == "Hello from an (claude-backup)", "an absent store does not pin to OpenAI"
    assert [r["body"].get("store") for r in oa.requests()] == [True, False, None]


def test_built_in_tools_reaching_another_provider_get_a_400_naming_them(stack: Stack) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        _client(stack).responses.create(model="to-gemini", input="news?", tools=[{"type": "web_search"}])
    assert "the built-in tool 'web_search' needs an OpenAI target" in refused.value.message
