"""Tests for envoy/lua/attempt_rewrite.lua, the per-attempt rewrite Envoy runs as an upstream Lua filter.

The script runs in LuaJIT (Envoy's Lua) through lupa, loaded as one chunk as Envoy loads it, against a test
double of Envoy's stream handle (lua_envoy_double.lua). The body splice is checked against Python's json
module on tricky and on generated bodies. One test runs the script in the real Envoy, across a retry.
"""

from __future__ import annotations

import importlib
import json
import random
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from switchyard.supervisor.processes import envoy_binary, free_port
from tests.support.harness import ACTIVE_LOGS, MockProvider, stop_process, wait_for

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "envoy" / "lua" / "attempt_rewrite.lua"
DOUBLE = Path(__file__).with_name("lua_envoy_double.lua")


def _lua_module() -> Any:
    """LuaJIT 2.1 is what Envoy runs; Lua 5.1 (the same language) where lupa has no LuaJIT build."""
    try:
        return importlib.import_module("lupa.luajit21")
    except ImportError:
        return importlib.import_module("lupa.lua51")


LUA = _lua_module()


def blob(*pairs: tuple[str, str]) -> str:
    """A rewrite blob, encoded as the control plane encodes it."""
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in pairs)


@dataclass(frozen=True)
class Plan:
    paths: dict[str, str]
    set_headers: list[tuple[str, str]]
    remove: list[str]
    model: bytes | None
    length: bool
    translate: dict[str, str]


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    message: str


@dataclass(frozen=True)
class Outcome:
    """One attempt: "continue" (sent upstream), "respond" (answered by the script) or "error" (the script
    raised, so Envoy would have sent the request unrewritten)."""

    kind: str
    reply: Reply | None
    error: str | None
    logs: list[str]
    touched_after_respond: bool


class RefusedError(Exception):
    """The script refused to splice the body; the message is the one the client would get."""


def _text(value: bytes) -> str:
    return value.decode()


class LuaRequest:
    """A client request in the Envoy double: one header map across attempts, the body restored each time."""

    def __init__(self, lua: LuaRewrite, table: Any) -> None:
        self._lua = lua
        self.table = table

    def attempt(self, rewrite: str | None) -> Outcome:
        kind = _text(self._lua.double.attempt(self.table, None if rewrite is None else rewrite.encode()))
        reply = self.table.reply
        error = self.table.error
        return Outcome(
            kind=kind,
            reply=None
            if reply is None
            else Reply(int(reply.headers[b":status"]), _text(reply.headers[b"content-type"]), _text(reply.body)),
            error=None if error is None else _text(error),
            logs=[_text(line) for line in self.table.logs.values()],
            touched_after_respond=bool(self.table.touched_after_respond),
        )

    @property
    def headers(self) -> dict[str, str]:
        return {_text(k): _text(v) for k, v in self._lua.double.headers(self.table).items()}

    @property
    def body(self) -> bytes | None:
        body: bytes | None = self.table.body
        return body

    @property
    def body_reads(self) -> int:
        return int(self.table.body_reads)

    def break_with(self, fault: str) -> None:
        self.table.fault = fault.encode()

    def streams(self) -> None:
        """The client asked for a stream: json_to_metadata lifted `"stream": true` into the request's metadata."""
        self.table.metadata = self._lua.runtime.eval("{ switchyard = { stream = true } }")


class LuaRewrite:
    """The script loaded as Envoy loads it (one chunk; globals are its interface) and the Envoy double."""

    def __init__(self) -> None:
        self.runtime: Any = LUA.LuaRuntime(encoding=None, unpack_returned_tuples=True)
        self.runtime.execute(SCRIPT.read_bytes())
        self.api: Any = self.runtime.globals().switchyard_attempt_rewrite
        self.double: Any = self.runtime.execute(DOUBLE.read_bytes())

    def parse_blob(self, text: str) -> Plan | str:
        result = self.api.parse_blob(text.encode())
        if isinstance(result, tuple):
            return _text(result[1])
        return Plan(
            paths={_text(k): _text(v) for k, v in result.paths.items()},
            set_headers=[
                (_text(result.set_names[i]), _text(result.set_values[i])) for i in range(1, len(result.set_names) + 1)
            ],
            remove=[_text(result.remove[i]) for i in range(1, len(result.remove) + 1)],
            model=result.model,
            length=bool(result.length),
            translate={_text(k): _text(v) for k, v in result.translate.items()},
        )

    def splice(self, body: bytes, literal: bytes) -> bytes:
        """The spliced body; raises RefusedError with the client message when the script refuses it."""
        result = self.api.splice_model(body, literal)
        if isinstance(result, tuple):
            raise RefusedError(_text(result[1]))
        spliced: bytes = result
        return spliced

    def request(self, route: str, headers: dict[str, str], body: bytes | None) -> LuaRequest:
        table = self.runtime.table_from({k.encode(): v.encode() for k, v in headers.items()})
        return LuaRequest(self, self.double.request(route.encode(), table, body))


@pytest.fixture
def lua() -> LuaRewrite:
    return LuaRewrite()


# -- the blob --------------------------------------------------------------------------------------------------


