"""Token counting end to end with the official SDKs, unmodified: the `anthropic` SDK's
`client.messages.count_tokens` and the `openai` SDK's `client.responses.input_tokens.count`, natively to a target
of the same API (Envoy's per-attempt rewrite only), and translated by the ext_proc to another provider's counting
API after the route's primary fails with 502 (Bedrock's CountTokens, Gemini's countTokens, Anthropic's
count_tokens, OpenAI's input_tokens). A route whose only target cannot count (a chat-only OpenAI-compatible
server) answers a clear 400 in the client's shape, and counts are recorded in usage as requests with no tokens.

Each count the client gets is the one the mock answered, which the mock derives from the body it received
(`estimate_prompt_tokens` of its size): a count that went elsewhere, or was made up, would differ.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from switchyard.mock_provider.bedrock_responses import TEST_ACCESS_KEY_ID
from switchyard.mock_provider.responses import estimate_prompt_tokens
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

OPENAI_KEY = "sk-oa-counts-e2e"
ANTHROPIC_KEY = "sk-ant-counts-e2e"
GEMINI_KEY = "g-counts-e2e"
BEDROCK_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
NO_HEALTH = "health: {consecutive_failures: 0, failure_rate: null}"
WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
MESSAGES: Any = [{"role": "user", "content": "Weather in Paris?"}]


def _config(port: int, oa: MockProvider, an: MockProvider, br: MockProvider, gm: MockProvider) -> str:
    return f"""
listen: 127.0.0.1:{port}
providers:
  oa: {{kind: openai, base_url: "{oa.url}", api_key: {OPENAI_KEY}}}
  local: {{kind: openai_compatible, base_url: "{oa.url}"}}
  an: {{kind: anthropic, base_url: "{an.url}", api_key: {ANTHROPIC_KEY}}}
  gm: {{kind: gemini, base_url: "{gm.url}", api_key: {GEMINI_KEY}}}
{bedrock_provider("br", br)}
routes:
  - model: claude
    targets: [{{name: claude, provider: an, model: claude-native}}]
  - model: claude-to-bedrock
    {NO_HEALTH}
    targets:
      - {{name: claude, provider: an, model: claude-primary}}
      - {{name: backup, provider: br, model: {BEDROCK_MODEL}}}
  - model: claude-to-gemini
    {NO_HEALTH}
    targets:
      - {{name: claude, provider: an, model: claude-primary}}
      - {{name: backup, provider: gm, model: gemini-2.5-flash}}
  - model: claude-to-openai
    targets: [{{name: openai, provider: oa, model: gpt-counter}}]
  - model: gpt
    targets: [{{name: openai, provider: oa, model: gpt-native}}]
  - model: gpt-to-claude
    {NO_HEALTH}
    targets:
      - {{name: openai, provider: oa, model: gpt-primary}}
      - {{name: backup, provider: an, model: claude-backup}}
  - model: chat-only
    targets: [{{name: local, provider: local, model: llama3}}]
  - model: metered  # the usage test's alone
    targets: [{{name: only, provider: an, model: claude-metered}}]
