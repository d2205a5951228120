"""Responses API clients of a provider that an Anthropic pair translates to: Responses <-> Anthropic <-> provider.

As `via_anthropic.py` does for chat clients: the Anthropic messages shape is the intermediate form, a request
goes through `responses_to_anthropic` and then the provider's Anthropic pair (`anthropic_to_openai` for
chat-completions targets, `anthropic_to_bedrock`, `anthropic_to_gemini`), and answers, streams and errors come
back the same way reversed, a stream chunk by chunk. What the provider can do that the intermediate form does
not carry (structured output, reasoning effort) each pair module adds past it (`_add_past_anthropic`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extproc.translators.base import StreamTranslator, Translator
from extproc.translators.responses_pair import ResponsesPair
from extproc.translators.responses_to_anthropic import (
    MAY_REFUSE,
    ResponsesEventStream,
    translate_message,
    translate_request,
)
from extproc.translators.via_anthropic import ChainedStream, ThroughAnthropic
from extproc.translators.wire import dumps
from switchyard.contract import WireApi

JSON = dict[str, Any]


class ResponsesViaAnthropic(ThroughAnthropic, ResponsesPair):
    provider_api: WireApi

    def __init__(self, anthropic_pair: Translator) -> None:
        self._pair = anthropic_pair
        self.provider_api = anthropic_pair.provider_api
        self.may_refuse = MAY_REFUSE

    def request(self, body: dict[str, Any], target_model: str) -> dict[str, Any]:
        # Sampling parameters stay in the intermediate form: every provider pair sends them on.
        intermediate = translate_request(body, target_model, sampling=True)
        intermediate.pop("output_config", None)  # carried past it instead, in the provider's own terms
        if body.get("max_output_tokens") is None:
            del intermediate["max_tokens"]  # Anthropic needs one; the provider may run to the model's own limit
        return self._add_past_anthropic(self._pair.request(intermediate, target_model), body)

    def _add_past_anthropic(self, request: JSON, body: Mapping[str, Any]) -> JSON:
        """The provider request with what the client's `body` asks beyond the intermediate form."""
        return request

    def _success_body(self, body: bytes, client_model: str, request: Mapping[str, Any]) -> bytes:
        return dumps(translate_message(self._anthropic_message(body, client_model), client_model, request))

    def stream(self, target_model: str, client_model: str, client_request: Mapping[str, Any]) -> StreamTranslator:
        return ChainedStream(
            self._pair.stream(target_model, client_model, {"stream": True}),
            ResponsesEventStream(client_model, client_request),
        )
