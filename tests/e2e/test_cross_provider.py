"""Cross-provider fallback end to end: an OpenAI primary with an Anthropic backup and the reverse, for clients
of either API, plain and streaming, and the official SDKs, unmodified, as clients.

The client must not notice which provider served: same API, same shape, its own model name.
"""

from __future__ import annotations

import json
import time
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

CLIENT_KEY = "client-gateway-key"
ANTHROPIC_KEY = "sk-ant-e2e-backup-5c1d"


def _config(port: int, oa: MockProvider, an: MockProvider, chatty: MockProvider, slow: MockProvider) -> str:
    return f"""
listen: 127.0.0.1:{port}
providers:
  oa: {{kind: openai, base_url: "{oa.url}", api_key: sk-oa-e2e}}
  an: {{kind: anthropic, base_url: "{an.url}", api_key: {ANTHROPIC_KEY}}}
  chatty: {{kind: anthropic, base_url: "{chatty.url}", api_key: {ANTHROPIC_KEY}}}
  slow: {{kind: anthropic, base_url: "{slow.url}", api_key: {ANTHROPIC_KEY}}}
routes:
  - model: chatty
    targets: [{{name: chatty, provider: chatty, model: claude-chatty}}]
  - model: slow
    targets: [{{name: slow, provider: slow, model: claude-slow}}]
  - model: oa-first
    health: {{consecutive_failures: 0, failure_rate: null}}
    targets:
      - {{name: openai-primary, provider: oa, model: gpt-primary}}
      - {{name: anthropic-backup, provider: an, model: claude-backup}}
  - model: an-first
    health: {{consecutive_failures: 0, failure_rate: null}}
    targets:
      - {{name: anthropic-primary, provider: an, model: claude-primary}}
      - {{name: openai-backup, provider: oa, model: gpt-backup}}
  - model: same-name
    # No target renames the model: same-API attempts skip the body, translated ones must still get it.
    targets: [{{name: only, provider: oa, model: same-name}}]
  - model: an-first-lenient
    on_unsupported_parameter: skip_target
    health: {{consecutive_failures: 0, failure_rate: null}}
    targets:
      - {{name: anthropic-primary, provider: an, model: claude-primary}}
      - {{name: openai-backup, provider: oa, model: gpt-backup}}
"""


oa = mock_provider_fixture("oa")


an = mock_provider_fixture("an", "--api", "anthropic")


# Streams of many chunks, each its own ext_proc message (1 ms apart, so Envoy does not merge them).
chatty = mock_provider_fixture("chatty", "--api", "anthropic", "--stream-chunks", "300", "--chunk-delay-ms", "1")
# A stream that takes its time: 4 content deltas, 0.6 s apart.
SLOW_CHUNK_S = 0.6
slow = mock_provider_fixture("slow", "--api", "anthropic", "--stream-chunks", "4", "--chunk-delay-ms", "600")


@pytest.fixture(scope="module")
def stack(
    oa: MockProvider,
    an: MockProvider,
    chatty: MockProvider,
    slow: MockProvider,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    config = _config(free_port(), oa, an, chatty, slow)
    with running_stack(config, Path(tmp_path_factory.mktemp("stack"))) as running:
        yield running


@pytest.fixture(autouse=True)
def primaries_fail(oa: MockProvider, an: MockProvider) -> None:
    """Every test starts with both primaries failing: the OpenAI one with 500, the Anthropic one with 529."""
    oa.set_rules([{"match": {"model": "gpt-primary"}, "status": 500}])
    an.set_rules([{"match": {"model": "claude-primary"}, "status": 529}])
    oa.clear()
    an.clear()


def messages(stack: Stack, body: dict[str, Any], stream: bool = False) -> httpx.Response:
    headers = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
    return stack.client.post("/v1/messages", json={**body, "stream": stream}, headers=headers)


CHAT = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"},
    ]
}
MESSAGES = {"max_tokens": 64, "system": "Be brief.", "messages": [{"role": "user", "content": "hello"}]}


