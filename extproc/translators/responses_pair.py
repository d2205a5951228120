"""What every translator for Responses API clients does alike with a whole answer: errors in OpenAI's error
shape (the Responses API's), a success body built with the client's request at hand (a response object
repeats the request's settings: tools, tool_choice, instructions...), and a success body of the wrong shape
as a 502 rather than a crash."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extproc.translators.errors import SHAPE_ERRORS, openai_error, shape_problem
from extproc.translators.wire import dumps
from switchyard.contract import WireApi


class ResponsesPair:
    client_api = WireApi.RESPONSES

    def provider_status(self, status: int, headers: Mapping[str, str]) -> int:
        return status

    def response(self, status: int, body: bytes, content_type: str, client_model: str) -> tuple[int, bytes]:
        return self.response_to({}, status, body, content_type, client_model)

    def response_to(
        self, request: Mapping[str, Any], status: int, body: bytes, content_type: str, client_model: str
    ) -> tuple[int, bytes]:
        """`response` for the client's `request` (see `base.AnswersWithRequest`)."""
        if not 200 <= status < 300:
            return self._error_response(status, body, content_type)
        try:
            return status, self._success_body(body, client_model, request)
        except SHAPE_ERRORS as exc:
            return 502, dumps(openai_error(shape_problem(exc), status=502))

    def _error_response(self, status: int, body: bytes, content_type: str) -> tuple[int, bytes]:
        raise NotImplementedError

    def _success_body(self, body: bytes, client_model: str, request: Mapping[str, Any]) -> bytes:
        raise NotImplementedError