"""


oa = mock_provider_fixture("oa")
an = mock_provider_fixture("an", "--api", "anthropic")
br = mock_provider_fixture("br", "--api", "bedrock")
gm = mock_provider_fixture("gm", "--api", "gemini")


@pytest.fixture(scope="module")
def stack(
    oa: MockProvider, an: MockProvider, br: MockProvider, gm: MockProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = BEDROCK_ENV
    with running_stack(_config(free_port(), oa, an, br, gm), Path(tmp_path_factory.mktemp("stack")), env=env) as up:
        yield up


@pytest.fixture(autouse=True)
def primaries_fail(oa: MockProvider, an: MockProvider, br: MockProvider, gm: MockProvider) -> None:
    oa.set_rules([{"match": {"model": "gpt-primary"}, "status": 502}])
    an.set_rules([{"match": {"model": "claude-primary"}, "status": 502}])
    for mock in (oa, an, br, gm):
        mock.clear()


def _anthropic(stack: Stack) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stack.url, api_key="client-key", max_retries=0)


def _openai(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.url + "/v1", api_key="client-key", max_retries=0)


def _only(mock: MockProvider) -> dict[str, Any]:
    (sent,) = mock.requests()
    assert "x-switchyard-translate" not in sent["headers"] and "x-switchyard-rewrite" not in sent["headers"]
    return sent


# --- same API: Envoy alone --------------------------------------------------------------------------------------


def test_anthropic_count_tokens_natively(stack: Stack, an: MockProvider) -> None:
    raw = _anthropic(stack).messages.with_raw_response.count_tokens(
        model="claude", messages=MESSAGES, system="Be brief.", tools=[WEATHER_TOOL]
    )
    sent = _only(an)
    assert sent["path"] == "/v1/messages/count_tokens"
    assert sent["headers"]["x-api-key"] == ANTHROPIC_KEY
    assert sent["body"]["model"] == "claude-native" and sent["body"]["tools"][0]["name"] == "get_weather"
    assert raw.parse().input_tokens == estimate_prompt_tokens(sent["body_bytes"])
    assert raw.headers["x-switchyard-target"] == "claude"


def test_openai_input_tokens_natively(stack: Stack, oa: MockProvider) -> None:
    count = _openai(stack).responses.input_tokens.count(model="gpt", input="Weather in Paris?", instructions="Brief.")
    sent = _only(oa)
    assert sent["path"] == "/v1/responses/input_tokens"
    assert sent["headers"]["authorization"] == f"Bearer {OPENAI_KEY}"
    assert sent["body"] == {"model": "gpt-native", "input": "Weather in Paris?", "instructions": "Brief."}
    assert (count.object, count.input_tokens) == ("response.input_tokens", estimate_prompt_tokens(sent["body_bytes"]))


# --- translated, after the primary's 502 ------------------------------------------------------------------------


def test_anthropic_count_tokens_through_bedrock_count_tokens(stack: Stack, an: MockProvider, br: MockProvider) -> None:
    raw = _anthropic(stack).messages.with_raw_response.count_tokens(
        model="claude-to-bedrock", messages=MESSAGES, system="Be brief.", tools=[WEATHER_TOOL]
    )
    assert [r["action"] for r in an.requests()] == ["status:502"], "the primary was asked first"
    sent = _only(br)
    assert sent["path"] == f"/model/{BEDROCK_MODEL}/count-tokens"  # as the mock read it: decoded
    assert sent["headers"]["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={TEST_ACCESS_KEY_ID}/")
    converse = sent["body"]["input"]["converse"]
    assert converse["system"] == [{"text": "Be brief."}]
    assert converse["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"
    assert raw.parse().input_tokens == estimate_prompt_tokens(sent["body_bytes"])
    assert (raw.headers["x-switchyard-target"], raw.headers["x-switchyard-attempts"]) == ("backup", "2")


def test_anthropic_count_tokens_through_gemini_count_tokens(stack: Stack, gm: MockProvider) -> None:
    count = _anthropic(stack).messages.count_tokens(model="claude-to-gemini", messages=MESSAGES, system="Be brief.")
    sent = _only(gm)
    assert sent["path"] == "/v1beta/models/gemini-2.5-flash:countTokens"
    assert sent["headers"]["x-goog-api-key"] == GEMINI_KEY
    generate = sent["body"]["generateContentRequest"]
    assert generate["model"] == "models/gemini-2.5-flash"
    assert generate["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert count.input_tokens == estimate_prompt_tokens(sent["body_bytes"])


def test_anthropic_count_tokens_through_openai_input_tokens(stack: Stack, oa: MockProvider) -> None:
    count = _anthropic(stack).messages.count_tokens(model="claude-to-openai", messages=MESSAGES, system="Be brief.")
    sent = _only(oa)
    assert sent["path"] == "/v1/responses/input_tokens"
    assert sent["body"] == {
        "model": "gpt-counter",
        "input": [{"role": "user", "content": "Weather in Paris?"}],
        "instructions": "Be brief.",
    }
    assert count.input_tokens == estimate_prompt_tokens(sent["body_bytes"])


def test_openai_input_tokens_through_anthropic_count_tokens(stack: Stack, oa: MockProvider, an: MockProvider) -> None:
    raw = _openai(stack).responses.input_tokens.with_raw_response.count(
        model="gpt-to-claude", input="Weather in Paris?", instructions="Be brief."
    )
    assert [r["path"] for r in oa.requests()] == ["/v1/responses/input_tokens"], "the primary was asked first"
    sent = _only(an)
    assert sent["path"] == "/v1/messages/count_tokens"
    assert sent["headers"]["x-api-key"] == ANTHROPIC_KEY
    assert sent["body"] == {
        "model": "claude-backup",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "system": "Be brief.",
    }
    count = raw.parse()
    assert (count.object, count.input_tokens) == ("response.input_tokens", estimate_prompt_tokens(sent["body_bytes"]))
    assert raw.headers["x-switchyard-target"] == "backup"


# --- no target that counts ---------------------------------------------------------------------------------------


def test_a_route_whose_targets_cannot_count_answers_a_clear_400_in_the_clients_shape(
    stack: Stack, oa: MockProvider
) -> None:
    with pytest.raises(anthropic.BadRequestError) as refused_anthropic:
        _anthropic(stack).messages.count_tokens(model="chat-only", messages=MESSAGES)
    error = refused_anthropic.value.body["error"]  # type: ignore[index]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("No target of model chat-only can serve /v1/messages/count_tokens: local")
    assert "Azure OpenAI and OpenAI-compatible servers do not" in error["message"]
    with pytest.raises(openai.BadRequestError) as refused_openai:
        _openai(stack).responses.input_tokens.count(model="chat-only", input="hello")
    assert "can serve /v1/responses/input_tokens" in refused_openai.value.message
    assert oa.requests() == [], "refused by Envoy: the chat-only server was not asked"
    # The same route still serves what the server has.
    assert _openai(stack).chat.completions.create(model="chat-only", messages=[{"role": "user", "content": "hi"}])


# --- usage ---------------------------------------------------------------------------------------------------


def test_counts_are_requests_with_no_tokens_in_usage(stack: Stack) -> None:
    for _ in range(2):
        _anthropic(stack).messages.count_tokens(model="metered", messages=MESSAGES)

    def totals() -> dict[str, Any]:
        document = httpx.get(f"http://{stack.api}/usage", params={"route": "metered"}, timeout=10).json()
        total: dict[str, Any] = document["total"]
        return total

    wait_for(lambda: totals()["requests"] == 2, 10, "two count calls in /usage")
    assert (totals()["prompt_tokens"], totals()["completion_tokens"]) == (0, 0), "a count generates nothing"
