"""Cached tokens end to end (issue 19), with the official SDKs as clients: what each provider kind reports as
read from or written to its prompt cache reaches the client's answer in the client API's names, and GET /usage,
`switchyard usage` and /metrics count it apart from the plain prompt and price it at the target's cache prices.

The mock providers report cached tokens deterministically (switchyard/mock_provider/caching.py): Anthropic and
Bedrock for requests with cache markers, OpenAI and Gemini for long prompts."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from switchyard.mock_provider.caching import automatic
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

PRICE = "{input: 3, output: 15, cache_read: 0.3, cache_write: 3.75}"
LONG_PROMPT = "Summarise the following. " + "word " * 1200  # over 1024 tokens: OpenAI and Gemini cache it
CACHED_SYSTEM = [{"type": "text", "text": "Long instructions.", "cache_control": {"type": "ephemeral"}}]


def _config(port: int, oa: MockProvider, an: MockProvider, br: MockProvider, gm: MockProvider) -> str:
    def route(model: str, provider: str, target_model: str) -> str:
        target = f"{{name: {model}-t, provider: {provider}, model: {target_model}, price: {PRICE}}}"
        return f"  - model: {model}\n    targets: [{target}]\n"

    return (
        f"""
listen: 127.0.0.1:{port}
providers:
  oa: {{kind: openai, base_url: "{oa.url}", api_key: sk-oa-e2e}}
  an: {{kind: anthropic, base_url: "{an.url}", api_key: sk-an-e2e}}
  gm: {{kind: gemini, base_url: "{gm.url}", api_key: g-e2e}}
{bedrock_provider("br", br)}
routes:
"""
        + route("an-json", "an", "claude-x")
        + route("an-stream", "an", "claude-x")
        + route("an-cli", "an", "claude-x")
        + route("br-json", "br", "anthropic.claude-sonnet-4-5-v1:0")
        + route("br-stream", "br", "anthropic.claude-sonnet-4-5-v1:0")
        + route("oa-json", "oa", "gpt-4o")
        + route("oa-responses", "oa", "gpt-4o")
        + route("gm-stream", "gm", "gemini-3-pro")
    )


oa = mock_provider_fixture("oa")
an = mock_provider_fixture("an", "--api", "anthropic")
br = mock_provider_fixture("br", "--api", "bedrock")
gm = mock_provider_fixture("gm", "--api", "gemini")


@pytest.fixture(scope="module")
def stack(
    oa: MockProvider, an: MockProvider, br: MockProvider, gm: MockProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = BEDROCK_ENV
    config = _config(free_port(), oa, an, br, gm)
    with running_stack(config, Path(tmp_path_factory.mktemp("stack")), env=env) as running:
        yield running


def _anthropic(stack: Stack) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stack.url, api_key="client-key", max_retries=0)


def _openai(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.url + "/v1", api_key="client-key", max_retries=0)


def usage_row(stack: Stack, route: str) -> dict[str, Any]:
    def row() -> dict[str, Any] | None:
        rows = httpx.get(f"http://{stack.api}/usage", params={"by": "route", "route": route}, timeout=10).json()
        return rows["rows"][0] if rows["rows"] else None

    found: dict[str, Any] = wait_for(row, 10, f"the usage of route {route} in GET /usage")
    return found


def assert_counted(row: dict[str, Any], prompt: int, completion: int, read: int, write: int) -> None:
    """The row's counts, and its cost at each count's own price (PRICE)."""
    assert read > 0, "the provider reported no cached tokens: nothing is shown"
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, completion)
    assert (row["cache_read_tokens"], row["cache_write_tokens"]) == (read, write)
    cost = ((prompt - read - write) * 3 + read * 0.3 + write * 3.75 + completion * 15) / 1_000_000
    assert row["cost_usd"] == pytest.approx(cost)


@pytest.mark.parametrize("route", ["an-json", "br-json"])
def test_anthropic_answers_show_cache_reads_and_writes(stack: Stack, route: str) -> None:
    message = _anthropic(stack).messages.create(
        model=route, max_tokens=64, system=CACHED_SYSTEM, messages=[{"role": "user", "content": "hi"}]
    )
    usage = message.usage
    read, write = usage.cache_read_input_tokens or 0, usage.cache_creation_input_tokens or 0
    assert write > 0
    row = usage_row(stack, route)
    assert_counted(row, usage.input_tokens + read + write, usage.output_tokens, read, write)


@pytest.mark.parametrize("route", ["an-stream", "br-stream"])
def test_anthropic_streams_show_cache_reads_and_writes(stack: Stack, route: str) -> None:
    with _anthropic(stack).messages.stream(
        model=route, max_tokens=64, system=CACHED_SYSTEM, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        usage = stream.get_final_message().usage
    read, write = usage.cache_read_input_tokens or 0, usage.cache_creation_input_tokens or 0
    row = usage_row(stack, route)
    assert_counted(row, usage.input_tokens + read + write, usage.output_tokens, read, write)


def test_openai_chat_answers_show_cached_tokens(stack: Stack) -> None:
    completion = _openai(stack).chat.completions.create(
        model="oa-json", messages=[{"role": "user", "content": LONG_PROMPT}]
    )
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    cached = usage.prompt_tokens_details.cached_tokens or 0
    assert_counted(usage_row(stack, "oa-json"), usage.prompt_tokens, usage.completion_tokens, cached, 0)


def test_responses_answers_show_cached_tokens(stack: Stack) -> None:
    response = _openai(stack).responses.create(model="oa-responses", input=LONG_PROMPT)
    usage = response.usage
    assert usage is not None
    cached = usage.input_tokens_details.cached_tokens
    assert_counted(usage_row(stack, "oa-responses"), usage.input_tokens, usage.output_tokens, cached, 0)


def test_a_translated_stream_counts_cached_tokens_the_client_did_not_ask_to_see(stack: Stack, gm: MockProvider) -> None:
    gm.clear()
    chunks = list(
        _openai(stack).chat.completions.create(
            model="gm-stream", messages=[{"role": "user", "content": LONG_PROMPT}], stream=True
        )
    )
    assert chunks and all(chunk.usage is None for chunk in chunks)
    [sent] = gm.requests()
    prompt = estimate_prompt_tokens(sent["body_bytes"])  # what the Gemini mock reports for this request
    row = usage_row(stack, "gm-stream")
    assert_counted(row, prompt, row["completion_tokens"], automatic(prompt).read, 0)


def test_the_cli_and_metrics_show_cached_tokens(stack: Stack) -> None:
    _anthropic(stack).messages.create(
        model="an-cli", max_tokens=64, system=CACHED_SYSTEM, messages=[{"role": "user", "content": "hi"}]
    )
    row = usage_row(stack, "an-cli")
    shown = subprocess.run(
        [sys.executable, "-m", "switchyard", "usage", "--api", stack.api, "--by", "route", "--route", "an-cli"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    header, line = shown.splitlines()[:2]
    assert header.split() == [
        "route",
        "requests",
        "prompt_tokens",
        "completion_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "cost_usd",
    ]
    assert line.split()[4:6] == [str(row["cache_read_tokens"]), str(row["cache_write_tokens"])]

    metrics = httpx.get(f"http://{stack.api}/metrics", timeout=10).text
    labels = 'client="",kind="{kind}",route="an-cli",target="an-cli-t"'
    for kind, column in (("read", "cache_read_tokens"), ("write", "cache_write_tokens")):
        line = "switchyard_client_cache_tokens_total{" + labels.format(kind=kind) + "} "
        assert f"{line}{float(row[column])}" in metrics