def test_parse_blob_reads_every_member(lua: LuaRewrite) -> None:
    text = blob(
        ("path.chat", "/v1/chat/completions?api-version=2024-10-21&x=a b"),
        ("path.embeddings", "/v1/embeddings"),
        ("set.Authorization", "Bearer sk-a&b=c%d e+f"),
        ("set.anthropic-version", "2023-06-01"),
        ("remove", "api-key, X-Api-Key,,"),
        ("model", '"模型 \\u6a21\\"x"'),
        ("length", "1"),
        ("translate.messages", "client_api=anthropic&model=gpt%2D4"),
    )
    assert lua.parse_blob(text) == Plan(
        paths={"chat": "/v1/chat/completions?api-version=2024-10-21&x=a b", "embeddings": "/v1/embeddings"},
        set_headers=[("authorization", "Bearer sk-a&b=c%d e+f"), ("anthropic-version", "2023-06-01")],
        remove=["api-key", "x-api-key"],
        model='"模型 \\u6a21\\"x"'.encode(),
        length=True,
        translate={"messages": "client_api=anthropic&model=gpt%2D4"},
    )


def test_parse_blob_minimal_and_empty_remove(lua: LuaRewrite) -> None:
    assert lua.parse_blob(blob(("path.chat", "/c"), ("remove", ""))) == Plan(
        paths={"chat": "/c"}, set_headers=[], remove=[], model=None, length=False, translate={}
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "unexpected characters"),
        ("-", "malformed member"),
        ("path.chat", "malformed member"),
        ("=x", "malformed member"),
        ("path.chat=%2Fa&&remove=", "malformed member"),
        ("path.chat=%2Fa%2", "malformed member"),
        ("path.chat=%2Fa%zz", "malformed member"),
        ("path.chat=%2Fa+b", "unexpected characters"),  # `+` is never a space: quote() never writes one
        ("path.chat=%2Fa,path.chat=%2Fb", "unexpected characters"),  # two headers joined by Envoy's get()
        ("path.chat=%2Fa b", "unexpected characters"),
        ("path.chat=%2Fa&path.chat=%2Fb", "duplicate member path.chat"),
        ("path.chat=v1%2Fchat", "path.chat is not a path"),
        ("set.x=a%0Ab", "set.x has control characters"),
        ("set.=a", "unexpected member set."),
        ("colour=red", "unexpected member colour"),
        ("length=yes", "unexpected member length"),
        ("model=gpt-4", "model is not one JSON string literal"),
        ("model=%22a%22%22b%22", "model is not one JSON string literal"),
        ("model=%22a%5Cx%22", "model is not one JSON string literal"),
        ("model=%22a", "model is not one JSON string literal"),
    ],
)
def test_parse_blob_refuses_anything_unexpected(lua: LuaRewrite, text: str, problem: str) -> None:
    result = lua.parse_blob(text)
    assert isinstance(result, str) and result.startswith(problem), result


def test_plans_are_cached_and_the_cache_is_bounded(lua: LuaRewrite) -> None:
    same = lua.runtime.eval("rawequal")
    first = lua.api.plan_for(blob(("path.chat", "/0")).encode())
    assert same(lua.api.plan_for(blob(("path.chat", "/0")).encode()), first)  # the same table: parsed once
    for i in range(1, 2 * int(lua.api.CACHE_LIMIT) + 10):
        lua.api.plan_for(blob(("path.chat", f"/{i}")).encode())
        assert lua.api.cached_plans() <= lua.api.CACHE_LIMIT
    assert lua.api.plan_for(b"colour=red") == (None, b"unexpected member colour")


# -- the model splice --------------------------------------------------------------------------------------------


def assert_exact_splice(original: bytes, result: bytes, literal: bytes, client_model: str) -> None:
    """`result` is `original` with exactly one span replaced by `literal`, a span that was a JSON string
    literal of the client model; and parsed, it is the original with only the top-level model changed."""
    expected = json.loads(original)
    expected["model"] = json.loads(literal)
    assert json.loads(result) == expected
    start = result.find(literal)
    while start != -1:
        suffix = result[start + len(literal) :]
        end = len(original) - len(suffix)
        if end > start and result[:start] == original[:start] and original[end:] == suffix:
            try:
                if json.loads(original[start:end]) == client_model:
                    return
            except ValueError:
                pass
        start = result.find(literal, start + 1)
    raise AssertionError(f"not an exact splice of {literal!r} into {original[:200]!r}")


TRICKY_BODIES: dict[str, str] = {
    "plain": '{"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}',
    "compact, model last": '{"messages":[{"role":"user","content":"hi"}],"stream":false,"model":"gpt-4"}',
    "escaped value \\u002d": '{"model": "gpt\\u002d4", "n": 1}',
    "escaped value \\/": '{"model": "gpt\\/4"}',
    "escaped key \\u0065": '{"mod\\u0065l": "gpt-4", "x": {"model": "gpt-4"}}',
    "escaped key \\u006c": '{"x": 1, "mode\\u006c": "gpt-4"}',
    "fully escaped key": '{"\\u006d\\u006f\\u0064\\u0065\\u006C": "gpt-4"}',
    "nested model keys": (
        '{"tools": [{"type": "function", "function": {"name": "model", "parameters": {"model": "gpt-4"}}}],'
        ' "metadata": {"model": "gpt-4"}, "model": "gpt-4", "extra": [[{"model": "gpt-4"}]]}'
    ),
    "model text in strings": (
        '{"messages": [{"role": "user", "content": "\\"model\\": \\"gpt-4\\", model gpt-4 \\\\"}],'
        ' "user": "{\\"model\\":\\"gpt-4\\"}", "model": "gpt-4"}'
    ),
    "brackets in strings": '{"a": "}]{[", "b": ["]", {"c": "}"}], "model": "gpt-4", "d": "[[["}',
    "whitespace around the colon": '\r\n {\n\t"model"\n\t:\r\n  "gpt-4"  \n,\n"n" : 2 }\n ',
    "other value kinds": '{"a": true, "b": null, "c": -1.5e+3, "d": {}, "e": [], "model": "gpt-4", "f": 0}',
    "non-ASCII around": '{"content": "模型 😀 \\ud83d\\ude00", "model": "gpt-4", "名前": "値"}',
    "member names that start like model": '{"models": "gpt-4", "modelx": 1, "mode": 2, "model": "gpt-4"}',
}
TARGET_LITERALS = ['"gpt-4o"', '"\\u6a21\\u578b"', '"模型-2"', '""', '"a\\"b\\\\c"', '"gpt-4"']


