"""Who may call (issue 14), on a running gateway: client keys checked by Envoy, 401/403 in each client API's
shape, a client's key never reaching any kind of provider, request limits with Retry-After, and a removed
key refused within a second, on a connection that stays open.

Client keys are canaries: random per run, so finding one anywhere it must not be proves a leak.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from switchyard.mock_provider.bedrock_responses import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY
from switchyard.supervisor.processes import free_port
from tests.support.harness import MockProvider, Stack, running_stack, wait_for

pytestmark = pytest.mark.e2e

KEY_A = f"sk-team-a-{secrets.token_hex(12)}"
KEY_A2 = f"sk-team-a2-{secrets.token_hex(12)}"
KEY_B = f"sk-team-b-{secrets.token_hex(12)}"
KEY_SLOW = f"sk-slow-{secrets.token_hex(12)}"
KEY_BURSTY = f"sk-bursty-{secrets.token_hex(12)}"
KEY_SMOOTH = f"sk-smooth-{secrets.token_hex(12)}"
CANARIES = (KEY_A, KEY_A2, KEY_B, KEY_SLOW, KEY_BURSTY, KEY_SMOOTH)
ROUTES = ("oa", "compat", "claude", "gem", "br")


def _config(
    port: int, mocks: dict[str, MockProvider], a_keys: tuple[str, ...] = ("${TEAM_A_KEY}", "${TEAM_A2_KEY}")
) -> str:
    digest_b = hashlib.sha256(KEY_B.encode()).hexdigest()
    keys = ", ".join(f'"{k}"' for k in a_keys)
    return f"""
listen: 127.0.0.1:{port}
providers:
  oa: {{kind: openai, base_url: "{mocks["openai"].url}", api_key: sk-provider-openai}}
  compat: {{kind: openai_compatible, base_url: "{mocks["openai"].url}"}}
  an: {{kind: anthropic, base_url: "{mocks["anthropic"].url}", api_key: sk-provider-anthropic}}
  gm: {{kind: gemini, base_url: "{mocks["gemini"].url}", api_key: g-provider}}
  br: {{kind: bedrock, region: eu-west-1, base_url: "{mocks["bedrock"].url}", access_key_id: {TEST_ACCESS_KEY_ID},
        secret_access_key: {TEST_SECRET_ACCESS_KEY}}}
routes:
  - {{model: oa, targets: [{{name: oa, provider: oa, model: oa-up}}]}}
  - {{model: compat, targets: [{{name: compat, provider: compat, model: compat-up}}]}}
  - {{model: claude, targets: [{{name: claude, provider: an, model: claude-up}}]}}
  - {{model: gem, targets: [{{name: gem, provider: gm, model: gemini-2.5-flash}}]}}
  - {{model: br, targets: [{{name: br, provider: br, model: "anthropic.claude-3-haiku-20240307-v1:0"}}]}}
clients:
  team-a: {{keys: [{keys}]}}
  team-b: {{keys: ["sha256:{digest_b}"], models: [oa]}}
  slow: {{keys: ["${{SLOW_KEY}}"], limits: {{requests_per_minute: 6, tokens_per_minute: 100000}}}}
  bursty: {{keys: ["{KEY_BURSTY}"], limits: {{requests_per_minute: 30}}}}
  smooth: {{keys: ["{KEY_SMOOTH}"], limits: {{requests_per_minute: 30, burst: 5}}}}
