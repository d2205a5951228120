"""Tests for envoy/lua/translated_response.lua, the response headers' part of a translated attempt.

The ext_proc gets no response headers message: this filter hands it the provider's headers it reads, as metadata,
and applies the client's status and headers it answers with. The script runs in LuaJIT (Envoy's Lua) through lupa
against the Envoy double (lua_envoy_double.lua); a stand-in for the ext_proc runs where the script waits for the
body, which is when Envoy's ext_proc would send the body and the metadata with it. End to end (real Envoy, real
ext_proc): tests/e2e/test_translation.py, tests/e2e/test_bedrock.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from switchyard import contract
from tests.unit.test_attempt_rewrite_lua import LUA

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "envoy" / "lua" / "translated_response.lua"
DOUBLE = Path(__file__).with_name("lua_envoy_double.lua")

ANTHROPIC_OVERLOADED = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
OPENAI_UNAVAILABLE = b'{"error":{"message":"Overloaded","type":"server_error","code":null}}'
# A provider sends many headers; the ext_proc reads three of them.
PROVIDER_HEADERS = {
    "content-type": "application/json",
    "request-id": "req_1",
    "anthropic-ratelimit-requests-remaining": "99",
    "cf-ray": "8c1",
    "retry-after": "1",
}


class Translated:
    """The script loaded as Envoy loads it, and an ext_proc stand-in that records what it was handed."""

    def __init__(self) -> None:
        self.runtime: Any = LUA.LuaRuntime(encoding=None, unpack_returned_tuples=True)
        self.runtime.execute(SCRIPT.read_bytes())
        self.double: Any = self.runtime.execute(DOUBLE.read_bytes())
        self.handed: dict[str, str] | None = None  # the provider's headers as the ext_proc found them

    def table(self, value: dict[str, Any]) -> Any:
        def lua_value(v: Any) -> Any:
            return self.table(v) if isinstance(v, dict) else v.encode() if isinstance(v, str) else v

        return self.runtime.table_from({k.encode(): lua_value(v) for k, v in value.items()})

    def answer(
        self,
        headers: dict[str, str],
        body: bytes | None,
        metadata: dict[str, Any] | None = None,
        ext_proc: Callable[[Any], None] = lambda _: None,
    ) -> tuple[str, dict[str, str], Any]:
        """Runs envoy_on_response; returns the outcome, the headers the client gets, and the response double."""
        response = self.double.response(self.table(headers), body, self.table(metadata or {}))

        def body_arrives(response: Any) -> None:
            attempt = response.metadata[contract.ATTEMPT_METADATA_NAMESPACE.encode()]
            handed = attempt[contract.ATTEMPT_RESPONSE_HEADERS_KEY.encode()] if attempt is not None else None
            self.handed = None if handed is None else {k.decode(): v.decode() for k, v in handed.items()}
            ext_proc(response)

        outcome = self.double.answer(response, body_arrives).decode()
        client = {k.decode(): v.decode() for k, v in self.double.headers(response).items()}
        return outcome, client, response

    def translate_to(self, status: str, body: bytes) -> Callable[[Any], None]:
        """The ext_proc translating a whole answer: the client's body, and its status in the metadata."""

        def translate(response: Any) -> None:
            response.body = body
            translated = self.table({contract.TRANSLATED_STATUS_KEY: status})
            response.metadata[contract.TRANSLATED_METADATA_NAMESPACE.encode()] = translated

        return translate


@pytest.fixture
def lua() -> Translated:
    return Translated()


def test_the_ext_proc_is_handed_the_provider_headers_it_reads_before_the_body_reaches_it(lua: Translated) -> None:
    headers = {":status": "529", **PROVIDER_HEADERS}
    outcome, client, _ = lua.answer(headers, ANTHROPIC_OVERLOADED, ext_proc=lua.translate_to("503", OPENAI_UNAVAILABLE))
    assert outcome == "continue"
    # Only what the translators read: a provider's score of other headers would cost a Struct field each.
    assert lua.handed == {":status": "529", "content-type": "application/json"}
    assert set(lua.handed) <= set(contract.PROVIDER_HEADERS_READ)
    # The client gets the ext_proc's status (Anthropic's 529 is OpenAI's 503: Envoy falls back on it) and length.
    assert client[":status"] == "503"
    assert client["content-type"] == "application/json"
    assert client["content-length"] == str(len(OPENAI_UNAVAILABLE))


def test_bedrock_error_types_are_handed_over(lua: Translated) -> None:
    headers = {":status": "429", "content-type": "application/json", "x-amzn-ErrorType": "ModelNotReadyException"}
    lua.answer(headers, b'{"message":"loading"}', ext_proc=lua.translate_to("503", OPENAI_UNAVAILABLE))
    assert lua.handed == {
        ":status": "429",
        "content-type": "application/json",
        "x-amzn-errortype": "ModelNotReadyException",
    }


def test_a_streamed_answer_goes_on_at_once_as_an_event_stream_with_the_headers_handed_over(lua: Translated) -> None:
    asked = {contract.TRANSLATED_METADATA_NAMESPACE: {contract.TRANSLATED_STREAM_KEY: True}}
    headers = {":status": "200", "content-type": "text/event-stream; charset=utf-8"}
    outcome, client, response = lua.answer(headers, b"event: message_start\n", asked)
    assert outcome == "continue"
    assert lua.handed is None, "a stream is not held: its chunks reach the ext_proc as they arrive"
    handed = response.metadata[contract.ATTEMPT_METADATA_NAMESPACE.encode()][
        contract.ATTEMPT_RESPONSE_HEADERS_KEY.encode()
    ]
    assert {k.decode(): v.decode() for k, v in handed.items()} == {
        ":status": "200",
        "content-type": headers["content-type"],
    }
    assert client["content-type"] == "text/event-stream"
    assert client[":status"] == "200"


def test_a_failed_stream_is_held_and_translated_whole(lua: Translated) -> None:
    asked = {contract.TRANSLATED_METADATA_NAMESPACE: {contract.TRANSLATED_STREAM_KEY: True}}
    headers = {":status": "529", "content-type": "application/json"}
    _, client, _ = lua.answer(headers, ANTHROPIC_OVERLOADED, asked, lua.translate_to("503", OPENAI_UNAVAILABLE))
    assert lua.handed == {":status": "529", "content-type": "application/json"}
    assert (client[":status"], client["content-type"]) == ("503", "application/json")


def test_an_answer_without_a_body_takes_its_status_from_the_table_sent_with_the_request(lua: Translated) -> None:
    asked = {contract.TRANSLATED_METADATA_NAMESPACE: {contract.TRANSLATED_STATUSES_KEY: {"529": "503"}}}
    _, client, _ = lua.answer({":status": "529"}, None, asked)
    assert (client[":status"], client["content-length"]) == ("503", "0")
