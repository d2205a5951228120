"""OpenAI clients of a provider that only an Anthropic pair translates to: OpenAI <-> Anthropic <-> provider.

The Anthropic messages shape is the intermediate form. A request goes through `openai_to_anthropic` and then
the provider's Anthropic pair; answers, streams and errors come back the same way reversed, a stream chunk by
chunk with nothing held back. A pair module built on this says only what its provider can do that Anthropic
cannot (`_past_anthropic`, `_add_past_anthropic`), so those parameters are carried past the intermediate form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extproc.translators.base import PairTranslator, StreamTranslator, Translator
from extproc.translators.errors import (
    MalformedResponseError,
    anthropic_response_to_openai,
    openai_status,
)
from extproc.translators.openai_to_anthropic import OpenAIChunkStream, translate_message
from extproc.translators.openai_to_anthropic import translate_request as openai_to_anthropic_request
from extproc.translators.openai_to_anthropic.request import UNSUPPORTED
from extproc.translators.wire import dumps, loads_object
from switchyard.contract import WireApi

JSON = dict[str, Any]


class ThroughAnthropic:
    """What every chain through the Anthropic form does alike, whatever the client's OpenAI API: the provider's
    Anthropic pair judges statuses, errors come back through Anthropic's error shape into OpenAI's, and a success
    body is the pair's Anthropic message, which the chain then turns into the client's answer."""

    _pair: Translator

    def provider_status(self, status: int, headers: Mapping[str, str]) -> int:
        return self._pair.provider_status(status, headers)

    def client_status(self, provider_status: int) -> int:
        return openai_status(self._pair.client_status(provider_status))

    def _error_response(self, status: int, body: bytes, content_type: str) -> tuple[int, bytes]:
        status, anthropic_body = self._pair.response(status, body, content_type, "")
        return anthropic_response_to_openai(status, anthropic_body, "application/json")

    def _anthropic_message(self, body: bytes, client_model: str) -> JSON:
        status, anthropic_body = self._pair.response(200, body, "application/json", client_model)
        message = loads_object(anthropic_body)
        if status != 200 or message is None:  # the pair found the body malformed: say what it said
            error = (message or {}).get("error") or {}
            raise MalformedResponseError(str(error.get("message") or "upstream answered with a malformed body"))
        return message


class ViaAnthropic(ThroughAnthropic, PairTranslator):
    client_api = WireApi.OPENAI
    provider_api: WireApi
    # parameters the provider honours although Anthropic does not: kept out of the intermediate form
    _past_anthropic: tuple[str, ...] = ()

    def __init__(self, anthropic_pair: Translator) -> None:
        self._pair = anthropic_pair
        self.provider_api = anthropic_pair.provider_api
        self.may_refuse = frozenset(UNSUPPORTED) - set(self._past_anthropic)

    def request(self, body: dict[str, Any], target_model: str) -> dict[str, Any]:
        passed = {name: body[name] for name in self._past_anthropic if body.get(name) is not None}
        rest = {name: value for name, value in body.items() if name not in self._past_anthropic}
        intermediate = openai_to_anthropic_request(rest, target_model)
        if body.get("max_tokens") is None and body.get("max_completion_tokens") is None:
            del intermediate["max_tokens"]  # Anthropic needs one; the provider may run to the model's own limit
        return self._add_past_anthropic(self._pair.request(intermediate, target_model), passed)

    def _add_past_anthropic(self, request: JSON, passed: JSON) -> JSON:
        return request

    def _success_body(self, body: bytes, client_model: str) -> bytes:
        return dumps(translate_message(self._anthropic_message(body, client_model), client_model))

    def stream(self, target_model: str, client_model: str, client_request: Mapping[str, Any]) -> StreamTranslator:
        options = client_request.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return ChainedStream(
            self._pair.stream(target_model, client_model, {"stream": True}),
            OpenAIChunkStream(client_model, include_usage),
        )


class ChainedStream:
    """Provider stream -> Anthropic events -> the client's events (OpenAI chunks, Responses events), chunk by
    chunk: nothing is held back on the way."""

    def __init__(self, inner: StreamTranslator, outer: StreamTranslator) -> None:
        self._inner = inner
        self._outer = outer

    def feed(self, chunk: bytes) -> bytes:
        return self._outer.feed(self._inner.feed(chunk))

    def finish(self) -> bytes:
        return self._outer.feed(self._inner.finish()) + self._outer.finish()

    def fail(self, message: str) -> bytes:
        self._inner.fail(message)
        return self._outer.fail(message)

    @property
    def usage(self) -> tuple[int | None, int | None]:
        return self._inner.usage

    @property
    def cache_usage(self) -> tuple[int, int]:
        return self._inner.cache_usage

    @property
    def first_token_seen(self) -> bool:
        return self._outer.first_token_seen
