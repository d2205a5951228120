"""Usage in LuaJIT, as Envoy runs it: envoy/lua/stream_usage.lua reading streamed answers' usage (at any chunk
boundary) and keeping the usage-only chunk from OpenAI clients that did not ask; envoy/lua/attempt_rewrite.lua
asking OpenAI targets for `stream_options.include_usage` on streamed requests, checked against Python's json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from switchyard.contract import USAGE_KEYS
from tests.unit.test_attempt_rewrite_lua import LUA, LuaRewrite, RefusedError, blob

SCRIPT = Path(__file__).resolve().parents[2] / "envoy" / "lua" / "stream_usage.lua"

OPENAI_STREAM = (
    b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":'
    b'"say \\"prompt_tokens\\":99"},"finish_reason":null}],"usage":null}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
    b'"usage":null}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":12,'
    b'"completion_tokens":34,"total_tokens":46,"prompt_tokens_details":{"cached_tokens":7}}}\n\n'
    b"data: [DONE]\n\n"
)
ANTHROPIC_STREAM = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","content":[],"usage":'
    b'{"input_tokens":25,"cache_read_input_tokens":5,"output_tokens":1}}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta",'
    b'"text":"\\"output_tokens\\": 1000"}}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
    b'"usage":{"output_tokens":15}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


class StreamUsage:
    def __init__(self) -> None:
        self.runtime: Any = LUA.LuaRuntime(encoding=None, unpack_returned_tuples=True)
        self.runtime.execute(SCRIPT.read_bytes())
        self.api: Any = self.runtime.globals().switchyard_stream_usage

    def counts(self, chunks: list[bytes]) -> dict[str, int]:
        """What the filter records, chunk by chunk: each scan covers the previous chunk's tail and the chunk."""
        seen: dict[str, int] = {}
        tail = b""
        for chunk in chunks:
            found = self.api.counts_in(tail + chunk)
            if found is not None:
                seen.update({k.decode(): int(v) for k, v in found.items()})
            tail = chunk[-96:]
        return seen

    def without_usage_event(self, chunk: bytes, starts_clean: bool = True) -> bytes | None:
        kept: bytes | None = self.api.without_usage_event(chunk, starts_clean)
        return kept


@pytest.fixture
def usage() -> StreamUsage:
    return StreamUsage()


@pytest.fixture
def lua() -> LuaRewrite:
    return LuaRewrite()


def split_everywhere(stream: bytes) -> list[list[bytes]]:
    return [[stream[:i], stream[i:]] for i in range(1, len(stream))]


def test_openai_usage_at_any_chunk_boundary(usage: StreamUsage) -> None:
    expected = {"prompt_tokens": 12, "completion_tokens": 34, "cached_tokens": 7}
    assert usage.counts([OPENAI_STREAM]) == expected
    for chunks in split_everywhere(OPENAI_STREAM):
        assert usage.counts(chunks) == expected, chunks


def test_responses_usage_with_its_cached_tokens(usage: StreamUsage) -> None:
    completed = {
        "type": "response.completed",
        "response": {
            "id": "resp_1",
            "usage": {
                "input_tokens": 2048,
                "input_tokens_details": {"cached_tokens": 1024},
                "output_tokens": 9,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 2057,
            },
        },
    }
    stream = b"event: response.completed\ndata: " + json.dumps(completed).encode() + b"\n\n"
    expected = {"input_tokens": 2048, "cached_tokens": 1024, "output_tokens": 9}
    for chunks in [[stream], *split_everywhere(stream)]:
        assert usage.counts(chunks) == expected, chunks


def test_anthropic_usage_is_the_last_of_each_count_at_any_boundary(usage: StreamUsage) -> None:
    expected = {"input_tokens": 25, "cache_read_input_tokens": 5, "output_tokens": 15}
    for chunks in [[ANTHROPIC_STREAM], *split_everywhere(ANTHROPIC_STREAM)]:
        assert usage.counts(chunks) == expected, chunks


def test_text_that_looks_like_usage_does_not_count(usage: StreamUsage) -> None:
    text = b'data: {"choices":[{"delta":{"content":"\\"completion_tokens\\": 5, \\"prompt_tokens\\":7"}}]}\n\n'
    assert usage.counts([text]) == {}


def test_the_usage_only_event_is_removed_when_whole_in_its_chunk(usage: StreamUsage) -> None:
    kept = usage.without_usage_event(OPENAI_STREAM)
    assert kept is not None
    events = [json.loads(line[6:]) for line in kept.split(b"\n\n") if line.startswith(b"data: {")]
    assert len(events) == 2 and all(e["choices"] for e in events)
    assert kept.endswith(b"data: [DONE]\n\n")
    usage_event = OPENAI_STREAM.split(b"\n\n")[2] + b"\n\n"
    assert usage.without_usage_event(usage_event + b"data: [DONE]\n\n") == b"data: [DONE]\n\n"


