"""The fake provider's token-counting endpoints, one per API it speaks: each takes the count request its
provider defines (the members the official SDKs give it; Bedrock's and Gemini's shapes) and answers a count
the SDKs' types accept, a deterministic one the end-to-end tests can compute from the recorded body."""

from __future__ import annotations

import json
import typing
from typing import Any
from urllib.parse import quote

import aiohttp
import botocore.session
from anthropic.types import MessageCountTokensParams, MessageTokensCount
from openai.types.responses import InputTokenCountResponse
from openai.types.responses.input_token_count_params import InputTokenCountParams

from switchyard.mock_provider import responses
from switchyard.mock_provider.apis import ANTHROPIC_COUNT_MEMBERS, RESPONSES_COUNT_MEMBERS
from switchyard.mock_provider.server import MockProvider
from tests.unit.test_mock_provider_anthropic import run
from tests.unit.test_mock_provider_bedrock import _post, _signed


def test_the_count_members_are_the_sdks() -> None:
    assert typing.get_type_hints(InputTokenCountParams).keys() == RESPONSES_COUNT_MEMBERS
    assert typing.get_type_hints(MessageCountTokensParams).keys() == ANTHROPIC_COUNT_MEMBERS


async def _count(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, Any, int]:
    raw = json.dumps(body).encode()
    async with session.post(url, data=raw, headers={"content-type": "application/json"}) as resp:
        return resp.status, await resp.json(), len(raw)


def test_openai_counts_input_tokens_and_refuses_generation_parameters() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        body = {"model": "gpt-4o", "input": "hello", "instructions": "Be brief."}
        status, answer, size = await _count(session, f"{base}/v1/responses/input_tokens", body)
        assert status == 200
        count = InputTokenCountResponse.model_validate(answer)
        assert count.input_tokens == responses.estimate_prompt_tokens(size)
        status, answer, _ = await _count(session, f"{base}/v1/responses/input_tokens", {**body, "stream": True})
        assert status == 400 and answer["error"]["param"] == "stream"

    run(scenario, api="openai")


def test_anthropic_counts_message_tokens_and_refuses_generation_parameters() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        body = {"model": "claude", "messages": [{"role": "user", "content": "hello"}]}
        status, answer, size = await _count(session, f"{base}/v1/messages/count_tokens", body)
        assert status == 200
        assert MessageTokensCount.model_validate(answer).input_tokens == responses.estimate_prompt_tokens(size)
        status, answer, _ = await _count(session, f"{base}/v1/messages/count_tokens", {**body, "max_tokens": 5})
        assert status == 400 and answer["error"]["message"] == "max_tokens: Extra inputs are not permitted"
        status, answer, _ = await _count(session, f"{base}/v1/messages/count_tokens", {"model": "claude"})
        assert status == 400 and answer["error"]["message"] == "messages: Field required"

    run(scenario, api="anthropic")


def test_gemini_counts_contents_or_a_whole_generate_content_request() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        url = f"{base}/v1beta/models/gemini-2.5-pro:countTokens"
        contents = [{"role": "user", "parts": [{"text": "hello"}]}]
        for body in (
            {"contents": contents},
            {"generateContentRequest": {"model": "models/gemini-2.5-pro", "contents": contents}},
        ):
            status, answer, size = await _count(session, url, body)
            assert (status, answer) == (200, {"totalTokens": responses.estimate_prompt_tokens(size)})
        status, _, _ = await _count(session, url, {"generateContentRequest": {"contents": contents}})
        assert status == 400, "a generateContentRequest names its model"

    run(scenario, api="gemini")


def test_bedrock_counts_a_signed_count_tokens_request_with_a_converse_input() -> None:
    path = f"/model/{quote('anthropic.claude-3-haiku-20240307-v1:0', safe='')}/count-tokens"
    converse = {"messages": [{"role": "user", "content": [{"text": "hi"}]}], "system": [{"text": "Be brief."}]}

    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        body = json.dumps({"input": {"converse": converse}}).encode()
        status, _, raw = await _post(session, base, path, _signed(base, path, body), body)
        assert status == 200, raw
        output = botocore.session.get_session().get_service_model("bedrock-runtime").shape_for("CountTokensResponse")
        assert set(json.loads(raw)) == set(output.members)  # type: ignore[attr-defined]
        assert json.loads(raw)["inputTokens"] == responses.estimate_prompt_tokens(len(body))
        wrong = json.dumps({"input": {"converse": {**converse, "inferenceConfig": {"maxTokens": 5}}}}).encode()
        status, headers, raw = await _post(session, base, path, _signed(base, path, wrong), wrong)
        assert (status, headers["x-amzn-errortype"]) == (400, "ValidationException"), raw

    run(scenario, api="bedrock")
