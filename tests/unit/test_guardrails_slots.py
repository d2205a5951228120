"""Every text the model reads, per client API, found and written back in place.

Bodies are typed against the official SDKs' request types (tests/unit/provider_schemas.py), so the shapes are
the providers', not ours. Round trip: upper-casing every slot must change exactly those strings and no other.
"""

from __future__ import annotations

import copy
from typing import Any

from extproc.guardrails.slots import request_slots, response_slots
from switchyard.contract import WireApi
from tests.unit.provider_schemas import assert_anthropic_request, assert_openai_request

OPENAI_CHAT: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [
        {"role": "developer", "content": "sys text"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "user part"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "args"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "tool result"},
    ],
}
RESPONSES: dict[str, Any] = {
    "model": "gpt-4o",
    "instructions": "instructions text",
    "input": [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "input text"},
                {"type": "input_image", "image_url": "https://x/y.png", "detail": "auto"},
            ],
        },
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "earlier answer", "annotations": []}],
        },
        {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": '{"q": "args"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "tool output"},
        {"type": "reasoning", "id": "r1", "summary": [{"type": "summary_text", "text": "signed reasoning"}]},
    ],
}
ANTHROPIC: dict[str, Any] = {
    "model": "claude",
    "max_tokens": 100,
    "system": [{"type": "text", "text": "system block"}],
    "messages": [
        {"role": "user", "content": "plain user"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "signed thought", "signature": "sig"},
                {"type": "text", "text": "assistant text"},
                {
                    "type": "tool_use",
                    "id": "t1",
                    "name": "lookup",
                    "input": {"q": "tool input", "n": 3, "tags": ["tag"]},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "tool result"}]},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "document text"}},
            ],
        },
    ],
}


def _texts(api: WireApi, body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(slot.role, slot.text) for slot in request_slots(api, body)]


def _upper_everything(api: WireApi, body: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    for slot in request_slots(api, changed):
        slot.replace(slot.text.upper())
    return changed


def test_openai_chat_slots() -> None:
    assert_openai_request(OPENAI_CHAT)
    assert _texts(WireApi.OPENAI, OPENAI_CHAT) == [
        ("system", "sys text"),
        ("user", "user part"),
        ("tool_call", '{"q": "args"}'),
        ("tool", "tool result"),
    ]


def test_responses_slots_leave_reasoning_alone() -> None:
    assert _texts(WireApi.RESPONSES, RESPONSES) == [
        ("system", "instructions text"),
        ("user", "input text"),
        ("assistant", "earlier answer"),
        ("tool_call", '{"q": "args"}'),
        ("tool", "tool output"),
    ]
    assert _texts(WireApi.RESPONSES, {"model": "m", "input": "just text"}) == [("user", "just text")]


def test_anthropic_slots_leave_thinking_alone() -> None:
    assert_anthropic_request(ANTHROPIC)
    assert _texts(WireApi.ANTHROPIC, ANTHROPIC) == [
        ("system", "system block"),
        ("user", "plain user"),
        ("assistant", "assistant text"),
        ("tool_call", "tool input"),
        ("tool_call", "tag"),
        ("tool", "tool result"),
        ("user", "document text"),
    ]
    assert _texts(WireApi.ANTHROPIC, {"system": "plain system", "messages": []}) == [("system", "plain system")]


def test_written_slots_change_those_strings_only() -> None:
    chat = _upper_everything(WireApi.OPENAI, OPENAI_CHAT)
    assert chat["messages"][0]["content"] == "SYS TEXT"
    assert chat["messages"][1]["content"][1] == OPENAI_CHAT["messages"][1]["content"][1]  # the image part
    assert chat["messages"][2]["tool_calls"][0]["function"] == {"name": "lookup", "arguments": '{"Q": "ARGS"}'}

    anthropic = _upper_everything(WireApi.ANTHROPIC, ANTHROPIC)
    assert anthropic["messages"][1]["content"][0] == ANTHROPIC["messages"][1]["content"][0]  # thinking untouched
    assert anthropic["messages"][1]["content"][2]["input"] == {"q": "TOOL INPUT", "n": 3, "tags": ["TAG"]}
    assert anthropic["messages"][2]["content"][1]["source"]["data"] == "DOCUMENT TEXT"

    responses = _upper_everything(WireApi.RESPONSES, RESPONSES)
    assert responses["instructions"] == "INSTRUCTIONS TEXT"
    assert responses["input"][4] == RESPONSES["input"][4]
    for api, original in (
        (WireApi.OPENAI, OPENAI_CHAT),
        (WireApi.ANTHROPIC, ANTHROPIC),
        (WireApi.RESPONSES, RESPONSES),
    ):
        # every slot of the rewritten body reads back as written, and nothing else differs
        assert [t.upper() for _, t in _texts(api, original)] == [
            t for _, t in _texts(api, _upper_everything(api, original))
        ]


def test_answer_slots_per_api() -> None:
    chat = {
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "hi",
                    "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                },
            }
        ]
    }
    anthropic = {
        "content": [
            {"type": "text", "text": "hello"},
            {"type": "tool_use", "id": "t", "name": "f", "input": {"a": "b"}},
        ]
    }
    responses = {
        "output": [
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "out", "annotations": []}],
            }
        ]
    }
    assert [(s.role, s.text) for s in response_slots(WireApi.OPENAI, chat)] == [
        ("assistant", "hi"),
        ("tool_call", "{}"),
    ]
    assert [(s.role, s.text) for s in response_slots(WireApi.ANTHROPIC, anthropic)] == [
        ("assistant", "hello"),
        ("tool_call", "b"),
    ]
    assert [(s.role, s.text) for s in response_slots(WireApi.RESPONSES, responses)] == [("assistant", "out")]


def test_malformed_bodies_have_no_slots_rather_than_errors() -> None:
    for api in (WireApi.OPENAI, WireApi.RESPONSES, WireApi.ANTHROPIC):
        for body in ({}, {"messages": "x", "input": 3, "system": 5}, {"messages": [None, 1, {"content": 7}]}):
            request_slots(api, body)
            response_slots(api, body)
