"""One guarded client request: the guardrails filter's stream (controlplane/resources/guardrails.py), message by
message.

The stream carries the rules in its initial metadata (`GuardSpec`); the request headers say who the client is, and
so which rules apply (the client's own, then the route's). From there the exchange narrows what Envoy sends it
(`mode_override`): nothing more when no rule applies, the request body always, the response headers and body only
when a rule checks answers, whole (BUFFERED) or streamed (STREAMED) as the response's content type says.

Request: checked and masked in place (the masked body goes on with its content-length fixed), or refused with a
400 naming the rule, never the matched text (Envoy's local-reply mappers put it in the client API's error shape).
Answer: a whole one checked and masked (or refused), a streamed one checked as it passes (extproc/guardrails/
streams.py), with the same placeholders the request got. What the rules did goes back as dynamic metadata for the
answer log: rule names and counts only.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from typing import Any

from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as ep
from pydantic import TypeAdapter

from extproc.guardrails import Decision, GuardrailSet, Masker, RuleEvent
from extproc.guardrails.plugins import PluginNotFoundError
from extproc.guardrails.streams import GuardedStream, guarded_stream
from extproc.replies import local_error
from switchyard.config.guardrails import GuardrailAction, Guardrails
from switchyard.contract import (
    CLIENT_HEADER,
    GUARDRAIL_BLOCK_DETAILS,
    GUARDRAILS_METADATA_NAMESPACE,
    WireApi,
    decode_guard_spec,
)

log = logging.getLogger("switchyard.extproc")

_Mode = processing_mode_pb2.ProcessingMode
_RULES = TypeAdapter(Guardrails)
_UNREADABLE_DETAILS = "switchyard_guardrail_unreadable"
_UNREADABLE = "The request body is not a JSON object the guardrails can read."
_UNAVAILABLE_DETAILS = "switchyard_guardrail_unavailable"


class RulesUnavailableError(Exception):
    """The rules of a guarded request cannot be built here (a plugin not installed in this ext_proc, or one whose
    factory fails): the request is refused, closed, with this message, which names the rule and never any text."""


def _mode(request_body: int = _Mode.NONE, response_headers: int = _Mode.SKIP, response_body: int = _Mode.NONE) -> Any:
    return _Mode(
        request_header_mode=_Mode.SKIP,
        request_body_mode=request_body,
        request_trailer_mode=_Mode.SKIP,
        response_header_mode=response_headers,
        response_body_mode=response_body,
        response_trailer_mode=_Mode.SKIP,
    )


_NOTHING_MORE = _mode()
_REQUEST_ONLY = _mode(request_body=_Mode.BUFFERED)
_REQUEST_AND_ANSWER = _mode(request_body=_Mode.BUFFERED, response_headers=_Mode.SEND)
_WHOLE_ANSWER = _mode(response_body=_Mode.BUFFERED)
_STREAMED_ANSWER = _mode(response_body=_Mode.STREAMED)


@lru_cache(maxsize=1024)
def rule_set(spec_value: str, client: str) -> tuple[WireApi, GuardrailSet] | RulesUnavailableError | None:
    """The client API and the rules of a request by `client` ("" for none) on the route whose spec this is; None
    when no rule applies. Built once per (spec, client), so patterns compile and plugins load once per config."""
    spec = decode_guard_spec(spec_value)
    if spec is None:
        log.error("malformed guardrails spec; the request passes unchecked by its filter")
        return None
    own = dict(spec.clients).get(client, ())
    configs = [*own, *spec.route]
    if not configs:
        return None
    # A rule that cannot be built (a plugin not installed) is refused closed, never passed unchecked; the failure
    # is kept (cached) like a built set, so it is logged once per config, not once per request.
    try:
        return WireApi(spec.api), GuardrailSet(_RULES.validate_python(configs))
    except Exception as error:  # a team's plugin factory may raise anything
        message = f"The gateway cannot run its guardrails for this request: {_why(error)}"
        log.error("%s", message)
        return RulesUnavailableError(message)


def _why(error: Exception) -> str:
    """What an operator needs to mend it: the plugin's own message for a missing entry point, else the kind of
    error (a factory's message could quote its options)."""
    if isinstance(error, PluginNotFoundError):
        return str(error)
    return f"a rule could not be built ({type(error).__name__})"


def encode_events(decision: Decision) -> str:
    """`rule/check/action/count` per event, space-separated (rule names hold neither): never any text."""
    return " ".join(f"{e.rule}/{e.check}/{e.action}/{e.count}" for e in decision.events)


def _request_headers(response: ep.HeadersResponse | None = None, mode: Any = None) -> ep.ProcessingResponse:
    answer = ep.ProcessingResponse(request_headers=response or ep.HeadersResponse())
    if mode is not None:
        answer.mode_override.CopyFrom(mode)
    return answer


def _with_events(response: ep.ProcessingResponse, stage: str, decision: Decision) -> ep.ProcessingResponse:
    if decision.events or decision.block is not None:
        fields = response.dynamic_metadata.fields[GUARDRAILS_METADATA_NAMESPACE].struct_value.fields
        fields[stage].string_value = encode_events(decision)
    return response


def _blocked(decision: Decision, stage: str) -> ep.ProcessingResponse:
    assert decision.block is not None
    response = local_error(400, decision.block.message, GUARDRAIL_BLOCK_DETAILS)
    return _with_events(response, stage, decision)


def _replaced_body(document: dict[str, Any], kind: str) -> ep.ProcessingResponse:
    body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    common = ep.CommonResponse(body_mutation=ep.BodyMutation(body=body))
    return ep.ProcessingResponse(**{kind: ep.BodyResponse(response=common)})


# A masked body is longer or shorter than the one its content-length counted, and Envoy (1.40) refuses a body
# mutation that disagrees with it, while a content-length set with the body is not applied (measured: a 500,
# "mismatch between content length and the length of the mutated body"). So the headers go without it, where
# a mask may change the body, and Envoy frames the body it sends (chunked, or its own length).
_WITHOUT_LENGTH = ep.HeadersResponse(
    response=ep.CommonResponse(header_mutation=ep.HeaderMutation(remove_headers=["content-length"]))
)


def _parsed(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except ValueError:  # invalid JSON or not UTF-8
        return None
    except RecursionError:  # nesting deeper than Python's parser goes
        return None
    return document if isinstance(document, dict) else None


class GuardExchange:
    """The messages of one guarded client request, answered in turn; `finished` once nothing more will come."""

    def __init__(self, spec_value: str) -> None:
        self._spec_value = spec_value
        self._api = WireApi.OPENAI
        self._rules: GuardrailSet | None = None
        self._masker = Masker()
        self._stream: GuardedStream | None = None
        self._whole = bytearray()
        self.finished = False
        self._checks_answers = False

    async def answer(self, request: ep.ProcessingRequest) -> ep.ProcessingResponse:
        kind = request.WhichOneof("request")
        if kind == "request_headers":
            return self._on_request_headers(request.request_headers)
        if kind == "request_body":
            return await self._on_request_body(request.request_body)
        if kind == "response_headers":
            return self._on_response_headers(request.response_headers)
        if kind == "response_body":
            return await self._on_response_body(request.response_body)
        log.debug("unexpected guardrails message %s", kind)
        return _PASS_THROUGH.get(kind or "", _PASS_THROUGH["request_headers"])

    def _on_request_headers(self, headers: ep.HttpHeaders) -> ep.ProcessingResponse:
        client = next(
            (
                (h.raw_value.decode("latin-1") if h.raw_value else h.value)
                for h in headers.headers.headers
                if h.key == CLIENT_HEADER
            ),
            "",
        )
        found = None if headers.end_of_stream else rule_set(self._spec_value, client)
        if found is None:
            self.finished = True
            return _request_headers(mode=_NOTHING_MORE)
        if isinstance(found, RulesUnavailableError):
            self.finished = True
            return local_error(500, str(found), _UNAVAILABLE_DETAILS)
        self._api, self._rules = found
        self._checks_answers = any(rule.stage.on_response for rule in self._rules.rules)
        masks = any(rule.stage.on_request and rule.action is GuardrailAction.MASK for rule in self._rules.rules)
        mode = _REQUEST_AND_ANSWER if self._checks_answers else _REQUEST_ONLY
        return _request_headers(_WITHOUT_LENGTH if masks else None, mode)

    async def _on_request_body(self, body: ep.HttpBody) -> ep.ProcessingResponse:
        assert self._rules is not None
        self.finished = not self._checks_answers
        document = _parsed(body.body)
        if document is None:
            self.finished = True
            return local_error(400, _UNREADABLE, _UNREADABLE_DETAILS)
        decision = await self._rules.check_request(self._api, document, self._masker)
        if decision.block is not None:
            self.finished = True
            return _blocked(decision, "request")
        response = _replaced_body(document, "request_body") if decision.changed else _PASS_THROUGH["request_body"]
        return _with_events(_copy(response), "request", decision)

    def _on_response_headers(self, headers: ep.HttpHeaders) -> ep.ProcessingResponse:
        values = {h.key: (h.raw_value.decode("latin-1") if h.raw_value else h.value) for h in headers.headers.headers}
        status = int(values.get(":status", "0") or 0)
        answer = ep.ProcessingResponse(response_headers=ep.HeadersResponse())
        if headers.end_of_stream or not 200 <= status < 300:
            self.finished = True  # no answer to check: an error passes as the provider (or Envoy) made it
            answer.mode_override.CopyFrom(_NOTHING_MORE)
        elif values.get("content-type", "").startswith("text/event-stream"):
            assert self._rules is not None
            self._stream = guarded_stream(self._api, self._rules, self._masker)
            answer.mode_override.CopyFrom(_STREAMED_ANSWER)
        else:
            answer.response_headers.CopyFrom(_WITHOUT_LENGTH)
            answer.mode_override.CopyFrom(_WHOLE_ANSWER)
        return answer

    async def _on_response_body(self, body: ep.HttpBody) -> ep.ProcessingResponse:
        assert self._rules is not None
        self.finished = body.end_of_stream
        if self._stream is not None:
            return self._on_stream_chunk(self._stream, body)
        self._whole.extend(body.body)
        if not body.end_of_stream:
            return _PASS_THROUGH["response_body"]
        document = _parsed(bytes(self._whole))
        if document is None:
            return _PASS_THROUGH["response_body"]  # not JSON (a provider's odd answer): no text the rules know
        decision = await self._rules.check_response(self._api, document, self._masker)
        if decision.block is not None:
            return _blocked(decision, "response")
        response = _replaced_body(document, "response_body") if decision.changed else _PASS_THROUGH["response_body"]
        return _with_events(_copy(response), "response", decision)

    def _on_stream_chunk(self, stream: GuardedStream, body: ep.HttpBody) -> ep.ProcessingResponse:
        out = stream.feed(body.body)
        if body.end_of_stream:
            out += stream.finish()
        common = ep.CommonResponse(body_mutation=ep.BodyMutation(body=out))
        response = ep.ProcessingResponse(response_body=ep.BodyResponse(response=common))
        if body.end_of_stream or stream.block is not None:
            decision = Decision(block=stream.block)
            rules = {rule.name: rule for rule in self._rules.rules} if self._rules is not None else {}
            for name, count in stream.flagged.items():
                rule = rules.get(name)
                if rule is not None:
                    decision.events.append(RuleEvent(name, rule.check, str(rule.action), count))
            if stream.block is not None:
                decision.events.append(RuleEvent(stream.block.rule, stream.block.check, "block", 1))
            _with_events(response, "response", decision)
        return response


def _copy(response: ep.ProcessingResponse) -> ep.ProcessingResponse:
    """A fresh message (the pass-through answers are shared and must not collect metadata)."""
    copy = ep.ProcessingResponse()
    copy.CopyFrom(response)
    return copy


_PASS_THROUGH = {
    "request_headers": ep.ProcessingResponse(request_headers=ep.HeadersResponse()),
    "request_body": ep.ProcessingResponse(request_body=ep.BodyResponse()),
    "request_trailers": ep.ProcessingResponse(request_trailers=ep.TrailersResponse()),
    "response_headers": ep.ProcessingResponse(response_headers=ep.HeadersResponse()),
    "response_body": ep.ProcessingResponse(response_body=ep.BodyResponse()),
    "response_trailers": ep.ProcessingResponse(response_trailers=ep.TrailersResponse()),
}
