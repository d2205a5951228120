"""Tests for envoy/lua/client_auth.lua, the client authentication Envoy runs as a downstream Lua filter.

The script runs in LuaJIT (Envoy's Lua) through lupa, loaded as the control plane pushes it (its client table
in front, built by controlplane/clients.py from a real config), against a small double of Envoy's stream
handle. Its SHA-256 is checked against hashlib. The real Envoy runs it in tests/e2e/test_clients.py.
"""

from __future__ import annotations

import hashlib
import importlib
import random
import time
from dataclasses import dataclass
from types import MappingProxyType

import pytest

from controlplane.clients import client_auth_source
from controlplane.live_state import LiveState
from switchyard.config import load_config_text

LUA = importlib.import_module("lupa.luajit21")  # LuaJIT, as in Envoy (the script needs its `bit` library)

KEY_A = "sk-team-a-0123456789abcdef"
KEY_B = "sk-team-b-0123456789abcdef"
ODD_MODEL = "weird, model%2C/ü"

_DOUBLE = """
local handle_of = function(request)
  local headers = {}
  function headers:get(name) return request.headers[name] end
  function headers:replace(name, value) request.headers[name] = value end
  function headers:remove(name) request.headers[name] = nil end
  local metadata = {}
  function metadata:get(namespace) return request.metadata[namespace] end
  function metadata:set(namespace, key, value)
    request.metadata[namespace] = request.metadata[namespace] or {}
    request.metadata[namespace][key] = value
  end
  local info = {}
  function info:dynamicMetadata() return metadata end
  local handle = {}
  function handle:headers()
    if request.broken then error("injected fault") end
    return headers
  end
  function handle:streamInfo() return info end
  function handle:respond(reply, body) request.reply, request.body = reply, body end
  function handle:logErr(message) request.logged = message end
  return handle
end
return function(request) envoy_on_request(handle_of(request)) end
"""


def _config(models: str = "[oa]") -> str:
    digest_b = hashlib.sha256(KEY_B.encode()).hexdigest()
    return f"""
providers:
  p: {{kind: openai, base_url: "http://127.0.0.1:9", api_key: sk-provider}}
routes:
  - {{model: oa, targets: [{{name: t, provider: p, model: x}}]}}
  - {{model: other, targets: [{{name: t, provider: p, model: x}}]}}
  - {{model: "{ODD_MODEL}", targets: [{{name: t, provider: p, model: x}}]}}
clients:
  team-a: {{keys: ["{KEY_A}"], limits: {{requests_per_minute: 600}}}}
  team-b: {{keys: ["sha256:{digest_b}"], models: {models}}}
"""


@dataclass
class Result:
    reply: dict[str, str] | None
    body: str | None
    headers: dict[str, str]
    metadata: dict[str, str]
    logged: str | None


class Script:
    """The script as Envoy runs it on one worker: loaded once, then called per request."""

    def __init__(self, config_text: str = _config(), live: LiveState | None = None) -> None:
        self.runtime = LUA.LuaRuntime(encoding="utf-8")
        self.runtime.execute(client_auth_source(load_config_text(config_text), live or LiveState()))
        self.call = self.runtime.execute(_DOUBLE)
        self.module = self.runtime.eval("switchyard_client_auth")

    def request(self, headers: dict[str, str], model: str | None = "oa", broken: bool = False) -> Result:
        metadata = {"switchyard": self.runtime.table_from({"model": model} if model else {})}
        table = self.runtime.table_from(
            {"headers": self.runtime.table_from(headers), "metadata": self.runtime.table_from(metadata)}
        )
        table.broken = broken
        self.call(table)
        reply = None if table.reply is None else dict(table.reply.items())
        own = table.metadata["switchyard"]
        return Result(
            reply=reply,
            body=table.body,
            headers=dict(table.headers.items()),
            metadata={k: v for k, v in own.items() if k != "model"},
            logged=table.logged,
        )


@pytest.fixture(scope="module")
def script() -> Script:
    return Script()


def test_sha256_matches_hashlib_on_every_padding_case() -> None:
    sha256 = Script().module.sha256_hex
    rng = random.Random(14)
    for length in [*range(0, 130), 200, 1000, 5000]:
        message = "".join(chr(rng.randrange(1, 256)) for _ in range(length))  # lupa passes it as UTF-8
        assert sha256(message) == hashlib.sha256(message.encode()).hexdigest(), length


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": f"Bearer {KEY_A}"},
        {"authorization": f"bearer  {KEY_A} "},
        {"x-api-key": KEY_A},
        {"authorization": "Basic dXNlcg==", "x-api-key": KEY_A},
    ],
)
def test_a_known_key_from_either_place_authenticates_and_never_goes_on(script: Script, headers: dict[str, str]) -> None:
    result = script.request({**headers, "x-switchyard-client": "team-b", "content-type": "application/json"})
    assert result.reply is None
    assert result.headers == {"x-switchyard-client": "team-a", "content-type": "application/json"}
    assert result.metadata == {"client": "team-a", "retry_after": "1"}


