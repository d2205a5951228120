"""Guardrails on live traffic, through real Envoy, control plane and ext_proc, with the official SDKs.

The mock providers record what they received, so "the provider saw it masked" and "the provider saw nothing" are
read from the provider's side. The mock answers `Hello from NAME (MODEL)`: a target whose model spells a phone
number makes an answer that carries one, split across the stream's chunks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
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

TEAM_KEY = "team-key-0123456789abcdef"
PLAIN_KEY = "plain-key-0123456789abcdef"
PHONE_MODEL = "call +1 415 555 0123 now"  # the mock's answer repeats its model
AWS_SECRET = "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def _config(port: int, oa: MockProvider, an: MockProvider) -> str:
    return f"""
listen: 127.0.0.1:{port}
providers:
  oa: {{kind: openai, base_url: "{oa.url}", api_key: sk-oa-e2e}}
  an: {{kind: anthropic, base_url: "{an.url}", api_key: sk-an-e2e}}
clients:
  team:
    keys: ["{TEAM_KEY}"]
    models: [open]
    guardrails:
      - {{check: terms, terms: [project zeus]}}
  plain:
    keys: ["{PLAIN_KEY}"]
routes:
  - model: guarded
    targets: [{{name: primary, provider: oa, model: gpt-4o}}]
    guardrails:
      - {{check: pii, action: mask}}
      - {{check: secrets, action: block}}
  - model: guarded-claude
    targets: [{{name: claude, provider: an, model: claude-sonnet-4}}]
    guardrails:
      - {{check: pii, action: mask}}
      - {{check: secrets, action: block}}
  - model: answers-checked
    targets: [{{name: phone, provider: oa, model: "{PHONE_MODEL}"}}]
    guardrails:
      - {{check: pii, kinds: [phone], stage: response}}
  - model: answers-checked-claude
    targets: [{{name: phone, provider: an, model: "{PHONE_MODEL}"}}]
    guardrails:
      - {{check: pii, kinds: [phone], stage: response}}
  - model: fallback
    health: {{consecutive_failures: 0, failure_rate: null}}
    targets:
      - {{name: first, provider: oa, model: failing}}
      - {{name: second, provider: oa, model: gpt-4o-mini}}
    guardrails:
      - {{check: pii, action: mask}}
  - model: open
    targets: [{{name: primary, provider: oa, model: gpt-4o}}]
  - model: bare
    targets: [{{name: primary, provider: oa, model: gpt-4o}}]
  - model: plugin-checked
    targets: [{{name: primary, provider: oa, model: gpt-4o}}]
    guardrails:
      - {{check: plugin, name: acme.compliance, options: {{code_names: [falcon]}}, timeout: 500ms}}
  - model: answer-blocked
    targets: [{{name: primary, provider: oa, model: gpt-4o}}]
    guardrails:
      - {{check: regex, pattern: 'Hello from', label: greeting, stage: response, action: block}}
  - model: regex-checked
    targets: [{{name: primary, provider: oa, model: gpt-4o}}]
    guardrails:
      - {{check: regex, pattern: '(a+)+$', label: nested}}
      - {{check: pii, action: mask}}
