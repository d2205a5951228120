"""Bedrock targets end to end, with the official SDKs as clients, unmodified. The mock checks every request's
SigV4 signature against its test credential, over the exact bytes it receives, and answers 403 like AWS when
it is wrong: a 200 here means the ext_proc signed the final body, path and host.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from switchyard.mock_provider.bedrock_responses import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY
from switchyard.supervisor.processes import free_port
from tests.support.harness import (
    BEDROCK_ENV,
    MockProvider,
    Stack,
    bedrock_provider,
    mock_provider_fixture,
    running_stack,
)

pytestmark = pytest.mark.e2e

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
LOADING = "anthropic.claude-3-5-sonnet-20240620-v1:0"  # the model of the routes the not-ready tests use
REPLY = f"Hello from br ({MODEL})"


def _config(port: int, oa: MockProvider, br: MockProvider) -> str:
    return f"""
listen: 127.0.0.1:{port}
providers:
  oa: {{kind: openai, base_url: "{oa.url}", api_key: sk-oa-e2e}}
{bedrock_provider("br", br)}
routes:
  - model: oa-first
    health: {{consecutive_failures: 0, failure_rate: null}}
    targets:
      - {{name: openai, provider: oa, model: gpt-primary}}
      - {{name: bedrock, provider: br, model: {MODEL}}}
  - model: br-first
    health: {{consecutive_failures: 0, failure_rate: null}}
    targets:
      - {{name: bedrock, provider: br, model: {MODEL}}}
      - {{name: openai, provider: oa, model: gpt-backup}}
  - model: loading-first
    health: {{consecutive_failures: 0, failure_rate: null}}
    targets:
      - {{name: bedrock, provider: br, model: {LOADING}}}
      - {{name: openai, provider: oa, model: gpt-backup}}
  - model: loading-alone
    health: {{consecutive_failures: 0, failure_rate: null}}
    targets:
      - {{name: bedrock, provider: br, model: {LOADING}}}
"""


oa = mock_provider_fixture("oa")


br = mock_provider_fixture("br", "--api", "bedrock", "--chunk-delay-ms", "5")


@pytest.fixture(scope="module")
def stack(oa: MockProvider, br: MockProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = BEDROCK_ENV
    with running_stack(_config(free_port(), oa, br), Path(tmp_path_factory.mktemp("stack")), env=env) as running:
        yield running


@pytest.fixture(autouse=True)
def openai_primary_fails(oa: MockProvider, br: MockProvider) -> None:
    oa.set_rules([{"match": {"model": "gpt-primary"}, "status": 500}])
    br.set_rules([])
    oa.clear()
    br.clear()


def _openai(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.url + "/v1", api_key="client-key", max_retries=0)


def _sent_to_bedrock(br: MockProvider, path: str) -> dict[str, object]:
    (sent,) = br.requests()
    assert sent["action"] == "ok" and sent["path"] == path
    headers = sent["headers"]
    assert isinstance(headers, dict)
    assert headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={TEST_ACCESS_KEY_ID}/")
    assert "/us-east-1/bedrock/aws4_request" in headers["authorization"]
    assert "x-switchyard-translate" not in headers and "x-api-key" not in headers
    assert TEST_SECRET_ACCESS_KEY not in str(sent), "the secret itself never travels"
    return sent


def test_openai_primary_fails_over_to_bedrock_signed_plain(stack: Stack, br: MockProvider) -> None:
    raw = _openai(stack).chat.completions.with_raw_response.create(
        model="oa-first", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]
    )
    assert (raw.headers["x-switchyard-target"], raw.headers["x-switchyard-attempts"]) == ("bedrock", "2")
    completion = raw.parse()
    assert completion.model == MODEL and completion.choices[0].message.content == REPLY
    assert completion.choices[0].finish_reason == "stop" and completion.usage is not None
    assert completion.usage.completion_tokens == 4
    sent = _sent_to_bedrock(br, f"/model/{MODEL}/converse")
    assert sent["body"] == {
        "messages": [{"role": "user", "content": [{"text": "hello"}]}],
        "system": [{"text": "Be brief."}],
    }


def test_openai_primary_fails_over_to_bedrock_signed_streaming(stack: Stack, br: MockProvider) -> None:
    chunks = list(
        _openai(stack).chat.completions.create(
            model="oa-first",
            messages=[{"role": "user", "content": "hello"}],
            max_tokens=64,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == REPLY
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    sent = _sent_to_bedrock(br, f"/model/{MODEL}/converse-stream")
    assert sent["body"] == {
        "messages": [{"role": "user", "content": [{"text": "hello"}]}],
        "inferenceConfig": {"maxTokens": 64},
    }


def test_bedrock_throttling_moves_on_to_the_next_target(stack: Stack, oa: MockProvider, br: MockProvider) -> None:
    br.set_rules([{"status": 429}])
    response = stack.chat("br-first")
    assert response.status_code == 200, response.text
    assert (response.headers["x-switchyard-target"], response.headers["x-switchyard-attempts"]) == ("openai", "2")
    assert [r["action"] for r in br.requests()] == ["status:429"]


def test_a_model_still_loading_is_an_outage_not_a_rate_limit(stack: Stack, br: MockProvider) -> None:
    """Bedrock answers 429 ModelNotReadyException while an on-demand model loads. Parking the target as
    rate-limited would keep it out for the Retry-After; it is an outage of this attempt only: the route falls
    back, the next request tries Bedrock again, and a client with nowhere else to go gets 503, not 429."""
    br.set_rules([{"match": {"model": LOADING}, "status": 429, "error_type": "ModelNotReadyException", "times": 1}])
    first = stack.chat("loading-first")
    assert first.status_code == 200, first.text
    assert (first.headers["x-switchyard-target"], first.headers["x-switchyard-attempts"]) == ("openai", "2")
    second = stack.chat("loading-first")
    assert second.status_code == 200, second.text
    assert (second.headers["x-switchyard-target"], second.headers["x-switchyard-attempts"]) == ("bedrock", "1")
    assert [r["action"] for r in br.requests()] == ["status:429", "ok"]

    br.set_rules([{"match": {"model": LOADING}, "status": 429, "error_type": "ModelNotReadyException"}])
    alone = stack.chat("loading-alone")
    assert alone.status_code == 503, alone.text
    assert alone.json()["error"]["type"] == "server_error"


def test_bedrock_throttling_reaches_a_client_with_nowhere_else_to_go_as_429(stack: Stack, br: MockProvider) -> None:
    br.set_rules([{"match": {"model": LOADING}, "status": 429, "error_type": "ThrottlingException"}])
    alone = stack.chat("loading-alone")
    assert alone.status_code == 429, alone.text
    assert alone.json()["error"]["code"] == "rate_limit_exceeded"


def test_anthropic_sdk_streams_from_bedrock(stack: Stack, br: MockProvider) -> None:
    # oa-first: br-first's Bedrock target may still be parked by the throttling test's 429 (targets are parked
    # per route), and the OpenAI primary failing over to Bedrock is the case to show anyway.
    client = anthropic.Anthropic(base_url=stack.url, api_key="client-key", max_retries=0)
    with client.messages.stream(
        model="oa-first", max_tokens=32, messages=[{"role": "user", "content": "hello"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == REPLY and final.stop_reason == "end_turn" and final.usage.output_tokens == 4
    _sent_to_bedrock(br, f"/model/{MODEL}/converse-stream")
