"""OpenTelemetry traces from Envoy's own tracer (issue 23), into a real OTLP/gRPC receiver the test starts:
a failover from an OpenAI target (502) to an Anthropic one (translated by the ext_proc) is one trace, joined to
the client's trace, with the client span, two attempt spans (the first saying why it fell back), the ext_proc's
span, the GenAI attributes and the token counts, and no secret anywhere. Sampling reloads with the YAML.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator

import httpx
import pytest

from switchyard.supervisor.processes import free_port
from tests.support.harness import MockProvider, Stack, running_stack, wait_for
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

pytestmark = pytest.mark.e2e

CLIENT_KEY = "sk-traced-client-5f0c2b9d7e"
OPENAI_KEY = "sk-provider-openai-a41d6c"
ANTHROPIC_KEY = "sk-provider-anthropic-9e3b7f"
CLIENT_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN_ID = "b7ad6b7169203331"
PROMPT = "a prompt that must not be traced"
SERVER, CLIENT = 2, 3  # OTLP span kinds


def _config(port: int, openai: MockProvider, anthropic: MockProvider, receiver: OtlpReceiver, tracing: str) -> str:
    return f"""
listen: 127.0.0.1:{port}
tracing: {tracing.replace("OTLP", receiver.address)}
providers:
  oa: {{kind: openai, base_url: "{openai.url}", api_key: {OPENAI_KEY}}}
  an: {{kind: anthropic, base_url: "{anthropic.url}", api_key: {ANTHROPIC_KEY}}}
routes:
  - model: assistant
    targets:
      - {{name: primary, provider: oa, model: gpt-primary}}
      - {{name: claude-backup, provider: an, model: claude-backup}}
  - model: plain
    targets: [{{name: only, provider: oa, model: gpt-plain}}]
  - model: guarded
    targets: [{{name: only, provider: oa, model: gpt-plain}}]
    guardrails: [{{check: pii, action: mask}}]
clients:
  team-a: {{keys: ["{CLIENT_KEY}"]}}
