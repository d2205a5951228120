"""Per-target body rules end to end: the provider of a target with rules receives exactly the body the rules
make, and another target of the same route, hit in the same client request, receives the client's body
untouched but for its model (the native path, with no ext_proc).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from switchyard.supervisor.processes import free_port
from tests.support.harness import MockProvider, Stack, mock_provider_fixture, running_stack

pytestmark = pytest.mark.e2e


def _config(port: int, oa: MockProvider) -> str:
    rules = (
        "{rename: {max_tokens: max_completion_tokens}, drop: [temperature], set: {reasoning_effort: low}, "
        "default: {store: false}, cap: {max_completion_tokens: 50}}"
    )
    return f"""
listen: 127.0.0.1:{port}
providers:
  oa: {{kind: openai, base_url: "{oa.url}", api_key: sk-oa-e2e}}
routes:
  - model: ruled-first
    health: {{consecutive_failures: 0, failure_rate: null}}
    targets:
      - {{name: reasoning, provider: oa, model: o3, body: {rules}}}
      - {{name: plain, provider: oa, model: gpt-4o}}
  - model: plain-first
    health: {{consecutive_failures: 0, failure_rate: null}}
    targets:
      - {{name: plain, provider: oa, model: gpt-4o}}
      - {{name: reasoning, provider: oa, model: o3, body: {rules}}}
"""


oa = mock_provider_fixture("oa")


@pytest.fixture(scope="module")
def stack(oa: MockProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(_config(free_port(), oa), Path(tmp_path_factory.mktemp("stack"))) as running:
        yield running


# The client's exact bytes: key order and spacing are kept on the native path.
CLIENT_BODY = '{"messages": [{"role": "user", "content": "hi"}], "model": "%s", "max_tokens": 500, "temperature": 0.7}'
RULED_BODY = {
    "messages": [{"role": "user", "content": "hi"}],
    "model": "o3",
    "max_completion_tokens": 50,
    "reasoning_effort": "low",
    "store": False,
}


def _post(stack: Stack, model: str) -> tuple[int, dict[str, str], str]:
    response = stack.client.post(
        "/v1/chat/completions", content=CLIENT_BODY % model, headers={"content-type": "application/json"}
    )
    return response.status_code, dict(response.headers), response.text


def test_ruled_primary_gets_the_configured_body_and_the_plain_backup_the_untouched_one(
    stack: Stack, oa: MockProvider
) -> None:
    oa.set_rules([{"match": {"model": "o3"}, "status": 503}])
    oa.clear()
    status, headers, text = _post(stack, "ruled-first")
    assert status == 200, text
    assert (headers["x-switchyard-target"], headers["x-switchyard-attempts"]) == ("plain", "2")
    first, second = oa.requests()
    assert first["body"] == RULED_BODY
    assert json.dumps(first["body"]) and int(first["headers"]["content-length"]) == len(
        json.dumps(RULED_BODY, separators=(",", ":"))
    )
    assert second["body"] == json.loads(CLIENT_BODY % "gpt-4o")
    assert int(second["headers"]["content-length"]) == len(CLIENT_BODY % "gpt-4o")
    # No marker of Switchyard's own (the ext_proc's, the rewrite's) reaches a provider.
    assert not [h for h in (*first["headers"], *second["headers"]) if h.startswith("x-switchyard-")]


def test_plain_primary_fails_over_to_the_ruled_backup_which_answers_untouched(stack: Stack, oa: MockProvider) -> None:
    oa.set_rules([{"match": {"model": "gpt-4o"}, "status": 502}])
    oa.clear()
    status, headers, text = _post(stack, "plain-first")
    assert status == 200, text
    assert (headers["x-switchyard-target"], headers["x-switchyard-attempts"]) == ("reasoning", "2")
    assert json.loads(text)["choices"][0]["message"]["content"] == "Hello from oa (o3)"
    first, second = oa.requests()
    assert first["body"] == json.loads(CLIENT_BODY % "gpt-4o")
    assert second["body"] == RULED_BODY


def test_a_stream_from_the_ruled_target_passes_through_with_the_official_sdk(stack: Stack, oa: MockProvider) -> None:
    oa.set_rules([{"match": {"model": "gpt-4o"}, "status": 502}])
    oa.clear()
    client = openai.OpenAI(base_url=stack.url + "/v1", api_key="client-key", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="plain-first", messages=[{"role": "user", "content": "hi"}], max_tokens=500, stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from oa (o3)"
    (ruled,) = oa.requests("o3")
    assert ruled["body"]["max_completion_tokens"] == 50 and ruled["body"]["stream"] is True
    assert "max_tokens" not in ruled["body"]
