"""Gemini targets end to end, with the official SDKs as clients, unmodified: an Anthropic primary failing
over to a Gemini backup, plain and streaming, and an OpenAI client served by Gemini. The mock checks what
Gemini would: the path names model and method (`:streamGenerateContent?alt=sse` for streams), the key comes
in `x-goog-api-key` only, and the body is a generateContent request.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from switchyard.supervisor.processes import free_port
from tests.support.harness import MockProvider, Stack, mock_provider_fixture, running_stack

pytestmark = pytest.mark.e2e

GEMINI_KEY = "g-e2e-key-3f9a"
ANTHROPIC_KEY = "sk-ant-e2e-7c2e"


def _config(port: int, an: MockProvider, gm: MockProvider) -> str:
    return f"""
listen: 127.0.0.1:{port}
providers:
  an: {{kind: anthropic, base_url: "{an.url}", api_key: {ANTHROPIC_KEY}}}
  gm: {{kind: gemini, base_url: "{gm.url}", api_key: {GEMINI_KEY}}}
routes:
  - model: assistant
    health: {{consecutive_failures: 0, failure_rate: null}}
    targets:
      - {{name: claude, provider: an, model: claude-primary}}
      - {{name: gemini, provider: gm, model: gemini-2.5-flash}}
"""


an = mock_provider_fixture("an", "--api", "anthropic")


gm = mock_provider_fixture("gm", "--api", "gemini", "--chunk-delay-ms", "5")


@pytest.fixture(scope="module")
def stack(an: MockProvider, gm: MockProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(_config(free_port(), an, gm), Path(tmp_path_factory.mktemp("stack"))) as running:
        yield running


@pytest.fixture(autouse=True)
def claude_overloaded(an: MockProvider, gm: MockProvider) -> None:
    an.set_rules([{"match": {"model": "claude-primary"}, "status": 529}])
    gm.set_rules([])
    an.clear()
    gm.clear()


def _anthropic(stack: Stack) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stack.url, api_key="client-key", max_retries=0)


def _sent_to_gemini(gm: MockProvider) -> dict[str, object]:
    (sent,) = gm.requests()
    assert sent["headers"]["x-goog-api-key"] == GEMINI_KEY
    for other in ("x-api-key", "authorization", "anthropic-version", "x-switchyard-translate"):
        assert other not in sent["headers"], other
    body = sent["body"]
    assert isinstance(body, dict)
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hello"}]}]
    assert body["generationConfig"] == {"maxOutputTokens": 64}
    return sent


def test_anthropic_sdk_gets_a_message_from_the_gemini_backup(stack: Stack, gm: MockProvider) -> None:
    raw = _anthropic(stack).messages.with_raw_response.create(
        model="assistant", max_tokens=64, system="Be brief.", messages=[{"role": "user", "content": "hello"}]
    )
    assert (raw.headers["x-switchyard-target"], raw.headers["x-switchyard-attempts"]) == ("gemini", "2")
    message = raw.parse()
    assert message.model == "gemini-2.5-flash", "the model that served"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Hello from gm (gemini-2.5-flash)"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn" and message.usage.output_tokens == 4
    sent = _sent_to_gemini(gm)
    assert sent["path"] == "/v1beta/models/gemini-2.5-flash:generateContent"


def test_anthropic_sdk_streams_from_the_gemini_backup(stack: Stack, gm: MockProvider) -> None:
    with _anthropic(stack).messages.stream(
        model="assistant", max_tokens=64, system="Be brief.", messages=[{"role": "user", "content": "hello"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from gm (gemini-2.5-flash)"
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 4 and final.model == "gemini-2.5-flash"
    sent = _sent_to_gemini(gm)
    assert (sent["path"], sent["query"]) == ("/v1beta/models/gemini-2.5-flash:streamGenerateContent", {"alt": "sse"})


def test_openai_sdk_streams_from_gemini(stack: Stack, gm: MockProvider) -> None:
    client = openai.OpenAI(base_url=stack.url + "/v1", api_key="client-key", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="assistant",
            messages=[{"role": "user", "content": "hello"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from gm (gemini-2.5-flash)"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    (sent,) = gm.requests()
    assert sent["path"].endswith(":streamGenerateContent")


def test_gemini_throttling_reaches_the_anthropic_client_as_a_rate_limit(stack: Stack, gm: MockProvider) -> None:
    # Last in this file: the 429 parks the Gemini target for a second, which would steer the tests after it.
    gm.set_rules([{"status": 429}])
    with pytest.raises(anthropic.RateLimitError) as raised:
        _anthropic(stack).messages.create(
            model="assistant", max_tokens=64, messages=[{"role": "user", "content": "hello"}]
        )
    assert raised.value.status_code == 429
    assert raised.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