@pytest.mark.parametrize("name", sorted(TRICKY_BODIES))
@pytest.mark.parametrize("literal", TARGET_LITERALS)
def test_splice_replaces_only_the_top_level_model(lua: LuaRewrite, name: str, literal: str) -> None:
    body = TRICKY_BODIES[name].encode()
    result = lua.splice(body, literal.encode())
    assert_exact_splice(body, result, literal.encode(), json.loads(body)["model"])


def test_splice_with_non_ascii_client_model(lua: LuaRewrite) -> None:
    body = '{"messages": [], "model": "模型", "metadata": {"model": "模型"}}'.encode()
    result = lua.splice(body, b'"gpt-4o"')
    assert result == '{"messages": [], "model": "gpt-4o", "metadata": {"model": "模型"}}'.encode()


def test_splice_returns_the_same_body_when_the_value_is_already_the_target(lua: LuaRewrite) -> None:
    body = b'{"model": "gpt-4o", "n": 1}'
    assert lua.splice(body, b'"gpt-4o"') == body
    # Same value, other spelling: the literal is written, so the provider sees the control plane's spelling.
    assert lua.splice(b'{"model": "gpt\\u002d4o"}', b'"gpt-4o"') == b'{"model": "gpt-4o"}'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"model": "gpt-4", "model": "gpt-4"}', 'more than one top-level "model" member'),
        ('{"model": "a", "x": 1, "mod\\u0065l": "gpt-4"}', 'more than one top-level "model" member'),
        ('{"model": 4}', 'top-level "model" is not a string'),
        ('{"model": null}', 'top-level "model" is not a string'),
        ('{"model": ["gpt-4"]}', 'top-level "model" is not a string'),
        ('{"x": {"model": "gpt-4"}}', 'no top-level "model" member'),
        ("{}", 'no top-level "model" member'),
        ('["model", "gpt-4"]', "not a JSON object"),
        ('"model"', "not a JSON object"),
        ("", "not a JSON object"),
        ("   ", "not a JSON object"),
        ('{"model": "gpt-4', "a string is not terminated"),
        ('{"model": "gpt-4\\"}', "a string is not terminated"),
        ('{"model": "gpt-4", "x": [1, 2}', "its brackets do not match"),
        ('{"model": "gpt-4", "x": [{"a": 1]}', "its brackets do not match"),
        ('{"model": "gpt-4", "x": [[1]', "its brackets do not match"),
        ('{"model": "gpt-4"', "it ends too early"),
        ('{"model": "gpt-4",', "it ends too early"),
        ('{"model": "gpt-4", "x": 1', "it ends too early"),
        ('{"model": "gpt-4"}}', "unexpected data at byte 19"),
        ('{"model": "gpt-4"} x', "unexpected data at byte 20"),
        ('{"model": "gpt-4" "x": 1}', "unexpected data at byte 19"),
        ('{"model" "gpt-4"}', "unexpected data at byte 10"),
        ('{model: "gpt-4"}', "unexpected data at byte 2"),
        ('{"x": tru, "model": "gpt-4"}', "unexpected data at byte 7"),
        ('{"model": "gpt-4", }', "unexpected data at byte 20"),
        ('{"mod\\x65l": "gpt-4"}', "a member name has an invalid escape"),
    ],
)
def test_splice_refuses_what_it_cannot_rewrite_exactly(lua: LuaRewrite, body: str, message: str) -> None:
    with pytest.raises(RefusedError, match=message.replace("[", "\\[")):
        lua.splice(body.encode(), b'"gpt-4o"')


EIGHT_MIB = 8 * 1024 * 1024


def _timed_splice(lua: LuaRewrite, body: bytes, literal: bytes) -> tuple[bytes, float]:
    lua.splice(body, literal)  # warm the JIT, as a running Envoy would be
    started = time.perf_counter()
    result = lua.splice(body, literal)
    return result, time.perf_counter() - started