"""


oa = mock_provider_fixture("oa")
an = mock_provider_fixture("an", "--api", "anthropic")


EXAMPLE_PLUGIN = Path(__file__).parents[2] / "examples" / "guardrails" / "acme_compliance"


def _register_example_plugin(directory: Path) -> Path:
    """The example plugin importable from `directory`, with the entry point an install would register (the
    metadata of a distribution found on sys.path, as importlib.metadata reads it)."""
    shutil.copy(EXAMPLE_PLUGIN / "acme_compliance.py", directory / "acme_compliance.py")
    info = directory / "acme_compliance-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-compliance\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[switchyard.guardrails]\nacme.compliance = acme_compliance:factory\n")
    return directory


@pytest.fixture(scope="module")
def stack(oa: MockProvider, an: MockProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    plugins = _register_example_plugin(tmp_path_factory.mktemp("plugins"))
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(plugins), os.environ.get("PYTHONPATH")]))}
    with running_stack(_config(free_port(), oa, an), Path(tmp_path_factory.mktemp("stack")), env) as running:
        yield running


def _openai(stack: Stack, key: str = PLAIN_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=key, max_retries=0, timeout=20)


def _anthropic(stack: Stack, key: str = PLAIN_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stack.url, api_key=key, max_retries=0, timeout=20)


def _guard_stats(stack: Stack) -> dict[str, int]:
    """Envoy's counters of the guardrails filter's ext_proc streams."""
    stats: dict[str, int] = {}
    for line in stack.admin_get("/stats?filter=ext_proc").splitlines():
        name, _, value = line.partition(": ")
        if "guardrails" in name and value.strip().isdigit():
            stats[name.rsplit(".", 1)[-1]] = int(value)
    return stats


def _user_text(request: dict[str, Any]) -> str:
    content = request["body"]["messages"][-1]["content"]
    return content if isinstance(content, str) else " ".join(part["text"] for part in content)


PROMPT = "Mail ada@example.com or bob@example.org; card 4111 1111 1111 1111, again ada@example.com."


def test_personal_data_reaches_the_provider_masked_with_consistent_placeholders(stack: Stack, oa: MockProvider) -> None:
    oa.clear()
    answer = _openai(stack).chat.completions.create(model="guarded", messages=[{"role": "user", "content": PROMPT}])
    assert answer.choices[0].message.content
    (seen,) = oa.requests()
    assert _user_text(seen) == "Mail [EMAIL_1] or [EMAIL_2]; card [CARD_1], again [EMAIL_1]."


def test_anthropic_client_prompt_is_masked_too(stack: Stack, an: MockProvider) -> None:
    an.clear()
    _anthropic(stack).messages.create(
        model="guarded-claude",
        max_tokens=50,
        system="Reply to ada@example.com",
        messages=[{"role": "user", "content": [{"type": "text", "text": PROMPT}]}],
    )
    (seen,) = an.requests()
    assert seen["body"]["system"] == "Reply to [EMAIL_1]"
    assert _user_text(seen) == "Mail [EMAIL_1] or [EMAIL_2]; card [CARD_1], again [EMAIL_1]."


def test_an_aws_secret_is_refused_in_the_sdk_error_shape_and_never_sent(
    stack: Stack, oa: MockProvider, an: MockProvider
) -> None:
    oa.clear()
    an.clear()
    with pytest.raises(openai.BadRequestError) as refused:
        _openai(stack).chat.completions.create(
            model="guarded", messages=[{"role": "user", "content": f"deploy with {AWS_SECRET}"}]
        )
    assert "guardrail 'secrets'" in refused.value.message
    assert refused.value.code == "guardrail_blocked"
    assert "wJalrXUtnFEMI" not in str(refused.value.body)
    with pytest.raises(anthropic.BadRequestError) as refused_anthropic:
        _anthropic(stack).messages.create(
            model="guarded-claude", max_tokens=50, messages=[{"role": "user", "content": f"use {AWS_SECRET}"}]
        )
    assert refused_anthropic.value.body["type"] == "error"  # type: ignore[index]
    assert "guardrail 'secrets'" in refused_anthropic.value.message
    assert oa.requests() == [] and an.requests() == []


def test_a_streamed_answer_spelling_a_phone_number_across_chunks_reaches_the_client_masked(stack: Stack) -> None:
    chunks = [
        chunk.choices[0].delta.content or ""
        for chunk in _openai(stack).chat.completions.create(
            model="answers-checked", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        if chunk.choices
    ]
    text = "".join(chunks)
    assert text == "Hello from oa (call [PHONE_1] now)", chunks
    assert not re.search(r"555|0123", text)


def test_streamed_answers_are_masked_for_every_client_api_and_after_translation(stack: Stack) -> None:
    """The guard reads the answer as the client gets it: Anthropic's and the Responses API's events, and an
    answer the upstream ext_proc translated from another provider's API."""
    masked = "call [PHONE_1] now"
    translated = _openai(stack).chat.completions.create(
        model="answers-checked-claude", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in translated if chunk.choices)
    assert text == f"Hello from an ({masked})", text
    with _anthropic(stack).messages.stream(
        model="answers-checked", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    ) as events:
        text = "".join(events.text_stream)
    assert text == f"Hello from oa ({masked})", text
    responses = _openai(stack).responses.create(model="answers-checked", input="hi", stream=True)
    text = "".join(event.delta for event in responses if event.type == "response.output_text.delta")
    assert text == f"Hello from oa ({masked})", text


