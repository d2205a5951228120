"""The Responses client -> Anthropic target translator, as `base.translator_for` hands it out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extproc.translators.errors import anthropic_response_to_openai, openai_status
from extproc.translators.responses_pair import ResponsesPair
from extproc.translators.responses_to_anthropic.request import MAY_REFUSE, translate_request
from extproc.translators.responses_to_anthropic.response import translate_message
from extproc.translators.responses_to_anthropic.stream import ResponsesEventStream
from extproc.translators.wire import dumps, loads_object
from switchyard.contract import WireApi


class ResponsesToAnthropic(ResponsesPair):
    """Client speaks OpenAI's Responses API, target speaks Anthropic messages."""

    provider_api = WireApi.ANTHROPIC
    may_refuse = MAY_REFUSE

    def request(self, body: dict[str, Any], target_model: str) -> dict[str, Any]:
        return translate_request(body, target_model)

    def client_status(self, provider_status: int) -> int:
        return openai_status(provider_status)

    def _error_response(self, status: int, body: bytes, content_type: str) -> tuple[int, bytes]:
        return anthropic_response_to_openai(status, body, content_type)

    def _success_body(self, body: bytes, client_model: str, request: Mapping[str, Any]) -> bytes:
        return dumps(translate_message(loads_object(body), client_model, request))

    def stream(self, target_model: str, client_model: str, client_request: Mapping[str, Any]) -> ResponsesEventStream:
        return ResponsesEventStream(client_model, client_request)
