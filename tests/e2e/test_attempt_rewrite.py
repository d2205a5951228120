"""The per-attempt rewrite in Envoy, end to end: every retry gets its own target's path, credentials and
model, nothing of the previous attempt's, and the body's top-level `model` is rewritten exactly or refused."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from switchyard.supervisor.processes import free_port
from tests.support.harness import MockProvider, Stack, running_stack

pytestmark = pytest.mark.e2e

OPENAI_KEY = "sk-rewrite-openai-31c7"
AZURE_KEY = "rewrite-azure-9be2"


@pytest.fixture(scope="module")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockProvider]:
    provider = MockProvider("rewrite", tmp_path_factory.mktemp("mock"))
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, mock: MockProvider) -> Iterator[Stack]:
    config = f"""
listen: 127.0.0.1:{free_port()}
max_request_body: 4MiB
providers:
  openai: {{kind: openai, base_url: "{mock.url}", api_key: "{OPENAI_KEY}"}}
  azure: {{kind: azure_openai, base_url: "{mock.url}", api_key: "{AZURE_KEY}", api_version: 2024-10-21}}
  local: {{kind: openai_compatible, base_url: "{mock.url}/v1"}}
routes:
  - model: gpt-4
    fallback_codes: [502, 503]
    targets:
      - {{name: first, provider: openai, model: first-model-with-a-longer-name, suffix: /v1/first/chat/completions}}
      - {{name: second, provider: azure, model: dep2}}
      - {{name: third, provider: local, model: gpt-4}}
  - model: modèle
    targets: [{{name: only, provider: openai, model: 目标-model}}]
"""
    with running_stack(config, tmp_path_factory.mktemp("stack")) as running:
        yield running


def test_each_retry_gets_its_targets_path_credentials_and_model_and_nothing_of_the_last(
    stack: Stack, mock: MockProvider
) -> None:
    mock.clear()
    mock.set_rules(
        [
            {"match": {"model": "first-model-with-a-longer-name"}, "status": 502},
            {"match": {"model": "dep2"}, "status": 503},
        ]
    )
    body = {"model": "gpt-4", "messages": [{"role": "user", "content": "héllo"}], "max_tokens": 7}
    response = stack.client.post(
        "/v1/chat/completions", json=body, headers={"authorization": "Bearer client-key", "x-api-key": "client-2"}
    )
    mock.set_rules([])
    assert response.status_code == 200, response.text
    assert response.headers["x-switchyard-target"] == "third"
    assert response.headers["x-switchyard-attempts"] == "3"
    first, second, third = mock.requests()
    assert (first["path"], first["body"]["model"]) == ("/v1/first/chat/completions", "first-model-with-a-longer-name")
    assert first["headers"]["authorization"] == f"Bearer {OPENAI_KEY}"
    assert second["path"] == "/openai/deployments/dep2/chat/completions"
    assert second["query"] == {"api-version": "2024-10-21"}
    assert second["body"]["model"] == "dep2"
    assert second["headers"]["api-key"] == AZURE_KEY
    assert third["path"] == "/v1/chat/completions"
    assert third["body"] == body, "the client's own model, untouched, and the rest of the body as sent"
    for attempt in (first, second, third):
        received = json.dumps(attempt["body"], ensure_ascii=False, separators=(",", ":")).encode()
        assert int(attempt["headers"]["content-length"]) == attempt["body_bytes"] >= len(received)
        assert "x-api-key" not in attempt["headers"]
        assert not any(name.startswith("x-switchyard-") for name in attempt["headers"])
    assert "authorization" not in second["headers"] and "authorization" not in third["headers"]
    assert "api-key" not in third["headers"]


@pytest.mark.parametrize(
    "raw",
    [
        # the top-level value spelled with an escape, a nested model key and a mention in a message
        '{"model":"gpt\\u002d4","tools":[{"model":"gpt-4"}],'
        '"messages":[{"role":"user","content":"\\"model\\": \\"gpt-4\\""}]}',
        # the key spelled with an escape, whitespace around the colon, the member last
        '{"messages":[{"role":"user","content":"hi"}], "mod\\u0065l" :  "gpt-4"}',
    ],
)
def test_the_top_level_model_is_rewritten_whatever_its_spelling_and_nothing_else(
    stack: Stack, mock: MockProvider, raw: str
) -> None:
    mock.clear()
    response = stack.client.post(
        "/v1/chat/completions", content=raw.encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    (received,) = mock.requests()
    expected = json.loads(raw)
    expected["model"] = "first-model-with-a-longer-name"
    assert received["body"] == expected


def test_a_body_with_two_top_level_models_is_refused_in_the_clients_shape(stack: Stack, mock: MockProvider) -> None:
    mock.clear()
    raw = b'{"model":"gpt-4","messages":[{"role":"user","content":"hi"}],"model":"gpt-4"}'
    response = stack.client.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert "model" in error["message"] and error["type"] == "invalid_request_error"
    assert mock.requests() == [], "never sent with an ambiguous model"


def test_non_ascii_models_are_written_as_configured(stack: Stack, mock: MockProvider) -> None:
    mock.clear()
    response = stack.chat("modèle")
    assert response.status_code == 200, response.text
    (received,) = mock.requests()
    assert received["body"]["model"] == "目标-model"


def test_a_client_cannot_inject_a_rewrite_or_a_translation(stack: Stack, mock: MockProvider) -> None:
    mock.clear()
    forged = {
        "x-switchyard-rewrite": "path.chat=%2Fevil&set.authorization=Bearer%20stolen&remove=",
        "x-switchyard-translate": "client_api=openai&provider_api=anthropic&model=x&client_model=x&route=x&target=x",
    }
    response = stack.chat("modèle", headers=forged)
    assert response.status_code == 200, response.text
    (received,) = mock.requests()
    assert received["path"] == "/v1/chat/completions"
    assert received["headers"]["authorization"] == f"Bearer {OPENAI_KEY}"
    assert not any(name.startswith("x-switchyard-") for name in received["headers"])