def test_splice_of_an_8_mib_content_string(lua: LuaRewrite) -> None:
    paragraph = "lorem ipsum 模型 {[ model gpt-4 ]} " * 100 + '"model": "gpt-4"\n'
    text = paragraph * (EIGHT_MIB // len(paragraph.encode()))
    body = json.dumps({"messages": [{"role": "user", "content": text}], "model": "gpt-4"}, ensure_ascii=False)
    raw = body.encode()
    assert len(raw) > EIGHT_MIB * 0.99
    result, seconds = _timed_splice(lua, raw, b'"gpt-4o"')
    assert result == raw[: -len(b'"gpt-4"}')] + b'"gpt-4o"}'
    assert seconds < 2.0  # LuaJIT: a few ms


def test_splice_of_an_8_mib_body_of_100k_messages(lua: LuaRewrite) -> None:
    messages = [{"role": "user", "content": f'message {i}: model "gpt-4" 模型 {"x" * 40}'} for i in range(100_000)]
    body = json.dumps({"model": "gpt-4", "messages": messages, "metadata": {"model": "gpt-4"}}, ensure_ascii=False)
    raw = body.encode()
    assert len(raw) > EIGHT_MIB * 0.9
    result, seconds = _timed_splice(lua, raw, '"模型"'.encode())
    assert result == '{"model": "模型"'.encode() + raw[len(b'{"model": "gpt-4"') :]
    assert seconds < 2.0  # LuaJIT: 35-90 ms


# -- randomized differential test against Python's json ----------------------------------------------------------

ODD_TEXTS = [
    "model",
    "gpt-4",
    '"model": "gpt-4"',
    "模型",
    "😀",
    "a/b",
    "tab\tnew\nline",
    'quote" back\\slash',
    "}]{[",
    "",
    "\u2028\x00\x1f",
    ",:",
]
CLIENT_MODELS = ["gpt-4", "模型", "a/b", 'q"m', "😀", "x\\y"]
TARGETS = ["gpt-4o", "模型-2", "", 'z"', "😀/x"]


class JsonWriter:
    """Python values as JSON text spelled at random: whitespace, escapes (\\uXXXX, surrogate pairs, \\/)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def space(self) -> str:
        return self.rng.choice(["", "", " ", "\n", "\t", "\r\n  "])

    def char(self, c: str) -> str:
        rng, code = self.rng, ord(c)
        if c == '"' or c == "\\":
            return "\\" + c if rng.random() < 0.7 else f"\\u{code:04x}"
        if code < 0x20:
            short = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}
            return short.get(c, f"\\u{code:04x}") if rng.random() < 0.5 else f"\\u{code:04X}"
        if c == "/" and rng.random() < 0.5:
            return "\\/"
        if rng.random() < 0.15:
            if code > 0xFFFF:
                high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
                return f"\\u{high:04x}\\u{low:04X}"
            return f"\\u{code:04x}"
        return c

    def string(self, s: str) -> str:
        return '"' + "".join(self.char(c) for c in s) + '"'

    def value(self, v: Any) -> str:
        if isinstance(v, dict):
            members = [
                self.space() + self.string(k) + self.space() + ":" + self.space() + self.value(x) for k, x in v.items()
            ]
            return "{" + ",".join(m + self.space() for m in members) + self.space() + "}"
        if isinstance(v, list):
            return "[" + ",".join(self.space() + self.value(x) + self.space() for x in v) + self.space() + "]"
        if isinstance(v, str):
            return self.string(v)
        return json.dumps(v)

    def document(self, members: list[tuple[str, Any]]) -> str:
        parts = [self.space() + self.string(k) + self.space() + ":" + self.space() + self.value(v) for k, v in members]
        return self.space() + "{" + ",".join(p + self.space() for p in parts) + self.space() + "}" + self.space()


def random_value(rng: random.Random, depth: int) -> Any:
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return rng.choice(ODD_TEXTS) + rng.choice(ODD_TEXTS)
    if kind == 1:
        return rng.choice([0, -7, 12345678901234, 1.5, -0.25e-3])
    if kind == 2:
        return rng.choice([True, False, None])
    if kind in (3, 4, 5):
        return "".join(rng.choice(ODD_TEXTS) for _ in range(rng.randrange(4)))
    if kind in (6, 7):
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    keys = rng.sample(["model", "role", "content", "模型", 'a"b', "x/y", "tools", "models"], rng.randrange(5))
    return {k: (rng.choice(CLIENT_MODELS) if k == "model" else random_value(rng, depth + 1)) for k in keys}


@dataclass(frozen=True)
class Case:
    text: str
    client_model: str
    expected: dict[str, Any] | None  # the parsed result to expect, None when the body must be refused
    refusal: str


def random_case(rng: random.Random) -> Case:
    writer = JsonWriter(rng)
    client_model = rng.choice(CLIENT_MODELS)
    keys = rng.sample(["messages", "tools", "metadata", "temperature", "模型", "stream", "n", "model_x"], 4)
    members: list[tuple[str, Any]] = [(k, random_value(rng, 1)) for k in keys]
    members.insert(rng.randrange(len(members) + 1), ("model", client_model))
    shape = rng.random()
    if shape < 0.08:
        members.insert(rng.randrange(len(members) + 1), ("model", rng.choice([client_model, "other"])))
        return Case(writer.document(members), client_model, None, "more than one top-level")
    if shape < 0.13:
        members = [(k, 5 if k == "model" else v) for k, v in members]
        return Case(writer.document(members), client_model, None, "is not a string")
    if shape < 0.18:
        members = [(k, v) for k, v in members if k != "model"]
        return Case(writer.document(members), client_model, None, "no top-level")
    text = writer.document(members)
    if shape < 0.30:
        cut = rng.randrange(len(text.rstrip()))
        return Case(text[:cut], client_model, None, "")
    return Case(text, client_model, dict(members), "")


def test_splice_matches_python_json_on_generated_bodies(lua: LuaRewrite) -> None:
    rng = random.Random(20240611)
    started = time.monotonic()
    for _ in range(400):
        case = random_case(rng)
        target = rng.choice(TARGETS)
        literal = json.dumps(target, ensure_ascii=rng.random() < 0.5).encode()
        body = case.text.encode()
        if case.expected is None:
            with pytest.raises(RefusedError, match=case.refusal or None):
                lua.splice(body, literal)
            if not case.refusal:  # a truncated body: Python must find it broken too
                with pytest.raises(ValueError):
                    json.loads(body)
            continue
        assert json.loads(body) == case.expected, case.text
        assert_exact_splice(body, lua.splice(body, literal), literal, case.client_model)
    assert time.monotonic() - started < 10  # ~0.3 s; generous for a loaded machine


# -- the attempt, through the Envoy double -----------------------------------------------------------------------

CLIENT_BODY = '{"model": "gpt-4", "messages": [{"role": "user", "content": "模型 \\"model\\": \\"gpt-4\\""}]}'.encode()
CLIENT_HEADERS = {
    ":method": "POST",
    ":path": "/v1/chat/completions",
    ":authority": "gateway",
    "content-type": "application/json",
    "content-length": str(len(CLIENT_BODY)),
    "Authorization": "Bearer client-key",
    "x-api-key": "client-x-key",
}
PRIMARY = blob(
    ("path.chat", "/v1/chat/completions"),
    ("path.embeddings", "/v1/embeddings"),
    ("set.authorization", "Bearer sk-primary"),
    ("remove", "api-key,x-api-key"),
    ("model", '"gpt-4-turbo-2024-04-09"'),
    ("length", "1"),
)
BACKUP = blob(
    ("path.chat", "/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"),
    ("set.api-key", "azure-key"),
    ("remove", "authorization,x-api-key"),
    ("length", "1"),
)


def chat_request(
    lua: LuaRewrite, body: bytes | None = CLIENT_BODY, headers: dict[str, str] | None = None
) -> LuaRequest:
    return lua.request("chat:gpt-4", {**CLIENT_HEADERS, **(headers or {})}, body)


def test_attempt_rewrites_path_credentials_model_and_length(lua: LuaRewrite) -> None:
    request = chat_request(lua)
    outcome = request.attempt(PRIMARY)
    assert outcome.kind == "continue", outcome
    expected_body = CLIENT_BODY.replace(b'"gpt-4",', b'"gpt-4-turbo-2024-04-09",', 1)
    assert request.body == expected_body
    headers = request.headers
    assert headers[":path"] == "/v1/chat/completions"
    assert headers["authorization"] == "Bearer sk-primary"
    assert headers["content-length"] == str(len(expected_body))
    assert "x-api-key" not in headers
    assert "x-switchyard-rewrite" not in headers
    assert "x-switchyard-translate" not in headers


def test_nothing_of_an_attempt_leaks_into_the_next(lua: LuaRewrite) -> None:
    """Envoy keeps the previous attempt's header changes and restores the body: the backup must get its own."""
    request = chat_request(lua)
    assert request.attempt(PRIMARY).kind == "continue"
    assert request.headers["content-length"] != str(len(CLIENT_BODY))  # the rename changed the length
    assert request.attempt(BACKUP).kind == "continue"
    headers = request.headers
    assert request.body == CLIENT_BODY
    assert headers[":path"] == "/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"
    assert headers["api-key"] == "azure-key"
    assert "authorization" not in headers and "x-api-key" not in headers
    assert headers["content-length"] == str(len(CLIENT_BODY))
    assert "x-switchyard-rewrite" not in headers
    # ...and back: a third attempt to the primary (e.g. after a timeout of the backup) is clean too.
    assert request.attempt(PRIMARY).kind == "continue"
    assert "api-key" not in request.headers and request.headers["authorization"] == "Bearer sk-primary"


def test_translated_attempt_marks_the_request_and_leaves_the_body_alone(lua: LuaRewrite) -> None:
    translating = blob(
        ("path.chat", "/v1/messages"),
        ("set.x-api-key", "sk-ant"),
        ("set.anthropic-version", "2023-06-01"),
        ("remove", "authorization,api-key"),
        ("model", '"claude-3"'),
        ("length", "1"),
        ("translate.chat", "client_api=openai&provider_api=anthropic"),
    )
    request = chat_request(lua)
    assert request.attempt(PRIMARY).kind == "continue"
    assert request.attempt(translating).kind == "continue"
    headers = request.headers
    assert headers["x-switchyard-translate"] == "client_api=openai&provider_api=anthropic"
    assert headers[":path"] == "/v1/messages"
    assert headers["x-api-key"] == "sk-ant" and headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers
    assert request.body == CLIENT_BODY and request.body_reads == 0  # the translating filter's job
    # The next attempt, same API again: the marker is gone, the length right.
    assert request.attempt(BACKUP).kind == "continue"
    assert "x-switchyard-translate" not in request.headers
    assert request.headers["content-length"] == str(len(CLIENT_BODY))


def test_a_streamed_request_marks_its_translated_attempt_for_the_ext_proc_filter_that_streams(lua: LuaRewrite) -> None:
    translating = blob(("path.chat", "/v1/messages"), ("remove", ""), ("translate.chat", "client_api=openai"))
    request = chat_request(lua)
    request.streams()
    assert request.attempt(translating).kind == "continue"
    assert request.headers["x-switchyard-translate-stream"] == "client_api=openai"
    assert "x-switchyard-translate" not in request.headers, "one ext_proc filter per attempt"
    assert request.attempt(BACKUP).kind == "continue"
    assert "x-switchyard-translate-stream" not in request.headers


def test_a_same_api_attempt_with_body_rules_asks_the_extproc_for_its_body_only(lua: LuaRewrite) -> None:
    # Body rules need no Lua of their own: the control plane gives such a target a `rules.<endpoint>` value
    # naming the same API on both sides ("rules only"), and the ext_proc applies model and rules; its marker sends
    # the attempt to the ext_proc filter that skips the response.
    rules_only = "client_api=openai&provider_api=openai&model=o3&body_rules=%7B%22drop%22%3A%5B%22temperature%22%5D%7D"
    ruled = blob(
        ("path.chat", "/v1/chat/completions"),
        ("set.authorization", "Bearer sk-o3"),
        ("remove", "api-key,x-api-key"),
        ("model", '"o3"'),
        ("length", "1"),
        ("rules.chat", rules_only),
    )
    request = chat_request(lua)
    request.streams()
    assert request.attempt(ruled).kind == "continue"
    assert request.headers["x-switchyard-rules"] == rules_only
    assert "x-switchyard-translate" not in request.headers and "x-switchyard-translate-stream" not in request.headers
    assert request.body == CLIENT_BODY and request.body_reads == 0, "model and rules are the ext_proc's"
    # A failover to a target without rules goes native again: no marker, the Lua splices its model.
    assert request.attempt(BACKUP).kind == "continue"
    assert "x-switchyard-rules" not in request.headers


def test_a_translation_for_another_endpoint_does_not_apply(lua: LuaRewrite) -> None:
    rewrite = blob(("path.chat", "/c"), ("path.messages", "/m"), ("remove", ""), ("translate.messages", "t=1"))
    request = chat_request(lua, headers={"x-switchyard-translate": "left over"})
    assert request.attempt(rewrite).kind == "continue"
    assert "x-switchyard-translate" not in request.headers and request.headers[":path"] == "/c"


def test_length_only_does_not_copy_the_body(lua: LuaRewrite) -> None:
    request = chat_request(lua, headers={"content-length": "999"})
    assert request.attempt(BACKUP).kind == "continue"
    assert request.headers["content-length"] == str(len(CLIENT_BODY))
    assert request.body_reads == 0


def test_length_is_not_added_to_a_request_without_one(lua: LuaRewrite) -> None:
    chunked = {name: value for name, value in CLIENT_HEADERS.items() if name != "content-length"}
    request = lua.request("chat:gpt-4", chunked, CLIENT_BODY)
    assert request.attempt(BACKUP).kind == "continue"
    assert "content-length" not in request.headers


def test_unchanged_model_still_fixes_the_length(lua: LuaRewrite) -> None:
    same = blob(("path.chat", "/c"), ("remove", ""), ("model", '"gpt-4"'), ("length", "1"))
    request = chat_request(lua, headers={"content-length": "1"})
    assert request.attempt(same).kind == "continue"
    assert request.body == CLIENT_BODY and request.headers["content-length"] == str(len(CLIENT_BODY))


def test_attempt_without_body(lua: LuaRewrite) -> None:
    request = chat_request(lua, body=None)
    assert request.attempt(PRIMARY).kind == "continue"
    assert request.body is None and request.headers["authorization"] == "Bearer sk-primary"


def test_no_rewrite_answers_503_and_changes_nothing(lua: LuaRewrite) -> None:
    for missing in (None, "", "-"):
        request = chat_request(lua)
        before = request.headers
        outcome = request.attempt(missing)
        assert outcome.kind == "respond" and not outcome.touched_after_respond
        assert outcome.reply == Reply(503, "text/plain", "Switchyard has no rewrite for this target.")
        assert request.headers == {k: v for k, v in before.items() if k != "x-switchyard-rewrite"}
        assert request.body == CLIENT_BODY


def test_unreadable_rewrite_answers_503(lua: LuaRewrite) -> None:
    request = chat_request(lua)
    outcome = request.attempt("path.chat=%2Fc&colour=red")
    assert outcome.reply == Reply(503, "text/plain", "Switchyard cannot read the rewrite for this target.")
    assert request.headers["authorization"] == "Bearer client-key"


def test_target_that_cannot_serve_the_endpoint_answers_503(lua: LuaRewrite) -> None:
    request = lua.request("embeddings:gpt-4", CLIENT_HEADERS, CLIENT_BODY)
    assert request.attempt(BACKUP).reply == Reply(
        503, "text/plain", "Switchyard has no rewrite for this target: it cannot serve embeddings calls."
    )
    assert request.headers["authorization"] == "Bearer client-key"


def test_body_the_splice_refuses_answers_400(lua: LuaRewrite) -> None:
    request = chat_request(lua, body=b'{"model": "gpt-4", "model": "gpt-4"}')
    outcome = request.attempt(PRIMARY)
    assert outcome.kind == "respond" and not outcome.touched_after_respond
    assert outcome.reply == Reply(400, "text/plain", 'The request body has more than one top-level "model" member.')
    assert request.body == b'{"model": "gpt-4", "model": "gpt-4"}'


@pytest.mark.parametrize("fault", ["replace", "stream_info"])
def test_a_lua_error_answers_500_and_never_continues(lua: LuaRewrite, fault: str) -> None:
    request = chat_request(lua)
    request.break_with(fault)
    outcome = request.attempt(PRIMARY)
    assert outcome.kind == "respond", outcome
    assert outcome.reply == Reply(500, "text/plain", "Switchyard could not rewrite this request for its target.")
    assert len(outcome.logs) == 1 and "switchyard attempt rewrite failed" in outcome.logs[0]


def _reads_answer_whole(lua: LuaRewrite, headers: dict[str, str]) -> bool:
    """Whether envoy_on_response waits for the whole answer before the router sees its headers."""
    table = lua.runtime.table_from({k.encode(): v.encode() for k, v in headers.items()})
    response = lua.double.response(table, b'{"error": {"message": "down"}}')
    asked: list[bool] = []
    assert lua.double.answer(response, lambda _: asked.append(True)) == b"continue", response.error
    return bool(asked)


@pytest.mark.parametrize("status", ["400", "429", "500", "502", "503", "529"])
def test_a_small_failed_answer_is_read_whole_so_a_failover_keeps_its_connection(lua: LuaRewrite, status: str) -> None:
    assert _reads_answer_whole(lua, {":status": status, "content-length": "31"})
    limit = int(lua.api.FAILED_ANSWER_LIMIT)
    assert _reads_answer_whole(lua, {":status": status, "content-length": str(limit)})


@pytest.mark.parametrize(
    "headers",
    [
        {":status": "200", "content-length": "31"},  # a success streams through, read or not
        {":status": "204"},
        {":status": "502"},  # no declared length (chunked): never waited for
        {":status": "502", "content-length": "65537"},  # larger than an error body needs to be
        {":status": "502", "content-length": "many"},
    ],
)
def test_other_answers_pass_without_waiting(lua: LuaRewrite, headers: dict[str, str]) -> None:
    assert not _reads_answer_whole(lua, headers)


def test_the_double_kills_wrappers_across_the_body_wait(lua: LuaRewrite) -> None:
    """The script passes the tests above only because it fetches headers again after handle:body()."""
    lua.runtime.execute(
        "function envoy_on_request(handle) local headers = handle:headers(); handle:body(); headers:get('x') end"
    )
    outcome = chat_request(lua).attempt(None)
    assert outcome.kind == "error" and "object used outside of proper scope" in str(outcome.error)


# -- the real Envoy ------------------------------------------------------------------------------------------------


def envoy_config(
    listen: int, admin: int, primary: MockProvider, backup: MockProvider, rewrites: tuple[str, str]
) -> Any:
    """A static Envoy with the upstream filter chain the control plane builds: header_mutation copies the picked
    endpoint's rewrite into a header, this script applies it. Priority 1 is the backup, reached by a retry."""

    def typed(kind: str, **fields: Any) -> dict[str, Any]:
        return {"@type": f"type.googleapis.com/{kind}", **fields}

    def endpoint(priority: int, mock: MockProvider, rewrite: str) -> dict[str, Any]:
        address = {"socket_address": {"address": "127.0.0.1", "port_value": mock.port}}
        return {
            "priority": priority,
            "lb_endpoints": [
                {
                    "endpoint": {"address": address},
                    "metadata": {"filter_metadata": {"switchyard": {"rewrite": rewrite}}},
                }
            ],
        }

    header_mutation = typed(
        "envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
        mutations={
            "request_mutations": [
                {
                    "append": {
                        "header": {"key": "x-switchyard-rewrite", "value": "%UPSTREAM_METADATA(switchyard:rewrite)%"},
                        "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                    }
                }
            ]
        },
    )
    retry_policy = {
        "retry_on": "retriable-status-codes",
        "retriable_status_codes": [502],
        "num_retries": 1,
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": typed("envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"),
            }
        ],
        "host_selection_retry_max_attempts": 3,
        "retry_priority": {
            "name": "envoy.retry_priorities.previous_priorities",
            "typed_config": typed(
                "envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig", update_frequency=1
            ),
        },
    }
    route = {
        "name": "chat:gpt-4",
        "match": {"prefix": "/"},
        "route": {"cluster": "route/gpt-4", "retry_policy": retry_policy},
    }
    manager = typed(
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        stat_prefix="client",
        route_config={"name": "routes", "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [route]}]},
        http_filters=[
            {"name": "router", "typed_config": typed("envoy.extensions.filters.http.router.v3.Router")},
        ],
    )
    cluster = {
        "name": "route/gpt-4",
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {
            "cluster_name": "route/gpt-4",
            "endpoints": [endpoint(0, primary, rewrites[0]), endpoint(1, backup, rewrites[1])],
        },
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": typed(
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                explicit_http_config={"http_protocol_options": {}},
                http_filters=[
                    {"name": "rewrite-header", "typed_config": header_mutation},
                    {
                        "name": "attempt-rewrite",
                        "typed_config": typed(
                            "envoy.extensions.filters.http.lua.v3.Lua",
                            default_source_code={"inline_string": SCRIPT.read_text()},
                        ),
                    },
                    {
                        "name": "envoy.filters.http.upstream_codec",
                        "typed_config": typed("envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"),
                    },
                ],
            )
        },
    }
    socket = {"socket_address": {"address": "127.0.0.1", "port_value": listen}}
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "client",
                    "address": socket,
                    "filter_chains": [
                        {
                            "filters": [
                                {"name": "envoy.filters.network.http_connection_manager", "typed_config": manager}
                            ]
                        }
                    ],
                }
            ],
            "clusters": [cluster],
        },
    }


