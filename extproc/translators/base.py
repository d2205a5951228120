"""The one seam between the ext_proc and API translation.

When a client speaks one LLM API and the target Envoy picked speaks another, the ext_proc hands bodies to a
`Translator` for that (client API, provider API) pair and never looks inside them itself. Each pair lives in
its own module, and `registry` finds them, so no provider-specific branch exists anywhere else. This module is the
interface only: it imports no pair.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from extproc.translators.errors import SHAPE_ERRORS, anthropic_error, openai_error, shape_problem
from extproc.translators.wire import dumps
from switchyard.contract import WireApi


class UnsupportedParameterError(Exception):
    """The target API cannot express a request parameter.

    Dropping it would silently change what the client gets back (a different sampling, no log probabilities,
    non-JSON output...), so the gateway answers 400 naming the parameter instead.
    """

    def __init__(self, param: str, reason: str) -> None:
        super().__init__(f"{param}: {reason}")
        self.param = param
        self.reason = reason


class StreamTranslator(Protocol):
    """Rewrites one streamed response, chunk by chunk, as Envoy delivers it.

    Envoy splits the body wherever the network did, so `feed` must accept any boundary (mid-line, mid-UTF-8
    character) and return only what is complete. A stream must never end looking like a success when it was
    not: a missing provider end or a gateway failure becomes an error event in the client's API.
    """

    def feed(self, chunk: bytes) -> bytes:
        """Provider SSE bytes in, client SSE bytes that can be sent now out (possibly empty)."""
        ...

    def finish(self) -> bytes:
        """The provider stream ended: flush, or emit a client-API error if it ended before its normal end."""
        ...

    def fail(self, message: str) -> bytes:
        """A gateway-side failure mid-stream: a client-API error event, after which nothing more is sent."""
        ...

    @property
    def usage(self) -> tuple[int | None, int | None]:
        """(input tokens, output tokens) seen so far, for metrics; None until the provider reports them. The
        input counts every prompt token, those read from or written to the cache included."""
        ...

    @property
    def cache_usage(self) -> tuple[int, int]:
        """(input tokens read from the prompt cache, written to it) seen so far: usage accounting prices them
        apart, and the client may not have asked for the usage that would show them in its stream."""
        ...

    @property
    def first_token_seen(self) -> bool:
        """Whether any generated content (text or a tool call) has gone to the client: time to first token."""
        ...


class Translator(Protocol):
    """Stateless translation for one (client API, provider API) pair; one instance serves every request."""

    client_api: WireApi
    provider_api: WireApi
    # Top-level request parameters whose mere presence may make `request` refuse: a route set to skip such
    # targets keeps requests carrying them on targets of the client's own API. Limits on a value alone
    # (temperature above 1) are left out: they would keep nearly every request away.
    may_refuse: frozenset[str]

    def request(self, body: dict[str, Any], target_model: str) -> dict[str, Any]:
        """Client request JSON -> provider request JSON for `target_model`; raises `UnsupportedParameterError`."""
        ...

    def provider_status(self, status: int, headers: Mapping[str, str]) -> int:
        """The status a provider response stands for: its HTTP status, unless the provider's error type says
        more than its status (Bedrock answers a model still loading with 429, an outage rather than a rate
        limit). Everything after (the client's status, the error body, Envoy's fallback, the target's health)
        goes by this one. `headers` holds only the names in contract.PROVIDER_HEADERS_READ (all Envoy hands the
        ext_proc): a translator reading another adds it there."""
        ...

    def client_status(self, provider_status: int) -> int:
        """The status the client gets for a provider status: known with the headers, before the body, so it
        is set in time for Envoy's fallback decision."""
        ...

    def response(self, status: int, body: bytes, content_type: str, client_model: str) -> tuple[int, bytes]:
        """A whole provider response, success or error at any status -> (status, body) in the client's API.

        `client_model` is the model the answer names: the target's model, the one that served (extproc/exchange.py
        passes it), as a same-API answer names it.
        """
        ...

    def stream(self, target_model: str, client_model: str, client_request: Mapping[str, Any]) -> StreamTranslator:
        """A translator for one streamed response; `client_request` carries stream options such as usage."""
        ...


@runtime_checkable
class AnswersWithRequest(Protocol):
    """A translator whose whole answers depend on the client's request as well: a Responses API response
    object repeats the request's settings (tools, tool_choice, instructions...). The ext_proc calls
    `response_to` instead of `response` for it."""

    def response_to(
        self, request: Mapping[str, Any], status: int, body: bytes, content_type: str, client_model: str
    ) -> tuple[int, bytes]: ...


_MALFORMED_ANSWER = {
    "openai": lambda message: openai_error(message, status=502),
    "anthropic": lambda message: anthropic_error(message, status=502),
}


class PairTranslator:
    """What both directions do alike with a whole response: errors get the error mapping, a success body is
    translated, and a success body of the wrong shape becomes a 502 in the client's API rather than a crash."""

    client_api: WireApi

    def provider_status(self, status: int, headers: Mapping[str, str]) -> int:
        return status

    def response(self, status: int, body: bytes, content_type: str, client_model: str) -> tuple[int, bytes]:
        if not 200 <= status < 300:
            return self._error_response(status, body, content_type)
        try:
            return status, self._success_body(body, client_model)
        except SHAPE_ERRORS as exc:
            return 502, self._malformed_body(exc)

    def _error_response(self, status: int, body: bytes, content_type: str) -> tuple[int, bytes]:
        raise NotImplementedError

    def _success_body(self, body: bytes, client_model: str) -> bytes:
        raise NotImplementedError

    def _malformed_body(self, problem: Exception) -> bytes:
        """A provider success body of the wrong shape, told to the client in its own API."""
        return dumps(_MALFORMED_ANSWER[self.client_api](shape_problem(problem)))
