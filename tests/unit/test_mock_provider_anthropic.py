"""Tests for the fake provider's Anthropic Messages API (``--api anthropic``) and the mid-stream
error rule: gateway tests against Anthropic upstreams trust these shapes, so each is pinned here
against a real socket."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from switchyard.mock_provider import anthropic_responses, responses
from switchyard.mock_provider.cli import configure_parser
from switchyard.mock_provider.rules import Match, Rule, parse_rule_spec, rules_from_json
from switchyard.mock_provider.server import MockProvider, Settings, start

ROOT = Path(__file__).resolve().parents[2]
Scenario = Callable[[aiohttp.ClientSession, str, MockProvider], Awaitable[None]]
BODY: dict[str, Any] = {"model": "claude-x", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
EVENT_ORDER = ["message_start", "content_block_start", "ping"]
END_ORDER = ["content_block_stop", "message_delta", "message_stop"]


@asynccontextmanager
async def serving(
    rules: list[Rule] | None = None, api: str = "anthropic", **settings: Any
) -> AsyncIterator[tuple[str, MockProvider]]:
    provider = MockProvider(Settings(name="t", api=api, **settings), rules or [])
    runner, port = await start(provider, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{port}", provider
    finally:
        await runner.cleanup()


def run(scenario: Scenario, rules: list[Rule] | None = None, api: str = "anthropic", **settings: Any) -> None:
    async def main() -> None:
        async with serving(rules, api, **settings) as (base, provider), aiohttp.ClientSession() as session:
            await scenario(session, base, provider)

    asyncio.run(main())


async def recorded(session: aiohttp.ClientSession, base: str) -> list[dict[str, Any]]:
    async with session.get(f"{base}/_mock/requests") as resp:
        data: dict[str, list[dict[str, Any]]] = await resp.json()
    return data["requests"]


def parse_sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) pairs; asserts the framing is exactly ``event: X\\ndata: JSON\\n\\n``."""
    assert raw.endswith(b"\n\n")
    events = []
    for block in raw.decode().split("\n\n")[:-1]:
        name_line, data_line = block.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: ")
        name, data = name_line.removeprefix("event: "), json.loads(data_line.removeprefix("data: "))
        assert data["type"] == name
        events.append((name, data))
    return events


def text_of(events: list[tuple[str, dict[str, Any]]]) -> str:
    deltas = [d["delta"] for name, d in events if name == "content_block_delta"]
    assert all(d["type"] == "text_delta" for d in deltas)
    return "".join(d["text"] for d in deltas)


# -- rules and CLI ------------------------------------------------------------------------


def test_stream_error_after_rule_parsing() -> None:
    rule = parse_rule_spec("model=m,stream_error_after=2")
    assert rule == Rule(match=Match(model="m"), stream_error_after=2) and rule.action == "stream_error_after:2"
    assert parse_rule_spec("stream-error-after=0").stream_error_after == 0
    assert rules_from_json([rule.to_json()]) == [rule]
    for spec, needle in [("stream_error_after=-1", ">= 0"), ("stream_error_after=x", "integer")]:
        with pytest.raises(ValueError, match=needle):
            parse_rule_spec(spec)
    with pytest.raises(ValueError, match="cannot go with"):
        Rule(status=500, stream_error_after=1)
    with pytest.raises(ValueError, match="stream_error_after"):
        rules_from_json([{"stream_error_after": "2"}])
    assert Rule(status=529).action == "status:529"
    with pytest.raises(ValueError, match="unknown api"):
        MockProvider(Settings(api="vertex"))


def test_cli_api_flag(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    assert parser.parse_args([]).api == "openai"
    assert parser.parse_args(["--api", "anthropic"]).api == "anthropic"
    with pytest.raises(SystemExit):
        parser.parse_args(["--api", "vertex"])
    assert "invalid choice" in capsys.readouterr().err


def test_cli_help_mentions_api_and_stream_error() -> None:
    for module in (["switchyard", "mock-provider"], ["switchyard.mock_provider"]):
        cmd = [sys.executable, "-m", *module, "--api", "anthropic", "--help"]
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, check=True).stdout
        flat = " ".join(out.split())  # argparse wraps help text at the terminal width
        assert "--api {anthropic,bedrock,gemini,openai}" in flat and "/v1/messages" in flat
        assert "stream_error_after (N: a streamed answer sends N content deltas" in flat


# -- body builders --------------------------------------------------------------------------