class Envoy:
    """The real Envoy binary on a static config, its log kept for the failure report."""

    def __init__(self, config: Any, work: Path) -> None:
        config_path = work / "envoy.json"
        config_path.write_text(json.dumps(config))
        self.log_path = work / "envoy.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        admin_port = config["admin"]["address"]["socket_address"]["port_value"]
        self.admin = f"http://127.0.0.1:{admin_port}"
        self.process = subprocess.Popen(
            [envoy_binary(), "-c", str(config_path), "--disable-hot-restart", "--concurrency", "1", "-l", "info"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        ACTIVE_LOGS.append(("envoy", self.log_path))

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"envoy exited with {self.process.returncode}")
        return httpx.get(f"{self.admin}/ready", timeout=1).status_code == 200

    def stop(self) -> None:
        stop_process(self.process)
        self._log.close()
        if ("envoy", self.log_path) in ACTIVE_LOGS:
            ACTIVE_LOGS.remove(("envoy", self.log_path))


@pytest.fixture
def envoy_with_two_targets(tmp_path: Path) -> Iterator[tuple[str, MockProvider, MockProvider]]:
    primary = MockProvider("primary", tmp_path, ("--status", "502"))
    backup: MockProvider | None = None
    envoy: Envoy | None = None
    try:
        backup = MockProvider("backup", tmp_path)
        listen = free_port()
        config = envoy_config(listen, free_port(), primary, backup, (E2E_PRIMARY, E2E_BACKUP))
        envoy = Envoy(config, tmp_path)
        wait_for(envoy.ready, 30, "envoy ready")
        yield f"http://127.0.0.1:{listen}", primary, backup
    finally:
        if envoy is not None:
            envoy.stop()
        if backup is not None:
            backup.stop()
        primary.stop()


E2E_PRIMARY = blob(
    ("path.chat", "/v1/chat/completions?tenant=primary"),
    ("set.authorization", "Bearer sk-primary"),
    ("remove", "api-key,x-api-key"),
    ("model", '"gpt-4-primary-deployment"'),
    ("length", "1"),
)
E2E_BACKUP = blob(
    ("path.chat", "/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"),
    ("set.api-key", "azure-backup-key"),
    ("remove", "authorization,x-api-key"),
    ("model", '"模型"'),
    ("length", "1"),
)


@pytest.mark.e2e
def test_real_envoy_keeps_the_failing_targets_connection_across_failovers(
    envoy_with_two_targets: tuple[str, MockProvider, MockProvider],
) -> None:
    """Envoy's router resets an attempt it retries unless its answer has ended, and on HTTP/1 that closes the
    connection. The primary's 502 carries a body, so without envoy_on_response each failover would open the
    primary a new connection: five requests, five connections."""
    url, primary, backup = envoy_with_two_targets
    body = b'{"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}'
    for _ in range(5):
        response = httpx.post(f"{url}/v1/chat/completions", content=body, timeout=10)  # a new client connection
        assert response.status_code == 200, response.text
        assert response.headers["x-mock-provider"] == "backup"
    attempts = wait_for(lambda: (found := primary.requests()) and len(found) == 5 and found, 5, "5 primary attempts")
    assert all(int(a["headers"]["content-length"]) == a["body_bytes"] for a in attempts)
    assert len({a["connection"] for a in attempts}) == 1, [a["connection"] for a in attempts]
    assert len({a["connection"] for a in backup.requests()}) == 1


@pytest.mark.e2e
def test_real_envoy_rewrites_each_attempt_for_its_target(
    envoy_with_two_targets: tuple[str, MockProvider, MockProvider],
) -> None:
    url, primary, backup = envoy_with_two_targets
    body = json.dumps(
        {
            "model": "gpt-4",
            "messages": [{"role": "user", "content": 'say "model": "gpt-4" 模型'}],
            "metadata": {"model": "gpt-4"},
        },
        ensure_ascii=False,
    ).encode()
    headers = {"content-type": "application/json", "authorization": "Bearer client-key", "x-api-key": "client-x"}
    response = httpx.post(f"{url}/v1/chat/completions", content=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["x-mock-provider"] == "backup"

    [first] = wait_for(primary.requests, 5, "the primary's attempt")
    assert first["path"] == "/v1/chat/completions" and first["query"] == {"tenant": "primary"}
    assert first["headers"]["authorization"] == "Bearer sk-primary"
    assert "x-api-key" not in first["headers"] and "api-key" not in first["headers"]
    assert first["body"] == {**json.loads(body), "model": "gpt-4-primary-deployment"}
    assert first["headers"]["content-length"] == str(first["body_bytes"])

    [second] = wait_for(backup.requests, 5, "the backup's attempt")
    assert second["path"] == "/openai/deployments/gpt4o/chat/completions"
    assert second["query"] == {"api-version": "2024-10-21"}
    assert second["headers"]["api-key"] == "azure-backup-key"
    assert "authorization" not in second["headers"] and "x-api-key" not in second["headers"]
    assert "x-switchyard-rewrite" not in second["headers"] and "x-switchyard-translate" not in second["headers"]
    assert second["body"] == {**json.loads(body), "model": "模型"}
    expected_length = len(body) - len(b'"gpt-4"') + len('"模型"'.encode())
    assert second["body_bytes"] == expected_length
    assert second["headers"]["content-length"] == str(expected_length)

    # A body the script refuses is answered by Envoy with the script's 400, not retried, never sent upstream.
    refused = httpx.post(
        f"{url}/v1/chat/completions", content=b'{"model": "gpt-4", "model": "gpt-4"}', headers=headers, timeout=10
    )
    assert refused.status_code == 400
    assert refused.text == 'The request body has more than one top-level "model" member.'
    assert len(primary.requests()) == 1 and len(backup.requests()) == 1
