"""The fake provider's Gemini API (``--api gemini``): the shapes the Gemini translators and e2e tests rely on,
pinned against a real socket."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from switchyard.mock_provider import responses
from switchyard.mock_provider.rules import Match, Rule
from switchyard.mock_provider.server import MockProvider
from tests.unit.test_mock_provider_anthropic import recorded, run

BODY: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
PLAIN = "/v1beta/models/gemini-x:generateContent"
STREAM = "/v1beta/models/gemini-x:streamGenerateContent?alt=sse"


def _chunks(raw: bytes) -> list[dict[str, Any]]:
    blocks = raw.decode().split("\r\n\r\n")
    assert blocks[-1] == ""
    return [json.loads(block.removeprefix("data: ")) for block in blocks[:-1]]


def test_whole_answer_names_the_model_from_the_path_and_is_recorded() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        async with session.post(base + PLAIN, json=BODY, headers={"x-goog-api-key": "g-key"}) as resp:
            assert resp.status == 200
            data = await resp.json()
        (candidate,) = data["candidates"]
        assert candidate["content"] == {"role": "model", "parts": [{"text": responses.reply_text("t", "gemini-x")}]}
        assert candidate["finishReason"] == "STOP" and data["usageMetadata"]["candidatesTokenCount"] == 4
        (rec,) = await recorded(session, base)
        assert rec["path"] == PLAIN and rec["headers"]["x-goog-api-key"] == "g-key"

    run(scenario, api="gemini")


def test_stream_chunks_end_with_the_finish_reason() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        async with session.post(base + STREAM, json=BODY) as resp:
            assert resp.status == 200 and resp.headers["content-type"] == "text/event-stream"
            chunks = _chunks(await resp.read())
        assert len(chunks) == 4
        text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
        assert text == responses.reply_text("t", "gemini-x")
        assert [c["candidates"][0].get("finishReason") for c in chunks] == [None, None, None, "STOP"]

    run(scenario, api="gemini", stream_chunks=3, chunk_delay_ms=0)


def test_failure_rules_answer_in_googles_error_shape() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        async with session.post(base + PLAIN.replace("gemini-x", "limited"), json=BODY) as resp:
            assert resp.status == 429
            assert (await resp.json())["error"]["status"] == "RESOURCE_EXHAUSTED"
        async with session.post(base + PLAIN.replace("gemini-x", "down"), json=BODY) as resp:
            assert resp.status == 503
            assert (await resp.json())["error"]["status"] == "UNAVAILABLE"
        async with session.post(base + STREAM, json=BODY) as resp:
            chunks = _chunks(await resp.read())
        assert len(chunks) == 2 and chunks[-1]["error"]["status"] == "UNAVAILABLE"

    rules = [
        Rule(match=Match(model="limited"), status=429),
        Rule(match=Match(model="down"), status=503),
        Rule(match=Match(model="gemini-x"), stream_error_after=1),
    ]
    run(scenario, rules, api="gemini", stream_chunks=3, chunk_delay_ms=0)


def test_bodies_of_other_apis_are_refused_like_gemini_does() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        async with session.post(base + PLAIN, json={"model": "x", "messages": []}) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["status"] == "INVALID_ARGUMENT"
        async with session.post(base + "/v1/chat/completions", json=BODY) as resp:
            assert resp.status == 404

    run(scenario, api="gemini")