def test_error_types_by_status() -> None:
    expected = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        422: "invalid_request_error",
        429: "rate_limit_error",
        500: "api_error",
        503: "api_error",
        529: "overloaded_error",
    }
    assert {s: anthropic_responses.error_type(s) for s in expected} == expected
    assert json.loads(anthropic_responses.error_body(529, "busy")) == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "busy"},
    }


# -- HTTP behaviour -----------------------------------------------------------------------


def test_message_shape_and_recording() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
        body = {**BODY, "system": "be brief"}
        async with session.post(f"{base}/v1/messages", json=body, headers=headers) as resp:
            assert resp.status == 200 and resp.headers["x-mock-provider"] == "t"
            assert resp.headers["content-type"] == "application/json"
            data = await resp.json()
        text = responses.reply_text("t", "claude-x")
        assert data["id"].startswith("msg_") and data["model"] == "claude-x"
        assert data["usage"]["input_tokens"] > 0
        assert {k: v for k, v in data.items() if k not in ("id", "usage")} == {
            "type": "message",
            "role": "assistant",
            "model": "claude-x",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
        }
        assert data["usage"]["output_tokens"] == len(text.split())
        [rec] = await recorded(session, base)
        assert rec["headers"]["x-api-key"] == "sk-ant-test"
        assert rec["headers"]["anthropic-version"] == "2023-06-01"
        assert rec["path"] == "/v1/messages" and rec["body"] == body and rec["action"] == "ok"

    run(scenario)


def test_validation_models_and_unknown_paths() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        for body, message in [
            ({"model": "m", "messages": []}, "max_tokens: Field required"),
            ({"max_tokens": 5, "messages": []}, "model: Field required"),
            ({**BODY, "max_tokens": "5"}, "max_tokens: Input should be a valid integer"),
        ]:
            async with session.post(f"{base}/v1/messages", json=body) as resp:
                assert resp.status == 400
                assert await resp.json() == {
                    "type": "error",
                    "error": {"type": "invalid_request_error", "message": message},
                }
        async with session.post(f"{base}/v1/messages", data=b"{nope") as resp:
            assert resp.status == 400 and (await resp.json())["error"]["type"] == "invalid_request_error"
        for method, path in [("POST", "/v1/chat/completions"), ("GET", "/v1/messages"), ("GET", "/_mock/x")]:
            async with session.request(method, f"{base}{path}", json={}) as resp:
                assert resp.status == 404
                data = await resp.json()
            assert data["type"] == "error" and data["error"]["type"] == "not_found_error"
        async with session.get(f"{base}/v1/models") as resp:
            models = await resp.json()
        assert models["has_more"] is False and models["data"][0]["type"] == "model"
        assert (models["first_id"], models["last_id"]) == (models["data"][0]["id"], models["data"][-1]["id"])
        assert {"id", "display_name", "created_at"} <= set(models["data"][0])

    run(scenario)


def test_injected_529_and_429_with_retry_after() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        async with session.post(f"{base}/v1/messages", json={**BODY, "model": "busy"}) as resp:
            assert resp.status == 529 and "retry-after" not in resp.headers
            data = await resp.json()
        assert data["type"] == "error" and data["error"]["type"] == "overloaded_error"
        assert "injected 529" in data["error"]["message"]
        async with session.post(f"{base}/v1/messages", json={**BODY, "model": "limited"}) as resp:
            assert resp.status == 429 and resp.headers["retry-after"] == "1"
            assert (await resp.json())["error"]["type"] == "rate_limit_error"
        async with session.post(f"{base}/v1/messages", json={**BODY, "model": "slow-down"}) as resp:
            assert resp.status == 429 and resp.headers["retry-after"] == "30"
        assert [r["action"] for r in await recorded(session, base)] == ["status:529", "status:429", "status:429"]
        async with session.put(f"{base}/_mock/rules", data=b"[{") as resp:  # admin errors speak the API too
            assert resp.status == 400
            data = await resp.json()
        assert data["type"] == "error" and data["error"]["message"].startswith("invalid rules:")

    rules = [
        Rule(match=Match(model="busy"), status=529),
        Rule(match=Match(model="limited"), status=429),
        Rule(match=Match(model="slow-down"), status=429, retry_after="30"),
    ]
    run(scenario, rules)


