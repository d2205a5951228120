"""Tests for the fake provider: the e2e suite trusts its failure injection and recording blindly,
so each behaviour the tests rely on is pinned here against a real socket."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

from switchyard.mock_provider import responses
from switchyard.mock_provider.cli import configure_parser, rules_from_args
from switchyard.mock_provider.rules import Match, Rule, RuleEngine, parse_rule_spec, rules_from_json
from switchyard.mock_provider.server import MockProvider, Settings, path_model, start

ROOT = Path(__file__).resolve().parents[2]
Scenario = Callable[[aiohttp.ClientSession, str, MockProvider], Awaitable[None]]


@asynccontextmanager
async def serving(rules: list[Rule] | None = None, **settings: Any) -> AsyncIterator[tuple[str, MockProvider]]:
    provider = MockProvider(Settings(name="t", **settings), rules or [])
    runner, port = await start(provider, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{port}", provider
    finally:
        await runner.cleanup()


def run(scenario: Scenario, rules: list[Rule] | None = None, **settings: Any) -> None:
    async def main() -> None:
        async with serving(rules, **settings) as (base, provider), aiohttp.ClientSession() as session:
            await scenario(session, base, provider)

    asyncio.run(main())


async def recorded(session: aiohttp.ClientSession, base: str) -> list[dict[str, Any]]:
    async with session.get(f"{base}/_mock/requests") as resp:
        data: dict[str, list[dict[str, Any]]] = await resp.json()
    return data["requests"]


# -- rule specs and matching ------------------------------------------------------------


def test_parse_rule_spec_good() -> None:
    rule = parse_rule_spec("model=chatgpt-4,status=502,rate=0.5")
    assert rule == Rule(match=Match(model="chatgpt-4"), status=502, rate=0.5)
    assert parse_rule_spec("path=/v1/engines/gpt-4,hang=true").hang
    assert parse_rule_spec("reset=true,times=3") == Rule(reset=True, times=3)
    rule = parse_rule_spec("header=X-Tenant=a=b,latency-ms=15,hang")
    assert rule.match.header == ("x-tenant", "a=b") and rule.latency_ms == 15 and rule.hang


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("colour=red", "colour"),
        ("status=abc", "status"),
        ("status=200", "status"),
        ("rate=1.5", "rate"),
        ("hang=maybe", "hang"),
        ("header=novalue", "header"),
        ("status=500,hang=true", "mutually exclusive"),
        ("model=a,model=b", "duplicate"),
        ("model", "key=value"),
        ("", "empty"),
    ],
)
def test_parse_rule_spec_bad(spec: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        parse_rule_spec(spec)


def test_cli_rules_and_bad_spec_error(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    args = parser.parse_args(["--rule", "model=x,status=502", "--status", "503", "--latency-ms", "10"])
    assert rules_from_args(args) == [
        Rule(match=Match(model="x"), status=502),
        Rule(status=503, latency_ms=10.0),
    ]
    assert (args.host, args.port, args.name, args.seed) == ("127.0.0.1", 0, "mock", 0)
    assert rules_from_args(parser.parse_args([])) == []
    with pytest.raises(SystemExit):
        parser.parse_args(["--rule", "model=x,bogus=1"])
    assert "bogus" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["--hang", "--reset"])


def test_matching_fields_and_first_wins() -> None:
    engine = RuleEngine(
        [
            Rule(match=Match(model="a", path="/v1/chat"), status=502),
            Rule(match=Match(header=("x-tenant", "blue")), status=429),
            Rule(match=Match(model="a"), hang=True),
        ]
    )
    headers = CIMultiDict({"X-Tenant": "blue"})
    assert engine.decide("a", "/v1/chat/completions", {}) == engine.rules[0]
    assert engine.decide("a", "/v1/completions", headers) == engine.rules[1]
    assert engine.decide("a", "/v1/completions", {}) == engine.rules[2]
    assert engine.decide("b", "/v1/completions", CIMultiDict({"x-tenant": "red"})) is None


def test_rate_is_seeded_and_times_limits() -> None:
    def outcomes(seed: int) -> list[bool]:
        engine = RuleEngine([Rule(status=500, rate=0.5)], seed=seed)
        return [engine.decide(None, "/", {}) is not None for _ in range(200)]

    assert outcomes(0) == outcomes(0) != outcomes(1)
    assert 70 < sum(outcomes(0)) < 130
    expected = random.Random(0)
    assert outcomes(0) == [expected.random() < 0.5 for _ in range(200)]

    engine = RuleEngine([Rule(status=500, times=2), Rule(status=503)])
    assert [engine.decide(None, "/", {}) for _ in range(4)] == [engine.rules[0]] * 2 + [engine.rules[1]] * 2
    engine.replace(engine.rules)  # new rules restart the count
    assert engine.decide(None, "/", {}) == engine.rules[0]


def test_rules_from_json_validation() -> None:
    rules = rules_from_json([{"match": {"model": "x"}, "status": 502, "rate": 1}, {"reset": True, "times": None}])
    assert rules == [Rule(match=Match(model="x"), status=502), Rule(reset=True)]
    assert rules_from_json([r.to_json() for r in rules]) == rules  # GET output round-trips through PUT
    for bad, needle in [
        ({"rules": []}, "list"),
        ([{"status": True}], "status"),
        ([{"match": {"modle": "x"}}], "modle"),
        ([{}, {"hang": "yes"}], "rule 1: hang"),
    ]:
        with pytest.raises(ValueError, match=needle):
            rules_from_json(bad)


def test_path_model_and_stream_split() -> None:
    assert path_model("/openai/deployments/dep-1/chat/completions") == "dep-1"
    assert path_model("/v1/engines/gpt-3.5/completions") == "gpt-3.5"
    assert path_model("/v1/chat/completions") is None
    paced, tail = responses.stream_events(
        chat=True, resp_id="1", created=0, name="n", model="m", chunks=3, include_usage=False, prompt_tokens=1
    )
    pieces = [json.loads(e[6:])["choices"][0]["delta"].get("content", "") for e in paced]
    assert "".join(pieces) == responses.reply_text("n", "m") and len(paced) == 4 and tail == [b"data: [DONE]\n\n"]


# -- HTTP behaviour -----------------------------------------------------------------------


def test_chat_completion_and_recording() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        headers = {"Authorization": "Bearer sk-test"}
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
        async with session.post(f"{base}/v1/chat/completions?x=1", json=body, headers=headers) as resp:
            assert resp.status == 200 and resp.headers["x-mock-provider"] == "t"
            data = await resp.json()
        assert data["object"] == "chat.completion" and data["model"] == "gpt-4o"
        assert data["choices"][0]["message"] == {"role": "assistant", "content": "Hello from t (gpt-4o)"}
        assert data["choices"][0]["finish_reason"] == "stop"
        usage = data["usage"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
        [rec] = await recorded(session, base)
        assert rec["path"] == "/v1/chat/completions" and rec["query"] == {"x": "1"}
        assert rec["headers"]["authorization"] == "Bearer sk-test"
        assert rec["headers"]["host"] == base.removeprefix("http://")
        assert rec["body"] == body and rec["action"] == "ok" and rec["method"] == "POST"
        async with session.delete(f"{base}/_mock/requests") as resp:
            assert resp.status == 200
        assert await recorded(session, base) == []

    run(scenario)


def test_completion_shapes_and_path_fallbacks() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        async with session.post(f"{base}/v1/engines/gpt-3.5/completions", json={"prompt": "x"}) as resp:
            data = await resp.json()
        assert data["object"] == "text_completion" and data["model"] == "gpt-3.5"
        assert data["choices"][0]["text"] == "Hello from t (gpt-3.5)"
        url = f"{base}/openai/deployments/my-dep/chat/completions?api-version=2024-06-01"
        async with session.post(url, json={"messages": []}) as resp:
            assert (await resp.json())["model"] == "my-dep"
        async with session.post(f"{base}/v1/completions", json={"model": "babbage", "prompt": "x"}) as resp:
            assert (await resp.json())["model"] == "babbage"
        async with session.post(f"{base}/v1/embeddings", json={"model": "e", "input": ["a", "b"]}) as resp:
            data = await resp.json()
        assert data["object"] == "list" and len(data["data"]) == 2
        async with session.get(f"{base}/v1/models") as resp:
            assert (await resp.json())["object"] == "list"

    run(scenario)


def test_unknown_path_and_malformed_json() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        for method, path in [
            ("POST", "/v1/nothing"),
            ("GET", "/v1/chat/completions"),
            ("GET", "/_mock/nope"),
        ]:
            async with session.request(method, f"{base}{path}", json={}) as resp:
                assert resp.status == 404 and resp.headers["x-mock-provider"] == "t"
                assert (await resp.json())["error"]["type"] == "invalid_request_error"
        async with session.post(f"{base}/v1/chat/completions", data=b"{nope") as resp:
            assert resp.status == 400
            assert set((await resp.json())["error"]) == {"message", "type", "param", "code"}
        recs = await recorded(session, base)
        assert [r["path"] for r in recs] == ["/v1/nothing", "/v1/chat/completions", "/v1/chat/completions"]
        assert recs[-1]["body"] == "{nope" and recs[-1]["body_bytes"] == 5

    run(scenario)


def test_stream_format_with_usage() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        body = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
        async with session.post(f"{base}/v1/chat/completions", json=body) as resp:
            assert resp.headers["content-type"] == "text/event-stream"
            assert resp.headers["x-mock-provider"] == "t"
            raw = await resp.read()
        events = raw.split(b"\n\n")
        assert events[-2:] == [b"data: [DONE]", b""]
        chunks = [json.loads(e.removeprefix(b"data: ")) for e in events[:-2]]
        assert len(chunks) == 3 + 1 + 1
        assert all(c["object"] == "chat.completion.chunk" and c["model"] == "m" for c in chunks)
        assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:4])
        assert text == "Hello from t (m)"
        assert chunks[3]["choices"][0]["finish_reason"] == "stop"
        assert chunks[4]["choices"] == [] and chunks[4]["usage"]["total_tokens"] > 0

    run(scenario, stream_chunks=3, chunk_delay_ms=0)


def test_stream_chunks_are_flushed_separately() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        # With 10 s between chunks the whole stream takes ~40 s: receiving the first event within
        # a few seconds proves it was flushed on its own, not buffered with the rest.
        async with session.post(f"{base}/v1/completions", json={"model": "m", "stream": True}) as resp:
            first = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), 5)
            assert json.loads(first.removeprefix(b"data: "))["object"] == "text_completion"
            assert not resp.content.is_eof()
            resp.close()

    run(scenario, stream_chunks=4, chunk_delay_ms=10_000)


def test_status_rule_body_and_retry_after() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        async with session.post(f"{base}/v1/chat/completions", json={"model": "limited"}) as resp:
            assert resp.status == 429 and resp.headers["retry-after"] == "1"
            err = (await resp.json())["error"]
        assert (err["type"], err["code"]) == ("rate_limit_error", "rate_limit_exceeded")
        async with session.post(f"{base}/v1/chat/completions", json={"model": "broken"}) as resp:
            assert resp.status == 503 and "retry-after" not in resp.headers
            assert (await resp.json())["error"]["type"] == "server_error"
        async with session.post(f"{base}/v1/chat/completions", json={"model": "fine"}) as resp:
            assert resp.status == 200
        assert [r["action"] for r in await recorded(session, base)] == ["status:429", "status:503", "ok"]

    rules = [Rule(match=Match(model="limited"), status=429), Rule(match=Match(model="broken"), status=503)]
    run(scenario, rules)


def test_reset_closes_connection_and_is_recorded() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        with pytest.raises(aiohttp.ClientError):
            async with session.post(f"{base}/v1/chat/completions", json={"model": "m"}) as resp:
                await resp.read()
        [rec] = await recorded(session, base)
        assert rec["action"] == "reset"
        async with session.post(f"{base}/v1/chat/completions", json={"model": "m"}) as resp:
            assert resp.status == 200  # times=1: only the first request is reset

    run(scenario, [Rule(reset=True, times=1)])


def test_hang_is_recorded_while_hanging_and_times_out() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        async def hanging() -> None:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.5)) as other:
                await other.post(f"{base}/v1/engines/gpt-4/completions", json={"prompt": "x"})

        task = asyncio.create_task(hanging())
        recs: list[dict[str, Any]] = []
        while not recs:  # each poll is a round trip, so the hanging request gets to arrive
            assert not task.done(), "the hanging request finished before it was recorded"
            recs = await recorded(session, base)
        assert recs[0]["action"] == "hang" and recs[0]["path"] == "/v1/engines/gpt-4/completions"
        with pytest.raises(asyncio.TimeoutError):
            await task

    run(scenario, [Rule(match=Match(path="/v1/engines/gpt-4"), hang=True)])


def test_put_rules_validates_and_applies() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, provider: MockProvider) -> None:
        for bad in [b"{", b'{"status": 500}', b'[{"status": 200}]', b'[{"match": {"mdl": "x"}}]']:
            async with session.put(f"{base}/_mock/rules", data=bad) as resp:
                assert resp.status == 400
                assert (await resp.json())["error"]["message"].startswith("invalid rules:")
        rules = [{"match": {"model": "x"}, "status": 502, "rate": 1}]
        async with session.put(f"{base}/_mock/rules", json=rules) as resp:
            assert resp.status == 200
        async with session.get(f"{base}/_mock/rules") as resp:
            got = await resp.json()
        assert rules_from_json(got) == rules_from_json(rules) == list(provider.engine.rules)
        async with session.post(f"{base}/v1/chat/completions", json={"model": "x"}) as resp:
            assert resp.status == 502
        async with session.get(f"{base}/_mock/health") as resp:
            assert await resp.json() == {"name": "t", "status": "ok"}
        assert len(await recorded(session, base)) == 1  # admin calls are not recorded

    run(scenario)


def test_latency_rule_delays_answer() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with session.post(f"{base}/v1/chat/completions", json={"model": "m"}) as resp:
            assert resp.status == 200
        assert loop.time() - started >= 0.2

    run(scenario, [Rule(latency_ms=200)])


def test_process_prints_port_and_exits_cleanly_on_sigterm() -> None:
    cmd = [sys.executable, "-m", "switchyard.mock_provider", "--name", "p", "--rule", "model=x,status=502"]
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("mock-provider p listening on http://127.0.0.1:")
            port = int(line.rsplit(":", 1)[1])

            async def probe() -> int:
                async with aiohttp.ClientSession() as session:
                    url = f"http://127.0.0.1:{port}/v1/chat/completions"
                    async with session.post(url, json={"model": "x"}) as resp:
                        return resp.status

            assert asyncio.run(probe()) == 502
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=10)
            assert proc.returncode == 0, err
            assert out == ""  # the listening line is the only stdout output
        finally:
            if proc.poll() is None:
                proc.kill()