"""


TRACED = '{otlp: "OTLP", sampling: 1.0, service_name: gateway-e2e}'


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    started = OtlpReceiver()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def mocks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MockProvider, MockProvider]]:
    log_dir = tmp_path_factory.mktemp("mocks")
    openai = MockProvider("trace-openai", log_dir)
    anthropic = MockProvider("trace-anthropic", log_dir, ("--api", "anthropic"))
    openai.set_rules([{"match": {"model": "gpt-primary"}, "status": 502}])
    yield openai, anthropic
    openai.stop()
    anthropic.stop()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, mocks: tuple[MockProvider, MockProvider], receiver: OtlpReceiver
) -> Iterator[Stack]:
    config = _config(free_port(), *mocks, receiver, TRACED)
    with running_stack(config, tmp_path_factory.mktemp("stack")) as running:
        yield running


def _traceparent(span_id: str = CLIENT_SPAN_ID) -> str:
    return f"00-{CLIENT_TRACE_ID}-{span_id}-01"


def _chat(stack: Stack, model: str, traceparent: str | None = None, new_connection: bool = False) -> int:
    """A chat call; on a new connection after a reload: open ones keep the listener they began on while it
    drains, tracing included."""
    headers = {"authorization": f"Bearer {CLIENT_KEY}"}
    if traceparent:
        headers["traceparent"] = traceparent
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}]}
    if new_connection:
        return httpx.post(f"{stack.url}/v1/chat/completions", json=body, headers=headers, timeout=10).status_code
    return stack.client.post("/v1/chat/completions", json=body, headers=headers).status_code


def _trace_of(receiver: OtlpReceiver, parent_span_id: str, spans_expected: int) -> list[ReceivedSpan]:
    """The spans of the client request whose client span is the child of `parent_span_id` (Envoy exports
    every 5 s)."""

    def spans() -> list[ReceivedSpan]:
        roots = receiver.spans(lambda s: s.parent_span_id == parent_span_id)
        if not roots:
            return []
        root = roots[0]
        children = receiver.spans(lambda s: s.parent_span_id == root.span_id)
        return [root, *children]

    wait_for(lambda: len(spans()) >= spans_expected, 20, f"{spans_expected} spans of the request")
    return spans()


def test_a_failover_is_one_trace_joined_to_the_client_s(
    stack: Stack, receiver: OtlpReceiver, mocks: tuple[MockProvider, MockProvider]
) -> None:
    openai, anthropic = mocks
    openai.clear()
    anthropic.clear()
    assert _chat(stack, "assistant", _traceparent()) == 200
    client_span, *children = _trace_of(receiver, CLIENT_SPAN_ID, 4)
    assert client_span.trace_id == CLIENT_TRACE_ID and client_span.kind == SERVER
    assert client_span.service == "gateway-e2e"
    assert {s.trace_id for s in children} == {CLIENT_TRACE_ID}
    attempts = sorted(
        (s for s in children if s.kind == CLIENT and s.name.startswith("router ")), key=lambda s: s.start_ns
    )
    assert [a.attributes["switchyard.target"] for a in attempts] == ["primary", "claude-backup"]
    first, second = (a.attributes for a in attempts)
    assert first["switchyard.attempts"] == "1" and second["switchyard.attempts"] == "2"
    assert first["http.status_code"] == "502" and first["error"] == "true", "why it fell back"
    assert second["retry.count"] == "1"
    assert first["gen_ai.provider.name"] == "openai" and first["gen_ai.response.model"] == "gpt-primary"
    assert second["gen_ai.provider.name"] == "anthropic" and second["gen_ai.response.model"] == "claude-backup"
    assert second["http.status_code"] == "200" and "error" not in second
    (extproc,) = [s for s in children if "ext_proc" in s.name]  # the translation of the Anthropic attempt
    assert extproc.start_ns >= attempts[1].start_ns
    top = client_span.attributes
    assert top["gen_ai.operation.name"] == "chat" and top["gen_ai.request.model"] == "assistant"
    assert top["gen_ai.response.model"] == "claude-backup" and top["gen_ai.provider.name"] == "anthropic"
    assert top["switchyard.route"] == "assistant" and top["switchyard.client"] == "team-a"
    assert top["switchyard.target"] == "claude-backup" and top["switchyard.attempts"] == "2"
    assert int(top["gen_ai.usage.input_tokens"]) > 0 and int(top["gen_ai.usage.output_tokens"]) > 0
    # Each provider got the trace onwards, from its own attempt's span.
    (sent_openai,) = openai.requests()
    (sent_anthropic,) = anthropic.requests()
    assert sent_openai["headers"]["traceparent"] == _traceparent(attempts[0].span_id)
    assert sent_anthropic["headers"]["traceparent"] == _traceparent(attempts[1].span_id)
    # Nothing secret: no key, and no prompt text, in any attribute of any span.
    text = repr([s.attributes for s in receiver.spans()])
    for secret in (CLIENT_KEY, OPENAI_KEY, ANTHROPIC_KEY, PROMPT):
        assert secret not in text


GUARDED_SPAN_ID = "c7ad6b7169203332"


def test_a_guarded_requests_span_says_what_the_rules_did_never_the_text(stack: Stack, receiver: OtlpReceiver) -> None:
    headers = {"authorization": f"Bearer {CLIENT_KEY}", "traceparent": _traceparent(GUARDED_SPAN_ID)}
    body = {"model": "guarded", "messages": [{"role": "user", "content": "mail ada@example.com"}]}
    assert stack.client.post("/v1/chat/completions", json=body, headers=headers).status_code == 200
    client_span, *_ = _trace_of(receiver, GUARDED_SPAN_ID, 2)
    assert client_span.attributes["switchyard.guardrails.request"] == "pii/pii/mask/1"
    assert "ada@example.com" not in repr([s.attributes for s in receiver.spans()])


def test_sampling_reloads_with_the_yaml_and_tracing_can_be_turned_off(
    stack: Stack, receiver: OtlpReceiver, mocks: tuple[MockProvider, MockProvider]
) -> None:
    port = int(stack.url.rsplit(":", 1)[1])
    traced = _timed(stack, 200)
    stack.write_config(_config(port, *mocks, receiver, "off"))
    wait_for(lambda: not _tracing_on(stack), 10, "tracing to be off")
    untraced = _timed(stack, 200)
    receiver.clear()
    for _ in range(5):
        assert _chat(stack, "plain", _traceparent("00f067aa0ba902b7"), new_connection=True) == 200
    time.sleep(0.1)
    print(f"\nsampling 1.0: p50 {traced:.3f} ms per request; tracing off: p50 {untraced:.3f} ms")
    stack.write_config(_config(port, *mocks, receiver, TRACED))
    wait_for(lambda: _tracing_on(stack), 10, "tracing to be back")
    assert _chat(stack, "plain", _traceparent("1111111111111111"), new_connection=True) == 200
    _trace_of(receiver, "1111111111111111", 2)
    assert not receiver.spans(lambda s: s.parent_span_id == "00f067aa0ba902b7"), "nothing traced while off"


def _tracing_on(stack: Stack) -> bool:
    """Whether the listener in force has the tracer (the one it replaces stays in the dump while it drains)."""
    dump = json.loads(stack.admin_get("/config_dump?resource=dynamic_listeners"))
    return any("opentelemetry" in json.dumps(entry.get("active_state", {})) for entry in dump["configs"])


def _timed(stack: Stack, count: int) -> float:
    """p50 in ms of `count` requests one after another on the same-API route, on a connection of their own."""
    headers = {"authorization": f"Bearer {CLIENT_KEY}"}
    body = {"model": "plain", "messages": [{"role": "user", "content": "hi"}]}
    took = []
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        for _ in range(count):
            start = time.perf_counter()
            assert client.post("/v1/chat/completions", json=body, headers=headers).status_code == 200
            took.append((time.perf_counter() - start) * 1000)
    return statistics.median(took)