@pytest.mark.parametrize("primary_status", [500, 529])
def test_openai_client_gets_an_openai_answer_from_the_anthropic_backup(
    stack: Stack, oa: MockProvider, an: MockProvider, primary_status: int
) -> None:
    oa.set_rules([{"match": {"model": "gpt-primary"}, "status": primary_status}])
    response = stack.chat("oa-first", headers={"authorization": f"Bearer {CLIENT_KEY}"}, messages=CHAT["messages"])

    assert response.status_code == 200, response.text
    assert (response.headers["x-switchyard-target"], response.headers["x-switchyard-attempts"]) == (
        "anthropic-backup",
        "2",
    )
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "claude-backup", "the model that served, as a same-API answer names it"
    message = body["choices"][0]["message"]
    assert (message["role"], message["content"]) == ("assistant", "Hello from an (claude-backup)")
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 4
    (sent,) = an.requests("claude-backup")
    assert sent["path"] == "/v1/messages"
    assert sent["body"]["system"] == "Be brief."
    assert sent["body"]["messages"] == [{"role": "user", "content": "hello"}]
    assert sent["body"]["max_tokens"] > 0
    assert sent["headers"]["x-api-key"] == ANTHROPIC_KEY
    assert sent["headers"]["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent["headers"], "the client's credential never reaches a provider"


def test_openai_client_streams_from_the_anthropic_backup(stack: Stack) -> None:
    body = {"model": "oa-first", "stream": True, "stream_options": {"include_usage": True}, **CHAT}
    with stack.client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-switchyard-target"] == "anthropic-backup"
        events = list(sse_events(response))

    assert events[-1] == "[DONE]"
    chunks = [e for e in events if isinstance(e, dict)]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert {c["model"] for c in chunks} == {"claude-backup"}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello from an (claude-backup)"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] > 0


def test_anthropic_client_gets_an_anthropic_answer_from_the_openai_backup(
    stack: Stack, oa: MockProvider, an: MockProvider
) -> None:
    response = messages(stack, {"model": "an-first", **MESSAGES})

    assert response.status_code == 200, response.text
    assert response.headers["x-switchyard-target"] == "openai-backup"
    body = response.json()
    assert (body["type"], body["role"], body["model"]) == ("message", "assistant", "gpt-backup")
    assert body["content"] == [{"type": "text", "text": "Hello from oa (gpt-backup)"}]
    assert body["stop_reason"] == "end_turn"
    assert body["usage"]["output_tokens"] == 4
    assert [r["action"] for r in an.requests("claude-primary")] == ["status:529"]
    (sent,) = oa.requests("gpt-backup")
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"},
    ]
    assert sent["headers"]["authorization"] == "Bearer sk-oa-e2e"
    assert "x-api-key" not in sent["headers"]


def test_anthropic_client_streams_from_the_openai_backup(stack: Stack) -> None:
    with stack.client.stream(
        "POST", "/v1/messages", json={"model": "an-first", "stream": True, **MESSAGES}
    ) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line]

    names = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    data = [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert [d["type"] for d in data] == names
    text = "".join(d["delta"].get("text", "") for d in data if d["type"] == "content_block_delta")
    assert text == "Hello from oa (gpt-backup)"
    (final,) = [d for d in data if d["type"] == "message_delta"]
    assert final["delta"]["stop_reason"] == "end_turn"
    assert final["usage"]["output_tokens"] > 0


def test_when_every_target_fails_the_last_error_comes_back_in_the_clients_shape(stack: Stack, an: MockProvider) -> None:
    an.set_rules([{"match": {}, "status": 529}])
    response = stack.chat("oa-first")

    assert response.status_code == 503, "Anthropic's 529 has no OpenAI equivalent; SDKs know what 503 means"
    error = response.json()["error"]
    assert error["type"] == "server_error"
    assert "injected 529" in error["message"]


def test_a_parameter_the_target_cannot_express_gets_a_400_naming_it(stack: Stack, an: MockProvider) -> None:
    an.set_rules([])  # the Anthropic primary is healthy: it is the target that cannot take the request
    response = stack.chat("an-first", logprobs=True)

    assert response.status_code == 400
    assert "logprobs" in response.json()["error"]["message"]
    assert an.requests() == [], "nothing the provider would misread is sent"


def test_anthropic_clients_get_anthropic_shaped_errors_from_the_gateway(stack: Stack) -> None:
    response = messages(stack, {"model": "no-such-model", **MESSAGES})

    assert response.status_code == 404
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "not_found_error"
    assert "an-first" in body["error"]["message"]
    assert "'no-such-model'" in body["error"]["message"]


def test_an_error_in_the_middle_of_a_translated_stream_is_an_error_event_not_a_clean_end(
    stack: Stack, an: MockProvider
) -> None:
    an.set_rules([{"match": {"model": "claude-backup"}, "stream_error_after": 2}])
    body = {"model": "oa-first", "stream": True, **CHAT}
    with stack.client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        events = list(sse_events(response))

    assert "[DONE]" not in events, "a broken stream must not look finished"
    assert isinstance(events[-1], dict) and "error" in events[-1]
    text = "".join(
        e["choices"][0]["delta"].get("content") or "" for e in events if isinstance(e, dict) and e.get("choices")
    )
    assert text, "the tokens before the error reached the client"


# --- the official SDKs, unmodified --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "served_by"),
    [
        ("oa-first", "gpt-primary"),  # an OpenAI client, an OpenAI target: the provider's answer as it is
        ("an-first", "gpt-backup"),  # an Anthropic client, an OpenAI target: translated
    ],
)
def test_answers_name_the_model_that_served_on_either_path(
    stack: Stack, oa: MockProvider, an: MockProvider, route: str, served_by: str
) -> None:
    oa.set_rules([])
    an.set_rules([{"match": {"model": "claude-primary"}, "status": 529}])
    chat = stack.chat(route, headers={"authorization": f"Bearer {CLIENT_KEY}"}, messages=CHAT["messages"])
    message = messages(stack, {"model": route, **MESSAGES})

    assert chat.status_code == 200 and message.status_code == 200, (chat.text, message.text)
    assert chat.json()["model"] == served_by
    assert message.json()["model"] == served_by


