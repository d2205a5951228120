"""Usage accounting end to end, without a clients section: every answer's prompt and completion tokens reach
GET /usage, priced with the targets' `price`, streamed answers included (same-API streams are read by Envoy;
translated ones by the ext_proc), and an OpenAI client that streams without asking for usage does not get the
usage-only chunk the gateway asked its provider for.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from switchyard.supervisor.processes import free_port
from tests.support.harness import MockProvider, Stack, mock_provider_fixture, running_stack, sse_events, wait_for

pytestmark = pytest.mark.e2e


def _config(port: int, oa: MockProvider, an: MockProvider) -> str:
    return f"""
listen: 127.0.0.1:{port}
providers:
  oa: {{kind: openai, base_url: "{oa.url}", api_key: sk-oa-e2e}}
  an: {{kind: anthropic, base_url: "{an.url}", api_key: sk-an-e2e}}
routes:
  - model: gpt
    targets: [{{name: oa-gpt, provider: oa, model: gpt-4o, price: {{input: 2, output: 10}}}}]
  - model: claude
    targets: [{{name: an-claude, provider: an, model: claude-x, price: {{input: 3, output: 15}}}}]
  - model: translated
    targets: [{{name: an-for-openai, provider: an, model: claude-t, price: {{input: 1, output: 1}}}}]
"""


oa = mock_provider_fixture("oa")


an = mock_provider_fixture("an", "--api", "anthropic")


@pytest.fixture(scope="module")
def stack(oa: MockProvider, an: MockProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(_config(free_port(), oa, an), Path(tmp_path_factory.mktemp("stack"))) as running:
        yield running


def usage(stack: Stack, **params: str) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"http://{stack.api}/usage", params=params, timeout=10).json()
    return document


def usage_row(stack: Stack, route: str) -> dict[str, Any] | None:
    rows = usage(stack, by="route,target,model", route=route)["rows"]
    return rows[0] if rows else None


def test_json_answer_usage_is_recorded_and_priced(stack: Stack, oa: MockProvider) -> None:
    response = stack.chat("gpt")
    assert response.status_code == 200, response.text
    reported = response.json()["usage"]
    row = wait_for(lambda: usage_row(stack, "gpt"), 10, "the answer's usage in GET /usage")
    assert row["target"] == "oa-gpt" and row["model"] == "gpt-4o" and row["requests"] == 1
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        reported["prompt_tokens"],
        reported["completion_tokens"],
    )
    expected = (reported["prompt_tokens"] * 2 + reported["completion_tokens"] * 10) / 1_000_000
    assert row["cost_usd"] == pytest.approx(expected)
    metrics = httpx.get(f"http://{stack.api}/metrics", timeout=10).text
    line = 'switchyard_client_tokens_total{client="",kind="prompt",route="gpt",target="oa-gpt"} '
    assert line + f"{float(reported['prompt_tokens'])}" in metrics


def test_openai_stream_is_counted_and_the_usage_chunk_kept_from_a_client_that_did_not_ask(
    stack: Stack, oa: MockProvider
) -> None:
    oa.clear()
    client = openai.OpenAI(base_url=f"{stack.url}/v1", api_key="unused", max_retries=0)
    chunks = list(
        client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "hi"}], stream=True)
    )
    assert chunks and all(chunk.choices for chunk in chunks), "a usage-only chunk reached a client that did not ask"
    [sent] = oa.requests()
    assert sent["body"]["stream_options"] == {"include_usage": True}, "the provider was not asked for usage"

    def streamed() -> dict[str, Any] | None:
        row = usage_row(stack, "gpt")
        return row if row and row["requests"] >= 2 else None

    before = wait_for(streamed, 10, "the stream's usage in GET /usage")
    assert before["completion_tokens"] > 0

    # A client that asks gets the usage chunk, and the same counts are recorded.
    asked = list(
        client.chat.completions.create(
            model="gpt",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    final = asked[-1]
    assert final.choices == [] and final.usage is not None

    def three() -> dict[str, Any] | None:
        row = usage_row(stack, "gpt")
        return row if row and row["requests"] >= 3 else None

    after = wait_for(three, 10, "the second stream's usage")
    assert after["prompt_tokens"] - before["prompt_tokens"] == final.usage.prompt_tokens
    assert after["completion_tokens"] - before["completion_tokens"] == final.usage.completion_tokens


def test_anthropic_stream_is_counted(stack: Stack) -> None:
    client = anthropic.Anthropic(base_url=stack.url, api_key="unused", max_retries=0)
    with client.messages.stream(model="claude", max_tokens=50, messages=[{"role": "user", "content": "hi"}]) as s:
        message = s.get_final_message()
    row = wait_for(lambda: usage_row(stack, "claude"), 10, "the Anthropic stream's usage")
    assert row["prompt_tokens"] == message.usage.input_tokens
    assert row["completion_tokens"] == message.usage.output_tokens > 0


def test_translated_stream_is_counted(stack: Stack) -> None:
    response = stack.client.post(
        "/v1/chat/completions",
        json={"model": "translated", "messages": [{"role": "user", "content": "hi"}], "stream": True},
    )
    assert response.status_code == 200
    events = list(sse_events(response))
    assert events[-1] == "[DONE]"
    assert all(not isinstance(e, dict) or e.get("choices") for e in events)
    row = wait_for(lambda: usage_row(stack, "translated"), 10, "the translated stream's usage")
    assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0


def test_usage_query_filters_and_groups(stack: Stack) -> None:
    bad = httpx.get(f"http://{stack.api}/usage", params={"by": "planet"}, timeout=10)
    assert bad.status_code == 400 and "by:" in bad.json()["error"]
    by_day = usage(stack, by="day")
    assert len(by_day["rows"]) == 1 and by_day["rows"][0]["requests"] == by_day["total"]["requests"]