def test_a_whole_answer_is_masked_with_its_length_fixed(stack: Stack) -> None:
    response = stack.client.post(
        "/v1/chat/completions",
        json={"model": "answers-checked", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {PLAIN_KEY}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Hello from oa (call [PHONE_1] now)"


def test_a_clients_guardrails_apply_on_a_route_that_has_none(stack: Stack, oa: MockProvider) -> None:
    oa.clear()
    with pytest.raises(openai.BadRequestError) as refused:
        _openai(stack, TEAM_KEY).chat.completions.create(
            model="open", messages=[{"role": "user", "content": "status of Project Zeus?"}]
        )
    assert "guardrail 'terms'" in refused.value.message
    assert oa.requests() == []
    # Another client on the same route passes.
    _openai(stack).chat.completions.create(model="open", messages=[{"role": "user", "content": "Project Zeus?"}])
    assert len(oa.requests()) == 1


def _guard_filters_created(stack: Stack) -> int:
    """How many requests the composite filter created the guardrails ext_proc filter for."""
    stats = stack.admin_get("/stats?filter=composite.filter_delegation_success")
    return sum(int(line.partition(": ")[2]) for line in stats.splitlines() if line.strip())


def test_a_route_without_guardrails_never_reaches_the_extproc_for_them(stack: Stack) -> None:
    before = _guard_stats(stack).get("streams_started", 0)
    created = _guard_filters_created(stack)
    for _ in range(3):
        _openai(stack).chat.completions.create(model="bare", messages=[{"role": "user", "content": "hi"}])
    assert _guard_stats(stack).get("streams_started", 0) == before
    # Not even the filter exists for them (its creation was their cost), while a guarded request has one.
    assert _guard_filters_created(stack) == created
    _openai(stack).chat.completions.create(model="open", messages=[{"role": "user", "content": "hi"}])
    assert _guard_filters_created(stack) == created + 1


def test_a_fallback_does_not_run_the_request_checks_again(stack: Stack, oa: MockProvider) -> None:
    oa.set_rules([{"match": {"model": "failing"}, "status": 503}])
    oa.clear()
    try:
        before = _guard_stats(stack)
        response = _openai(stack).chat.completions.with_raw_response.create(
            model="fallback", messages=[{"role": "user", "content": "write to ada@example.com"}]
        )
        assert response.headers["x-switchyard-attempts"] == "2"
        after = _guard_stats(stack)
    finally:
        oa.set_rules([])
    first, second = oa.requests()
    assert _user_text(first) == _user_text(second) == "write to [EMAIL_1]"
    assert after["streams_started"] - before.get("streams_started", 0) == 1
    # request headers and body: the route checks no answers
    assert after["stream_msgs_sent"] - before.get("stream_msgs_sent", 0) == 2


def test_decisions_are_counted_in_metrics_and_status_without_the_matched_text(stack: Stack) -> None:
    _openai(stack).chat.completions.create(model="guarded", messages=[{"role": "user", "content": PROMPT}])
    with pytest.raises(openai.BadRequestError):
        _openai(stack).chat.completions.create(model="guarded", messages=[{"role": "user", "content": AWS_SECRET}])

    def counted() -> dict[tuple[str, str], int]:
        found = {(e["action"], e["stage"]): e["requests"] for e in stack.status()["guardrails"] if e["rule"] != "terms"}
        return found if ("block", "request") in found and ("mask", "request") in found else {}

    wait_for(counted, 10, "the guardrail decisions in the status")
    metrics = httpx.get(f"http://{stack.api}/metrics", timeout=10).text
    assert re.search(r'switchyard_guardrail_decisions_total\{[^}]*action="block"[^}]*stage="request"', metrics)
    assert re.search(r'switchyard_guardrail_decisions_total\{[^}]*action="mask"[^}]*stage="request"', metrics)
    for name in ("controlplane", "extproc", "extproc-1", "extproc-2", "envoy"):
        assert "ada@example.com" not in stack.log(name) and "wJalrXUtnFEMI" not in stack.log(name), name


def test_the_example_plugin_blocks_a_code_name_and_passes_the_rest(stack: Stack, oa: MockProvider) -> None:
    oa.clear()
    with pytest.raises(openai.BadRequestError) as refused:
        _openai(stack).chat.completions.create(
            model="plugin-checked", messages=[{"role": "user", "content": "Ship Falcon on Monday"}]
        )
    assert "guardrail 'acme.compliance'" in refused.value.message and "Falcon" not in refused.value.message
    assert oa.requests() == []
    _openai(stack).chat.completions.create(
        model="plugin-checked", messages=[{"role": "user", "content": "a falconer's hawk"}]
    )
    assert len(oa.requests()) == 1


# --- hostile inputs: each answered 4xx or passed, never a 5xx or a hang -----------------------------------------

DEADLINE_S = 20.0


def _post_raw(stack: Stack, body: bytes) -> int:
    started = time.monotonic()
    response = stack.client.post(
        "/v1/chat/completions",
        content=body,
        headers={"content-type": "application/json", "authorization": f"Bearer {PLAIN_KEY}"},
        timeout=DEADLINE_S,
    )
    assert time.monotonic() - started < DEADLINE_S
    assert response.status_code < 500, response.text[:500]
    return response.status_code


def _chat_body(model: str, content: str, **extra: Any) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": content}], **extra}).encode()


def test_a_huge_prompt_is_checked_or_refused_as_too_large(stack: Stack, oa: MockProvider) -> None:
    oa.clear()
    big = ("ada@example.com and some words " * 30_000)[:900_000]
    assert _post_raw(stack, _chat_body("guarded", big)) == 200
    assert "ada@example.com" not in _user_text(oa.requests()[-1])
    assert _post_raw(stack, _chat_body("guarded", "x" * 40_000_000)) == 413


def test_deep_nesting_is_refused_or_passed(stack: Stack) -> None:
    nested = "[" * 200_000 + "]" * 200_000
    body = b'{"model": "guarded", "messages": [{"role": "user", "content": "hi"}], "metadata": ' + nested.encode()
    _post_raw(stack, body + b"}")


def test_pathological_input_against_a_teams_regex_is_stopped_by_its_time_budget(stack: Stack) -> None:
    status = _post_raw(stack, _chat_body("regex-checked", "a" * 50_000 + "!"))
    assert status in (200, 400)


def test_non_utf8_bytes_are_refused_not_a_crash(stack: Stack) -> None:
    body = _chat_body("guarded", "hello").replace(b"hello", b"hel\xff\xfelo")
    assert 400 <= _post_raw(stack, body) < 500


def test_an_answer_a_rule_refuses_becomes_the_clients_error(stack: Stack) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        _openai(stack).chat.completions.create(model="answer-blocked", messages=[{"role": "user", "content": "hi"}])
    assert "guardrail 'greeting'" in refused.value.message and "Hello" not in refused.value.message
    with stack.client.stream(
        "POST",
        "/v1/chat/completions",
        json={"model": "answer-blocked", "messages": [{"role": "user", "content": "hi"}], "stream": True},
        headers={"authorization": f"Bearer {PLAIN_KEY}"},
    ) as response:
        events = list(sse_events(response))
    assert "Hello" not in str(events)
    assert events[-1]["error"]["code"] == "guardrail_blocked"  # type: ignore[index]


def test_the_grpcio_flavour_of_the_extproc_guards_alike(
    oa: MockProvider, an: MockProvider, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The grpc.aio servicer kept to measure against tells guard streams apart by the same metadata."""
    env = {"SWITCHYARD_EXTPROC_SERVER": "grpcio"}
    with running_stack(_config(free_port(), oa, an), Path(tmp_path_factory.mktemp("grpcio")), env) as grpcio:
        oa.clear()
        _openai(grpcio).chat.completions.create(model="guarded", messages=[{"role": "user", "content": PROMPT}])
        assert _user_text(oa.requests()[-1]) == "Mail [EMAIL_1] or [EMAIL_2]; card [CARD_1], again [EMAIL_1]."
        stream = _openai(grpcio).chat.completions.create(
            model="answers-checked", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        assert text == "Hello from oa (call [PHONE_1] now)"