def test_a_usage_event_split_across_chunks_is_left_alone(usage: StreamUsage) -> None:
    usage_event = OPENAI_STREAM.split(b"\n\n")[2] + b"\n\n"
    assert usage.without_usage_event(usage_event[:40]) is None  # its end is in the next chunk
    assert usage.without_usage_event(usage_event[40:], starts_clean=False) is None  # its start was in the last one
    assert usage.without_usage_event(b'data: {"choices":[],"note":1}\n\n') is None  # no usage: not ours to hide


# -- the rewrite asks OpenAI targets for usage -----------------------------------------------------------------


def asked(lua: LuaRewrite, body: str, model: bytes | None = None) -> Any:
    result = lua.api.rewritten_body(body.encode(), model, True)
    if isinstance(result, tuple):
        raise RefusedError(result[1].decode())
    return json.loads(result)


@pytest.mark.parametrize(
    ("body", "options"),
    [
        ('{"model": "gpt", "stream": true}', {"include_usage": True}),
        ('{"stream":true,"model":"gpt","stream_options":null}', {"include_usage": True}),
        ('{"model":"gpt","stream":true,"stream_options":{}}', {"include_usage": True}),
        ('{"model":"gpt","stream":true,"stream_options":{ }}', {"include_usage": True}),
        ('{"model":"gpt","stream":true,"stream_options":{"include_usage":false}}', {"include_usage": True}),
        (
            '{"model":"gpt","stream":true,"stream_options":{"include_obfuscation":false}}',
            {"include_usage": True, "include_obfuscation": False},
        ),
        ('{"model":"gpt","\\u0073tream":true, "messages": [{"stream": false}]}', {"include_usage": True}),
    ],
)
def test_streamed_requests_ask_for_usage(lua: LuaRewrite, body: str, options: dict[str, Any]) -> None:
    document = asked(lua, body)
    assert document["stream_options"] == options
    assert {k: v for k, v in document.items() if k != "stream_options"} == {
        k: v for k, v in json.loads(body).items() if k != "stream_options"
    }


@pytest.mark.parametrize(
    "body",
    [
        '{"model": "gpt"}',
        '{"model": "gpt", "stream": false}',
        '{"model": "gpt", "stream": true, "stream_options": {"include_usage": true}}',
        '{"model": "gpt", "stream": true, "stream_options": "odd"}',
    ],
)
def test_other_requests_are_left_byte_for_byte(lua: LuaRewrite, body: str) -> None:
    assert lua.api.rewritten_body(body.encode(), None, True) == body.encode()


def test_usage_and_model_in_one_rewrite(lua: LuaRewrite) -> None:
    document = asked(lua, '{"stream": true, "model": "gpt", "messages": []}', b'"gpt-4o"')
    assert document == {"stream": True, "model": "gpt-4o", "messages": [], "stream_options": {"include_usage": True}}


def test_duplicates_are_refused(lua: LuaRewrite) -> None:
    with pytest.raises(RefusedError, match='more than one top-level "stream"'):
        asked(lua, '{"model": "gpt", "stream": true, "stream": false}')
    with pytest.raises(RefusedError, match='more than one "include_usage"'):
        asked(lua, '{"model": "gpt", "stream": true, "stream_options": {"include_usage": 1, "include_usage": 2}}')


def test_an_attempt_reads_the_body_only_for_streams(lua: LuaRewrite) -> None:
    rewrite = blob(("path.chat", "/v1/chat/completions"), ("remove", ""), ("usage", "1"))
    plain = lua.request("chat:gpt", {"content-length": "16"}, b'{"model": "gpt"}')
    assert plain.attempt(rewrite).kind == "continue" and plain.body_reads == 0
    body = b'{"model": "gpt", "stream": true}'
    streamed = lua.request("chat:gpt", {"content-length": str(len(body))}, body)
    streamed.table.metadata = lua.runtime.table_from({b"switchyard": lua.runtime.table_from({b"stream": True})})
    assert streamed.attempt(rewrite).kind == "continue"
    assert streamed.body is not None
    assert json.loads(streamed.body)["stream_options"] == {"include_usage": True}
    assert streamed.headers["content-length"] == str(len(streamed.body))


def test_the_lua_reads_exactly_the_counts_the_answer_log_records(usage: StreamUsage) -> None:
    """The count names live twice (Python's USAGE_KEYS for JSON answers and the log tags, the Lua's COUNTS for
    streams): a count added on one side only would be dropped for streams or never logged."""
    every = ",".join(f'"{key}":{i + 1}' for i, key in enumerate(USAGE_KEYS))
    found = usage.api.counts_in(("{" + every + ',"other_tokens":9}').encode())
    assert {k.decode(): int(v) for k, v in found.items()} == {key: i + 1 for i, key in enumerate(USAGE_KEYS)}