"""


@pytest.fixture(scope="module")
def mocks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, MockProvider]]:
    log_dir = tmp_path_factory.mktemp("mocks")
    started = {api: MockProvider(f"clients-{api}", log_dir, ("--api", api)) for api in ("openai", "anthropic")}
    started["gemini"] = MockProvider("clients-gemini", log_dir, ("--api", "gemini"))
    started["bedrock"] = MockProvider("clients-bedrock", log_dir, ("--api", "bedrock"))
    yield started
    for mock in started.values():
        mock.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, mocks: dict[str, MockProvider]) -> Iterator[Stack]:
    env = {"TEAM_A_KEY": KEY_A, "TEAM_A2_KEY": KEY_A2, "SLOW_KEY": KEY_SLOW}
    with running_stack(_config(free_port(), mocks), tmp_path_factory.mktemp("stack"), env=env) as running:
        yield running


def _chat(stack: Stack, model: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return stack.chat(model, headers=headers)


def _messages(stack: Stack, model: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hello"}]}
    return stack.client.post("/v1/messages", json=body, headers={"anthropic-version": "2023-06-01", **(headers or {})})


def _openai_error(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "code"}, response.text
    return error


def _anthropic_error(response: httpx.Response) -> dict[str, Any]:
    document = response.json()
    assert document["type"] == "error", response.text
    error: dict[str, Any] = document["error"]
    return error


def test_missing_or_unknown_keys_get_401_in_each_client_api_shape(stack: Stack) -> None:
    for headers in ({}, {"authorization": "Bearer sk-nobody-0123456789abcdef"}, {"x-api-key": "nope"}):
        answer = _chat(stack, "oa", headers)
        assert answer.status_code == 401, answer.text
        error = _openai_error(answer)
        assert error["type"] == "invalid_request_error" and error["code"] == "invalid_api_key"
        assert "API key" in error["message"]
        answer = _messages(stack, "claude", headers)
        assert answer.status_code == 401, answer.text
        assert _anthropic_error(answer)["type"] == "authentication_error"
    assert stack.client.get("/v1/models").status_code == 401
    assert stack.client.get("/healthz").status_code == 200, "load balancers need no key"


def test_a_model_the_client_may_not_use_gets_403_in_each_client_api_shape(stack: Stack) -> None:
    assert _chat(stack, "oa", {"authorization": f"Bearer {KEY_B}"}).status_code == 200, "its sha256: key works"
    answer = _chat(stack, "claude", {"authorization": f"Bearer {KEY_B}"})
    assert answer.status_code == 403, answer.text
    assert _openai_error(answer)["message"] == "Client team-b may not use model claude."
    answer = _messages(stack, "claude", {"x-api-key": KEY_B})
    assert answer.status_code == 403, answer.text
    assert _anthropic_error(answer)["type"] == "permission_error"
    assert _chat(stack, "no-such-model", {"authorization": f"Bearer {KEY_B}"}).status_code == 404


def test_no_provider_of_any_kind_ever_sees_a_client_key(stack: Stack, mocks: dict[str, MockProvider]) -> None:
    for mock in mocks.values():
        mock.clear()
    forged = {"x-switchyard-client": "team-b"}
    for model in ROUTES:
        for headers in ({"authorization": f"Bearer {KEY_A}"}, {"x-api-key": KEY_A2}):
            assert _chat(stack, model, {**headers, **forged}).status_code == 200, model
            assert _messages(stack, model, {**headers, **forged}).status_code == 200, model
    seen = [request for mock in mocks.values() for request in mock.requests()]
    assert len(seen) == 4 * len(ROUTES)
    for request in seen:
        text = repr(request)
        assert not any(key in text for key in CANARIES), request["headers"]
        assert not any(name.startswith("x-switchyard-") for name in request["headers"])
    (compat,) = [r for r in mocks["openai"].requests() if r["body"]["model"] == "compat-up"][:1]
    assert "authorization" not in compat["headers"], "a provider without a key gets no authorization at all"
    # Envoy holds digests only: its whole config has no client key.
    dump = stack.admin_get("/config_dump?include_eds")
    assert not any(key in dump for key in CANARIES)
    assert hashlib.sha256(KEY_A.encode()).hexdigest() in dump


def test_a_request_limit_answers_429_with_retry_after_and_rate_limit_headers_in_the_client_api_shape(
    stack: Stack,
) -> None:
    headers = {"authorization": f"Bearer {KEY_SLOW}"}
    answers = [_chat(stack, "oa", headers) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5, "6 a minute admits the minute's allowance at once"
    assert [a.headers["x-ratelimit-remaining-requests"] for a in answers] == ["5", "4", "3", "2", "1"]
    first = answers[0].headers
    assert first["x-ratelimit-limit-requests"] == "6" and first["x-ratelimit-reset-requests"].endswith("s")
    assert first["x-ratelimit-limit-tokens"] == "100000" and 0 <= int(first["x-ratelimit-reset-tokens"][:-1]) <= 60
    assert "x-ratelimit-limit" not in first, "Envoy's own draft names do not reach the client"
    sixth = _messages(stack, "claude", headers)
    assert sixth.status_code == 200, sixth.text
    assert sixth.headers["anthropic-ratelimit-requests-limit"] == "6"
    assert sixth.headers["anthropic-ratelimit-requests-remaining"] == "0"
    reset = datetime.fromisoformat(sixth.headers["anthropic-ratelimit-requests-reset"])
    assert 0 <= (reset - datetime.now(UTC)).total_seconds() <= 11
    assert sixth.headers["anthropic-ratelimit-tokens-limit"] == "100000"
    assert "x-ratelimit-limit-requests" not in sixth.headers
    limited = _chat(stack, "oa", headers)
    assert limited.status_code == 429, limited.text
    assert int(limited.headers["retry-after"]) == 10, "6 a minute on one node: a request every 10 s"
    assert limited.headers["x-ratelimit-remaining-requests"] == "0"
    error = _openai_error(limited)
    assert error["type"] == "rate_limit_error" and "requests_per_minute" in error["message"]
    limited = _messages(stack, "claude", headers)
    assert limited.status_code == 429 and _anthropic_error(limited)["type"] == "rate_limit_error"
    assert limited.headers["anthropic-ratelimit-requests-remaining"] == "0"
    other = _chat(stack, "oa", {"authorization": f"Bearer {KEY_A}"})
    assert other.status_code == 200, "other clients unaffected"
    assert not any(name.startswith("x-ratelimit") for name in other.headers), "a client without limits gets none"


def _burst(stack: Stack, key: str, count: int) -> list[int]:
    """`count` requests at once (8 connections): what a new user's script does."""
    headers = {"authorization": f"Bearer {key}"}
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda _: _chat(stack, "oa", headers).status_code, range(count)))