def test_openai_sdk_plain_and_streaming_through_an_anthropic_fallback(stack: Stack) -> None:
    client = openai.OpenAI(base_url=f"{stack.url}/v1", api_key=CLIENT_KEY, max_retries=0)

    completion = client.chat.completions.create(model="oa-first", messages=CHAT["messages"])  # type: ignore[arg-type]
    assert completion.choices[0].message.content == "Hello from an (claude-backup)"
    assert completion.model == "claude-backup"

    stream = client.chat.completions.create(
        model="oa-first",
        messages=CHAT["messages"],
        stream=True,  # type: ignore[arg-type]
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Hello from an (claude-backup)"


def test_anthropic_sdk_plain_and_streaming_through_an_openai_fallback(stack: Stack) -> None:
    client = anthropic.Anthropic(base_url=stack.url, api_key=CLIENT_KEY, max_retries=0)

    message = client.messages.create(model="an-first", max_tokens=64, messages=[{"role": "user", "content": "hello"}])
    assert message.content[0].type == "text" and message.content[0].text == "Hello from oa (gpt-backup)"
    assert message.model == "gpt-backup"

    with client.messages.stream(
        model="an-first", max_tokens=64, messages=[{"role": "user", "content": "hello"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from oa (gpt-backup)"
    assert final.stop_reason == "end_turn"


def test_sdk_errors_raise_the_sdks_own_exceptions(stack: Stack, oa: MockProvider, an: MockProvider) -> None:
    an.set_rules([{"match": {}, "status": 529}])
    with pytest.raises(openai.InternalServerError) as raised:
        openai.OpenAI(base_url=f"{stack.url}/v1", api_key=CLIENT_KEY, max_retries=0).chat.completions.create(
            model="oa-first",
            messages=CHAT["messages"],  # type: ignore[arg-type]
        )
    assert raised.value.status_code == 503

    oa.set_rules([{"match": {}, "status": 429, "retry_after": ""}])
    with pytest.raises(anthropic.RateLimitError):
        anthropic.Anthropic(base_url=stack.url, api_key=CLIENT_KEY, max_retries=0).messages.create(
            model="an-first", max_tokens=64, messages=[{"role": "user", "content": "hello"}]
        )


def test_an_endpoint_the_anthropic_primary_lacks_goes_straight_to_a_target_that_has_it(
    stack: Stack, an: MockProvider
) -> None:
    an.set_rules([])  # healthy, but Anthropic has no embeddings endpoint
    response = stack.client.post("/v1/embeddings", json={"model": "an-first", "input": "hello"})

    assert response.status_code == 200, response.text
    assert (response.headers["x-switchyard-target"], response.headers["x-switchyard-attempts"]) == (
        "openai-backup",
        "1",
    )
    assert an.requests() == []


def test_a_translated_stream_reaches_the_client_as_the_provider_sends_it(stack: Stack, slow: MockProvider) -> None:
    """Each chunk is translated as it arrives, not once the answer is whole: the ext_proc asks Envoy for the
    answer in chunks when the request streams (its filter sends answers whole otherwise)."""
    arrivals: list[tuple[float, str]] = []
    started = time.monotonic()
    body = {"model": "slow", "stream": True, **CHAT}
    with stack.client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in sse_events(response):
            if isinstance(event, dict) and event["choices"] and event["choices"][0]["delta"].get("content"):
                arrivals.append((time.monotonic() - started, event["choices"][0]["delta"]["content"]))
    assert len(arrivals) == 4, arrivals
    first, last = arrivals[0][0], arrivals[-1][0]
    # The provider sends its deltas 0.6 s apart: a client served chunk by chunk sees them spread out the same.
    assert last - first > 2 * SLOW_CHUNK_S, f"the deltas arrived together, at {[round(t, 2) for t, _ in arrivals]} s"
    # The marker that sent the attempt to the ext_proc stays in Envoy.
    received = slow.requests()[-1]
    assert not [name for name in received["headers"] if name.startswith("x-switchyard-")], received["headers"]


def test_a_translated_whole_answer_keeps_the_marker_from_the_provider(stack: Stack, slow: MockProvider) -> None:
    response = stack.chat("slow")
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]
    received = slow.requests()[-1]
    assert received["path"] == "/v1/messages"
    assert not [name for name in received["headers"] if name.startswith("x-switchyard-")], received["headers"]


def test_translated_streams_report_time_to_first_token_and_tokens(stack: Stack) -> None:
    def counts() -> tuple[int, int, int]:
        target = stack.target_status("oa-first", "anthropic-backup")
        return (
            target["time_to_first_token_histogram"]["buckets"]["+Inf"],
            target["time_per_output_token_histogram"]["buckets"]["+Inf"],
            target["output_tokens"],
        )

    before = counts()  # earlier tests streamed from this target too
    body = {"model": "oa-first", "stream": True, **CHAT}
    for _ in range(3):
        with stack.client.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            list(response.iter_lines())

    wait_for(lambda: counts()[0] >= before[0] + 3, 10, "the stream measurements in the answer log")
    after = counts()
    assert after[1] >= before[1] + 3, "time per output token of each stream"
    assert after[2] >= before[2] + 3 * 4, "the mock answers 4 tokens a stream"
    metrics = httpx.get(f"http://{stack.api}/metrics", timeout=10).text
    assert 'gen_ai_server_time_to_first_token_seconds_count{route="oa-first",target="anthropic-backup"}' in metrics


def test_a_route_set_to_skip_sends_what_anthropic_cannot_express_to_the_openai_target(
    stack: Stack, oa: MockProvider, an: MockProvider
) -> None:
    an.set_rules([])  # the Anthropic primary is healthy
    response = stack.chat("an-first-lenient", logprobs=True, seed=7)

    assert response.status_code == 200, response.text
    assert (response.headers["x-switchyard-target"], response.headers["x-switchyard-attempts"]) == (
        "openai-backup",
        "1",
    )
    assert an.requests() == []
    (sent,) = oa.requests("gpt-backup")
    assert (sent["body"]["logprobs"], sent["body"]["seed"]) == (True, 7)

    plain = stack.chat("an-first-lenient")
    assert plain.headers["x-switchyard-target"] == "anthropic-primary", "other requests still go by priority"


def test_a_route_that_renames_nothing_still_translates_for_clients_of_the_other_api(
    stack: Stack, oa: MockProvider
) -> None:
    response = messages(stack, {"model": "same-name", **MESSAGES})

    assert response.status_code == 200, response.text
    assert response.json()["content"] == [{"type": "text", "text": "Hello from oa (same-name)"}]
    (sent,) = oa.requests("same-name")
    assert sent["path"] == "/v1/chat/completions"
    assert sent["body"]["messages"][0] == {"role": "system", "content": "Be brief."}


def test_a_prompt_of_5_mib_is_translated_end_to_end(stack: Stack, an: MockProvider) -> None:
    """The whole body goes to the ext_proc in one gRPC message over Envoy's HTTP/2 connection to it, and back."""
    prompt = "".join(f"line {i}: é ü 漢字\n" for i in range(260_000))  # 5.6 MB of UTF-8
    response = stack.chat("oa-first", messages=[{"role": "user", "content": prompt}])

    assert response.status_code == 200, response.text[:500]
    assert response.headers["x-switchyard-target"] == "anthropic-backup"
    assert response.json()["choices"][0]["message"]["content"] == "Hello from an (claude-backup)"
    (sent,) = an.requests("claude-backup")
    assert sent["body"]["messages"] == [{"role": "user", "content": prompt}]


def test_a_translated_stream_of_hundreds_of_chunks_arrives_whole(stack: Stack) -> None:
    body = {"model": "chatty", "stream": True, "stream_options": {"include_usage": True}, **CHAT}
    with stack.client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        events = list(sse_events(response))

    assert events[-1] == "[DONE]"
    chunks = [e for e in events if isinstance(e, dict)]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello from chatty (claude-chatty)"
    # 300 provider events: the first carry one character each, the rest nothing; each character its own chunk
    assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) == len(text)
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] > 0
