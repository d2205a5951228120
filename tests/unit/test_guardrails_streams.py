"""Streamed answers in each client API, guarded: what the client's SDK would assemble is masked whole, wherever
Envoy's chunks split the bytes, every event keeps its API's shape, and a block ends the stream with an error event
that never carries the matched text.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from extproc.guardrails.checks import GuardrailSet
from extproc.guardrails.masking import Masker
from extproc.guardrails.streams import guarded_stream
from extproc.translators.sse import SSEDecoder, data_event, named_event
from switchyard.config.model import Route
from switchyard.contract import WireApi
from tests.unit.provider_schemas import assert_anthropic_event, assert_openai_chunk
from tests.unit.responses_types import valid_event, valid_response

DELTAS = ["Call me on +44 20 79", "46 0958 or mail jane@exa", "mple.com. Bye!"]
MASKED = "Call me on [PHONE_1] or mail [EMAIL_1]. Bye!"
SECRET_DELTAS = ["The key is AKIAIOSF", "ODNN7EXAMPLE, keep it safe. " * 3]


def _rules(guardrails: list[dict[str, Any]]) -> GuardrailSet:
    route = Route.model_validate({"model": "m", "targets": [{"provider": "p", "model": "x"}], "guardrails": guardrails})
    return GuardrailSet(route.guardrails)


MASK = _rules([{"check": "pii", "stage": "response"}])
BLOCK = _rules([{"check": "secrets", "stage": "response"}])


def openai_stream(deltas: list[str]) -> bytes:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return data_event(
            {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]}
        )

    body = chunk({"role": "assistant", "content": ""})
    body += b"".join(chunk({"content": text}) for text in deltas)
    return body + chunk({}, "stop") + b"data: [DONE]\n\n"


def _text_delta(text: str) -> dict[str, str]:
    return {"type": "text_delta", "text": text}


def anthropic_stream(deltas: list[str]) -> bytes:
    message = {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [], "stop_reason": None,
        "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 1},
    }  # fmt: skip
    block = {"type": "text", "text": ""}
    events = [
        ("message_start", {"type": "message_start", "message": message}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}),
        ("ping", {"type": "ping"}),
        *(
            ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": _text_delta(t)})
            for t in deltas
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"output_tokens": 12}}),
        ("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    return b"".join(named_event(name, payload) for name, payload in events)


def _response(text: str | None) -> dict[str, Any]:
    content = [] if text is None else [{"type": "output_text", "text": text, "annotations": []}]
    return {
        "id": "resp_1", "object": "response", "created_at": 1, "model": "m", "status": "completed",
        "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed", "content": content}],
        "error": None, "incomplete_details": None, "instructions": None, "metadata": {}, "parallel_tool_calls": True,
        "temperature": 1.0, "tool_choice": "auto", "tools": [], "top_p": 1.0,
    }  # fmt: skip


def responses_stream(deltas: list[str]) -> bytes:
    full = "".join(deltas)
    where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {**_response(None), "status": "in_progress", "output": []}},
        *({"type": "response.output_text.delta", **where, "delta": t, "logprobs": []} for t in deltas),
        {"type": "response.output_text.done", **where, "text": full, "logprobs": []},
        {
            "type": "response.content_part.done",
            **where,
            "part": {"type": "output_text", "text": full, "annotations": []},
        },
        {"type": "response.output_item.done", "output_index": 0, "item": _response(full)["output"][0]},
        {"type": "response.completed", "response": _response(full)},
    ]
    return b"".join(named_event(e["type"], {**e, "sequence_number": n}) for n, e in enumerate(events))


STREAMS = {WireApi.OPENAI: openai_stream, WireApi.ANTHROPIC: anthropic_stream, WireApi.RESPONSES: responses_stream}


def _events(body: bytes) -> list[dict[str, Any]]:
    decoder = SSEDecoder()
    events = decoder.feed(body) + decoder.close()
    return [json.loads(event.data) for event in events if event.data != "[DONE]"]


def _visible_text(api: WireApi, events: list[dict[str, Any]]) -> str:
    """The answer's text as the client's SDK assembles it from the deltas."""
    if api is WireApi.OPENAI:
        return "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices"))
    if api is WireApi.ANTHROPIC:
        return "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")


def _assert_api_shape(api: WireApi, events: list[dict[str, Any]]) -> None:
    for event in events:
        if api is WireApi.OPENAI:
            if "error" not in event:
                assert_openai_chunk(event)
        elif api is WireApi.ANTHROPIC:
            if event["type"] not in ("ping", "error"):  # the SDK's RawMessageStreamEvent lists neither
                assert_anthropic_event(event)
        elif event["type"] == "response.completed":
            valid_response(event["response"])
        elif event["type"] != "response.created":
            valid_event(event)


def _run(api: WireApi, rules: GuardrailSet, body: bytes, split: int | None = None) -> bytes:
    stream = guarded_stream(api, rules, Masker(), window=24)
    pieces = [body] if split is None else [body[:split], body[split:]]
    return b"".join(stream.feed(piece) for piece in pieces) + stream.finish()


@pytest.mark.parametrize("api", list(STREAMS))
def test_a_number_split_over_two_deltas_reaches_the_client_masked(api: WireApi) -> None:
    out = _run(api, MASK, STREAMS[api](DELTAS))
    events = _events(out)
    assert _visible_text(api, events) == MASKED
    assert b"7946" not in out and b"jane@" not in out
    _assert_api_shape(api, events)
    if api is WireApi.RESPONSES:
        texts = [e.get("text") for e in events if e["type"] == "response.output_text.done"]
        completed = [
            e["response"]["output"][0]["content"][0]["text"] for e in events if e["type"] == "response.completed"
        ]
        assert texts == [MASKED] and completed == [MASKED]
        assert [e["sequence_number"] for e in events] == list(range(len(events)))


@pytest.mark.parametrize("api", list(STREAMS))
def test_any_chunk_boundary_gives_the_same_answer(api: WireApi) -> None:
    body = STREAMS[api](DELTAS)
    whole = _run(api, MASK, body)
    for split in range(1, len(body), 7):
        assert _run(api, MASK, body, split) == whole, split


@pytest.mark.parametrize("api", list(STREAMS))
def test_a_secret_ends_the_stream_with_an_error_event(api: WireApi) -> None:
    stream = guarded_stream(api, BLOCK, Masker(), window=24)
    out = stream.feed(STREAMS[api](SECRET_DELTAS)) + stream.finish()
    events = _events(out)
    assert b"AKIA" not in out and b"EXAMPLE" not in out
    last = events[-1]
    error = last["error"] if api is not WireApi.RESPONSES else last
    assert "secrets" in error["message"]
    assert stream.block is not None and stream.block.rule == "secrets"
    if api is WireApi.ANTHROPIC:
        assert last["type"] == "error"
    if api is WireApi.RESPONSES:
        assert last["type"] == "error" and last["code"] == "guardrail_blocked"
    assert not any(e.get("type") in ("message_stop", "response.completed") for e in events)
    _assert_api_shape(api, events)


@pytest.mark.parametrize("api", list(STREAMS))
def test_a_streamed_answer_is_held_to_its_json_schema(api: WireApi) -> None:
    rules = _rules([{"check": "json_schema", "schema": {"type": "object", "required": ["answer"]}}])
    good = _events(_run(api, rules, STREAMS[api](['{"ans', 'wer": 1}'])))
    assert _visible_text(api, good) == '{"answer": 1}'
    bad = _events(_run(api, rules, STREAMS[api](["Sure! ", "Here you go"])))
    assert "json_schema" in json.dumps(bad[-1])


def test_flagged_rules_are_counted_and_the_text_is_unchanged() -> None:
    stream = guarded_stream(WireApi.OPENAI, _rules([{"check": "pii", "stage": "response", "action": "flag"}]), Masker())
    out = stream.feed(openai_stream(DELTAS)) + stream.finish()
    assert _visible_text(WireApi.OPENAI, _events(out)) == "".join(DELTAS)
    assert stream.flagged.get("pii", 0) >= 1