def test_a_quick_burst_of_60_at_30_a_minute_admits_30(stack: Stack) -> None:
    statuses = _burst(stack, KEY_BURSTY, 60)
    admitted = statuses.count(200)
    print(f"\nburst of 60 at 30/min through one node: {admitted} admitted")
    assert set(statuses) <= {200, 429}
    assert 27 <= admitted <= 33


def test_burst_tightens_what_is_admitted_at_once(stack: Stack) -> None:
    statuses = _burst(stack, KEY_SMOOTH, 20)
    assert 5 <= statuses.count(200) <= 6, statuses  # the burst, and maybe one refill (a token every 2 s)


def test_a_removed_key_stops_working_within_a_second_even_on_an_open_connection(
    stack: Stack, mocks: dict[str, MockProvider]
) -> None:
    headers = {"authorization": f"Bearer {KEY_A2}"}
    assert _chat(stack, "oa", headers).status_code == 200  # the connection stays open (keep-alive)
    port = int(stack.url.rsplit(":", 1)[1])
    stack.write_config(_config(port, mocks, a_keys=("${TEAM_A_KEY}",)))
    removed = time.monotonic()
    wait_for(lambda: _chat(stack, "oa", headers).status_code == 401, 10, "the removed key to be refused")
    took = time.monotonic() - removed
    print(f"removed key refused after {took:.2f}s")
    assert took < 1.0 + 0.5, "within about a second (the file watch debounces 150 ms)"
    assert _chat(stack, "oa", {"authorization": f"Bearer {KEY_A}"}).status_code == 200
    stack.write_config(_config(port, mocks))
    wait_for(lambda: _chat(stack, "oa", headers).status_code == 200, 10, "the key to work again")