def test_missing_and_unknown_keys_are_answered_401(script: Script) -> None:
    for headers, message in [
        ({}, "Missing API key"),
        ({"authorization": "Bearer"}, "Missing API key"),
        ({"x-api-key": ""}, "Missing API key"),
        ({"authorization": "Bearer sk-nobody-0123456789"}, "Invalid API key."),
        ({"x-api-key": hashlib.sha256(KEY_A.encode()).hexdigest()}, "Invalid API key."),  # the digest is no key
    ]:
        result = script.request(headers)
        assert result.reply is not None and result.reply[":status"] == "401", headers
        assert result.body is not None and result.body.startswith(message)
        assert result.metadata == {}


def test_a_digest_key_works_and_its_models_are_enforced(script: Script) -> None:
    assert script.request({"x-api-key": KEY_B}, model="oa").reply is None
    refused = script.request({"x-api-key": KEY_B}, model="other")
    assert refused.reply is not None and refused.reply[":status"] == "403"
    assert refused.body == "Client team-b may not use model other."
    assert "x-api-key" in refused.headers, "a refused request goes nowhere; nothing to strip"
    assert script.request({"x-api-key": KEY_B}, model="unrouted").reply is None, "left to the routes' 404"
    assert script.request({"x-api-key": KEY_B}, model=None).reply is None, "left to the routes' 400"


def test_model_names_survive_the_table_encoding() -> None:
    script = Script(_config(models=f'["{ODD_MODEL}"]'))
    assert script.request({"x-api-key": KEY_B}, model=ODD_MODEL).reply is None
    assert script.request({"x-api-key": KEY_B}, model="oa").reply is not None


def test_a_refused_client_gets_429_with_retry_after_until_its_time_is_up() -> None:
    now = time.time()
    live = LiveState(refused_clients=MappingProxyType({"team-a": now + 42.5, "team-b": now - 5}))
    script = Script(live=live)
    refused = script.request({"authorization": f"Bearer {KEY_A}"})
    assert refused.reply is not None and refused.reply[":status"] == "429"
    assert 42 <= int(refused.reply["retry-after"]) <= 44
    assert refused.body is not None and "over its token limit or budget" in refused.body
    assert script.request({"x-api-key": KEY_B}).reply is None, "its refusal has ended"


def test_each_known_key_is_hashed_once_and_unknown_keys_are_never_remembered() -> None:
    script = Script()
    for _ in range(3):
        script.request({"authorization": f"Bearer {KEY_A}"})
        script.request({"x-api-key": KEY_B})
    assert script.module.known_count() == 2
    for n in range(100):
        script.request({"x-api-key": f"sk-made-up-{n:020d}"})
    assert script.module.known_count() == 2


def test_a_failure_inside_answers_500_rather_than_letting_the_request_through(script: Script) -> None:
    result = script.request({"authorization": f"Bearer {KEY_A}"}, broken=True)
    assert result.reply is not None and result.reply[":status"] == "500"
    assert result.logged is not None and "injected fault" in result.logged


_TOKENS_ONLY = "team-t: {keys: [sk-team-t-0123456789abcdef], limits: {tokens_per_minute: 9000}}"
_LIMITED = _config().replace("team-b: {keys:", _TOKENS_ONLY + "\n  team-b: {keys:")
NOON = 1_800_000_000  # a whole minute (and second), so resets are exact


def _rate_headers(script: Script, client: str, endpoint: str, remaining: str | None = "7") -> dict[str, str] | None:
    draft = script.runtime.table_from({"remaining": remaining, "reset": "2"} if remaining else {})
    found = script.module.rate_limit_headers(client, endpoint, draft, NOON + 15)
    return None if found is None else dict(found.items())


def test_openai_callers_get_openai_s_rate_limit_headers_with_the_fleet_wide_limit() -> None:
    script = Script(_LIMITED, LiveState(nodes=2))
    assert _rate_headers(script, "team-a", "chat") == {
        "x-ratelimit-limit-requests": "600",
        "x-ratelimit-remaining-requests": "7",
        "x-ratelimit-reset-requests": "2s",
    }
    assert _rate_headers(script, "team-t", "chat", remaining=None) == {
        "x-ratelimit-limit-tokens": "9000",
        "x-ratelimit-reset-tokens": "45s",
    }
    assert _rate_headers(script, "team-b", "chat") is None, "a client without limits gets none"


def test_anthropic_callers_get_anthropic_s_rate_limit_headers_with_rfc_3339_resets() -> None:
    refused = LiveState(refused_clients=MappingProxyType({"team-t": NOON + 60.0}))
    script = Script(_LIMITED, refused)
    assert _rate_headers(script, "team-a", "messages") == {
        "anthropic-ratelimit-requests-limit": "600",
        "anthropic-ratelimit-requests-remaining": "7",
        "anthropic-ratelimit-requests-reset": "2027-01-15T08:00:17Z",
    }
    assert _rate_headers(script, "team-t", "messages") == {
        "anthropic-ratelimit-tokens-limit": "9000",
        "anthropic-ratelimit-tokens-reset": "2027-01-15T08:01:00Z",
        "anthropic-ratelimit-tokens-remaining": "0",
    }
