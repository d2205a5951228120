"""Prompt caching, reasoning and structured output reach each provider kind as its own schema wants, end to end.

The official SDKs, unmodified, call the gateway; the mocks record what reached them, which is then validated
against the provider's own definitions (tests/unit/provider_schemas.py): botocore's Converse model, the
`openai` SDK's request types, google-genai's types. The answers come back through the SDKs with the cached
token counts in their usage (the unit tests in test_translators_fidelity.py check the counts themselves).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from switchyard.mock_provider.responses import estimate_prompt_tokens
from switchyard.supervisor.processes import free_port
from tests.support.harness import (
    BEDROCK_ENV,
    MockProvider,
    Stack,
    bedrock_provider,
    mock_provider_fixture,
    running_stack,
)
from tests.unit import provider_schemas as schemas

pytestmark = pytest.mark.e2e

BEDROCK_MODEL = "anthropic.claude-sonnet-4-5-v1:0"
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER_TOOL: Any = {"name": "get_weather", "description": "Current weather", "input_schema": SCHEMA}
# A tool continuation with thinking on: the model refuses it unless its thinking block comes back signed.
THINKING_HISTORY: Any = [
    {"role": "user", "content": [{"type": "text", "text": "A long document.", "cache_control": {"type": "ephemeral"}}]},
    {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "Call the tool.", "signature": "EqQBCkYIBxgC"},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        ],
    },
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}]},
]


def _config(port: int, oa: MockProvider, br: MockProvider, gm: MockProvider) -> str:
    return f"""
listen: 127.0.0.1:{port}
providers:
  oa: {{kind: openai, base_url: "{oa.url}", api_key: sk-oa-e2e}}
  gm: {{kind: gemini, base_url: "{gm.url}", api_key: g-e2e}}
{bedrock_provider("br", br)}
routes:
  - model: to-bedrock
    targets: [{{name: bedrock, provider: br, model: {BEDROCK_MODEL}}}]
  - model: to-gemini
    targets: [{{name: gemini, provider: gm, model: gemini-3-pro}}]
  - model: to-openai
    targets: [{{name: openai, provider: oa, model: gpt-5}}]
"""


oa = mock_provider_fixture("oa")
br = mock_provider_fixture("br", "--api", "bedrock")
gm = mock_provider_fixture("gm", "--api", "gemini")


@pytest.fixture(scope="module")
def stack(
    oa: MockProvider, br: MockProvider, gm: MockProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = BEDROCK_ENV
    with running_stack(_config(free_port(), oa, br, gm), Path(tmp_path_factory.mktemp("stack")), env=env) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh(oa: MockProvider, br: MockProvider, gm: MockProvider) -> None:
    for mock in (oa, br, gm):
        mock.set_rules([])
        mock.clear()


def _anthropic(stack: Stack) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stack.url, api_key="client-key", max_retries=0)


def _openai(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.url + "/v1", api_key="client-key", max_retries=0)


def _received(mock: MockProvider) -> dict[str, Any]:
    (request,) = mock.requests()
    assert request["action"] == "ok", request
    body: dict[str, Any] = request["body"]
    return body


def test_anthropic_caching_and_thinking_reach_bedrock_as_converse_defines_them(stack: Stack, br: MockProvider) -> None:
    message = _anthropic(stack).messages.create(
        model="to-bedrock",
        max_tokens=2048,
        system=[{"type": "text", "text": "Long instructions.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        tools=[WEATHER_TOOL],
        thinking={"type": "enabled", "budget_tokens": 1024},
        cache_control={"type": "ephemeral"},
        messages=THINKING_HISTORY,
    )

    sent = _received(br)
    schemas.assert_converse_request(sent)
    assert sent["system"] == [{"text": "Long instructions."}, {"cachePoint": {"type": "default", "ttl": "1h"}}]
    assert sent["messages"][0]["content"][1] == {"cachePoint": {"type": "default"}}
    assert sent["messages"][1]["content"][0] == {
        "reasoningContent": {"reasoningText": {"text": "Call the tool.", "signature": "EqQBCkYIBxgC"}}
    }
    assert sent["messages"][-1]["content"][-1] == {"cachePoint": {"type": "default"}}  # the top-level marker
    assert sent["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    # Bedrock's cacheReadInputTokens / cacheWriteInputTokens come back in Anthropic's names (the mock reports half
    # the prompt read from the cache and a quarter written to it for a request with a cachePoint)
    prompt = estimate_prompt_tokens(br.requests()[0]["body_bytes"])
    assert message.usage.cache_read_input_tokens == prompt // 2 > 0
    assert message.usage.cache_creation_input_tokens == prompt // 4
    assert message.usage.input_tokens == prompt - prompt // 2 - prompt // 4


def test_openai_structured_output_and_effort_reach_bedrock_and_cached_tokens_come_back(
    stack: Stack, br: MockProvider
) -> None:
    with _openai(stack).chat.completions.create(
        model="to-bedrock",
        messages=[{"role": "user", "content": "Weather in Paris as JSON"}],
        response_format={"type": "json_schema", "json_schema": {"name": "weather", "schema": SCHEMA}},
        reasoning_effort="high",
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        chunks = list(stream)

    sent = _received(br)
    schemas.assert_converse_request(sent, stream=True)
    assert sent["outputConfig"]["effort"] == "high"
    assert json.loads(sent["outputConfig"]["textFormat"]["structure"]["jsonSchema"]["schema"]) == SCHEMA
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 0


def test_anthropic_structured_output_reaches_gemini_and_cache_markers_are_dropped(
    stack: Stack, gm: MockProvider
) -> None:
    message = _anthropic(stack).messages.create(
        model="to-gemini",
        max_tokens=512,
        cache_control={"type": "ephemeral"},
        output_config={"effort": "low", "format": {"type": "json_schema", "schema": SCHEMA}},
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Weather?", "cache_control": {"type": "ephemeral"}}]}
        ],
    )

    sent = _received(gm)
    schemas.assert_gemini_request(sent)
    assert sent["generationConfig"]["responseJsonSchema"] == SCHEMA
    assert sent["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "LOW"}
    assert "cache" not in json.dumps(sent).lower()
    assert message.usage.cache_read_input_tokens == 0


def test_anthropic_caching_and_output_config_reach_openai_as_its_schema_wants(stack: Stack, oa: MockProvider) -> None:
    message = _anthropic(stack).messages.create(
        model="to-openai",
        max_tokens=512,
        cache_control={"type": "ephemeral"},
        output_config={"effort": "medium", "format": {"type": "json_schema", "schema": SCHEMA}},
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Weather?"}],
    )

    sent = _received(oa)
    schemas.assert_openai_request(sent)
    assert sent["reasoning_effort"] == "medium"
    assert sent["response_format"]["json_schema"]["schema"] == SCHEMA
    assert message.usage.cache_read_input_tokens == 0 and message.usage.input_tokens > 0