def test_completion_tokens_rule() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        async with session.post(f"{base}/v1/messages", json=BODY) as resp:
            assert (await resp.json())["usage"]["output_tokens"] == 1234
        async with session.post(f"{base}/v1/messages", json={**BODY, "stream": True}) as resp:
            events = parse_sse(await resp.read())
        assert events[-2][1]["usage"] == {"output_tokens": 1234}

    run(scenario, [Rule(completion_tokens=1234)], stream_chunks=2, chunk_delay_ms=0)


def test_stream_event_sequence() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        async with session.post(f"{base}/v1/messages", json={**BODY, "stream": True}) as resp:
            assert resp.status == 200 and resp.headers["content-type"] == "text/event-stream"
            assert resp.headers["x-mock-provider"] == "t"
            events = parse_sse(await resp.read())
        assert [name for name, _ in events] == [*EVENT_ORDER, *["content_block_delta"] * 3, *END_ORDER]
        text = responses.reply_text("t", "claude-x")
        assert text_of(events) == text
        start = events[0][1]["message"]
        assert start["id"].startswith("msg_") and start["model"] == "claude-x" and start["content"] == []
        assert start["role"] == "assistant" and start["stop_reason"] is None
        assert start["usage"]["output_tokens"] == 1 and start["usage"]["input_tokens"] > 0
        assert events[1][1]["content_block"] == {"type": "text", "text": ""}
        assert all(d["index"] == 0 for name, d in events if name.startswith("content_block"))
        assert events[-2][1] == {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": len(text.split())},
        }
        assert events[-1][1] == {"type": "message_stop"}

    run(scenario, stream_chunks=3, chunk_delay_ms=0)


def test_stream_deltas_are_paced() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        # The head and first delta arrive at once; the second delta only after the 10 s pause.
        async with session.post(f"{base}/v1/messages", json={**BODY, "stream": True}) as resp:
            for name in [*EVENT_ORDER, "content_block_delta"]:
                block = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5)
                assert block.startswith(f"event: {name}\n".encode())
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 0.3)
            resp.close()

    run(scenario, stream_chunks=4, chunk_delay_ms=10_000)


def test_stream_error_after_anthropic() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        async with session.post(f"{base}/v1/messages", json={**BODY, "stream": True}) as resp:
            assert resp.status == 200
            events = parse_sse(await resp.read())
        assert [name for name, _ in events] == [*EVENT_ORDER, "content_block_delta", "content_block_delta", "error"]
        assert events[-1][1]["error"]["type"] == "overloaded_error"
        assert responses.reply_text("t", "claude-x").startswith(text_of(events))
        async with session.post(f"{base}/v1/messages", json=BODY) as resp:  # not streamed: a normal answer
            assert resp.status == 200 and (await resp.json())["type"] == "message"
        async with session.post(f"{base}/v1/messages", json={**BODY, "model": "zero", "stream": True}) as resp:
            assert [name for name, _ in parse_sse(await resp.read())] == [*EVENT_ORDER, "error"]
        actions = [r["action"] for r in await recorded(session, base)]
        assert actions == ["stream_error_after:2", "stream_error_after:2", "stream_error_after:0"]

    rules = [Rule(match=Match(model="zero"), stream_error_after=0), Rule(stream_error_after=2)]
    run(scenario, rules, stream_chunks=4, chunk_delay_ms=0)


def test_stream_error_after_openai() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        body = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
        async with session.post(f"{base}/v1/chat/completions", json=body) as resp:
            assert resp.status == 200
            raw = await resp.read()
        events = [json.loads(e.removeprefix(b"data: ")) for e in raw.split(b"\n\n")[:-1]]
        assert b"[DONE]" not in raw and len(events) == 2
        assert events[0]["object"] == "chat.completion.chunk"
        assert set(events[1]) == {"error"} and events[1]["error"]["type"] == "server_error"
        # More deltas asked for than exist: every delta, then the error instead of the finish chunk.
        payload = {"stream_error_after": 99, "match": {"model": "m"}}
        async with session.put(f"{base}/_mock/rules", json=[payload]) as resp:
            assert resp.status == 200
        async with session.post(f"{base}/v1/chat/completions", json=body) as resp:
            events = [json.loads(e.removeprefix(b"data: ")) for e in (await resp.read()).split(b"\n\n")[:-1]]
        assert len(events) == 4 and "error" in events[-1]
        assert all(e["choices"][0]["finish_reason"] is None for e in events[:-1])

    run(scenario, [Rule(stream_error_after=1)], api="openai", stream_chunks=3, chunk_delay_ms=0)
