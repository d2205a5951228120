"""An attempt whose target speaks another API than the client: the request, and the response on its way
back, pass through a translator (extproc/translators/), then the target's body rules, and for providers that
want it a SigV4 signature over the final body (extproc/sigv4.py). An attempt to a target of the client's own
API with body rules only has its request body rewritten (`RulesExchange`).

Envoy has already rewritten the path and credentials for the target (envoy/lua/attempt_rewrite.lua); what is
left is the body both ways. Each gRPC message costs more than the translation itself, so Envoy sends this
ext_proc the request headers, the whole request body, and the response body, but not the response headers
(controlplane/resources/upstream_filters.py): those come as metadata with the response body. Whether the answer
streams is known from the request: a stream's chunks are translated as they arrive, a whole answer comes in one
message. A whole answer's status and type cannot be changed from here without a headers message: the status goes
back as metadata, which envoy/lua/translated_response.lua applies before Envoy decides on a fallback, so the
fallback goes by the client's status.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, cast

from envoy.service.ext_proc.v3 import external_processor_pb2 as ep
from google.protobuf import json_format

from extproc import body_rules, sigv4
from extproc.answer_bytes import REQUEST_BODY, RESPONSE_BODY, body_answer, set_header
from extproc.replies import local_error
from extproc.translators import StreamTranslator, Translator, UnsupportedParameterError, wire
from extproc.translators.base import AnswersWithRequest
from switchyard.contract import (
    ATTEMPT_METADATA_NAMESPACE,
    ATTEMPT_RESPONSE_HEADERS_KEY,
    RULES_HEADER,
    STREAM_METADATA_NAMESPACE,
    TRANSLATE_HEADER,
    TRANSLATE_STREAM_HEADER,
    TRANSLATED_METADATA_NAMESPACE,
    TRANSLATED_STATUS_KEY,
    TRANSLATED_STATUSES_KEY,
    TRANSLATED_STREAM_KEY,
    TRANSLATED_STREAM_MODE,
    TranslationRequest,
    decode_body_rules,
)


def _headers_answer(marker: str, mode_override: dict[str, str] | None = None) -> bytes:
    """The answer to an attempt's request headers: the marker that brought it here removed, for it must not travel
    on to the provider, and, for a streamed request, the answer's chunks asked for (its filter sends answers whole
    unless told otherwise here: resources/upstream_filters.py)."""
    answer = ep.ProcessingResponse(
        request_headers=ep.HeadersResponse(
            response=ep.CommonResponse(header_mutation=ep.HeaderMutation(remove_headers=[marker]))
        )
    )
    if mode_override is not None:
        json_format.ParseDict(mode_override, answer.mode_override)
    serialized: bytes = answer.SerializeToString()
    return serialized


# By the header that carried the attempt's marker.
_HEADERS_ANSWERS: dict[str, bytes] = {
    RULES_HEADER: _headers_answer(RULES_HEADER),
    TRANSLATE_HEADER: _headers_answer(TRANSLATE_HEADER),
    TRANSLATE_STREAM_HEADER: _headers_answer(TRANSLATE_STREAM_HEADER, TRANSLATED_STREAM_MODE),
}


# The pseudo-headers a signature covers: the server reads them in the same pass over Envoy's headers as the
# marker (extproc/server.py).
def _refuse(message: str) -> bytes:
    answer: bytes = local_error(400, message, "switchyard_translation").SerializeToString()
    return answer


# The translated request's own headers: JSON, and uncompressed answers (the translator reads the provider's bytes).
_TRANSLATED_HEADERS = set_header("content-type", b"application/json") + set_header("accept-encoding", b"identity")


def _body_response(
    new_body: bytes,
    translator: Translator | None,
    path: str = "",
    signature: Mapping[str, str] | None = None,
    streaming: bool = False,
) -> bytes:
    """The request body the provider gets, with the headers that must match it (its path, if another, and
    the signature over it); for a translated attempt, in the metadata for envoy/lua/translated_response.lua,
    whether the answer streams and which statuses change (written on every attempt: the metadata belongs to the
    client request and outlives the attempt)."""
    headers = set_header("content-length", str(len(new_body)).encode())
    if path:
        headers += set_header(":path", path.encode())
    for name, value in (signature or {}).items():
        headers += set_header(name, value.encode())
    if translator is None:
        return body_answer(REQUEST_BODY, new_body, headers)
    return body_answer(REQUEST_BODY, new_body, headers + _TRANSLATED_HEADERS) + _request_metadata(translator, streaming)


_REQUEST_METADATA: dict[tuple[int, bool], bytes] = {}


def _request_metadata(translator: Translator, streaming: bool) -> bytes:
    """The metadata part of a translated request body's answer: whether the answer streams, no status yet, and
    the error statuses a client gets as another by the provider's status alone (what
    envoy/lua/translated_response.lua applies to an answer without a body, which never reaches the ext_proc).
    Worked out once per translator (one per API pair, for the life of the process: translators/registry.py)."""
    key = (id(translator), streaming)
    cached = _REQUEST_METADATA.get(key)
    if cached is None:
        response = ep.ProcessingResponse()
        fields = response.dynamic_metadata.fields[TRANSLATED_METADATA_NAMESPACE].struct_value.fields
        fields[TRANSLATED_STREAM_KEY].bool_value = streaming
        fields[TRANSLATED_STATUS_KEY].string_value = ""
        statuses = fields[TRANSLATED_STATUSES_KEY].struct_value
        statuses.SetInParent()
        for status in range(400, 600):
            client = translator.client_status(translator.provider_status(status, {}))
            if client != status:
                statuses.fields[str(status)].string_value = str(client)
        cached = _REQUEST_METADATA[key] = response.SerializeToString()
    return cached


def _answer_metadata(status: str | None, first: bool) -> bytes:
    """The metadata part of a response body's answer: a whole answer's client status, for
    envoy/lua/translated_response.lua to apply; with the first chunk, the provider's headers blanked once read
    (they need not stay in the request's metadata: Envoy's logs carry it)."""
    key = (status, first)
    cached = _ANSWER_METADATA.get(key)
    if cached is None:
        response = ep.ProcessingResponse()
        if status is not None:
            translated = response.dynamic_metadata.fields[TRANSLATED_METADATA_NAMESPACE].struct_value
            translated.fields[TRANSLATED_STATUS_KEY].string_value = status
        if first:
            attempt = response.dynamic_metadata.fields[ATTEMPT_METADATA_NAMESPACE].struct_value
            attempt.fields[ATTEMPT_RESPONSE_HEADERS_KEY].string_value = ""
        cached = _ANSWER_METADATA[key] = response.SerializeToString()
    return cached


_ANSWER_METADATA: dict[tuple[str | None, bool], bytes] = {}


def _parse_body(body: bytes) -> dict[str, Any] | bytes:
    """The request JSON object, or the 400 to answer instead."""
    try:
        document = wire.loads(body)
    except ValueError:
        return _refuse("The request body is not valid JSON.")
    if not isinstance(document, dict):
        return _refuse("The request body must be a JSON object.")
    return document


def _dumps(document: dict[str, Any]) -> bytes:
    return wire.dumps(document)


def ask_for_usage(document: dict[str, Any]) -> None:
    """A streamed OpenAI request asks for its usage (as the Lua rewrite does on attempts without body rules):
    the stream then ends with it, which usage accounting reads (envoy/lua/stream_usage.lua)."""
    options = document.get("stream_options")
    if options is None:
        document["stream_options"] = {"include_usage": True}
    elif isinstance(options, dict):
        options["include_usage"] = True


class RulesExchange:
    """A same-API attempt to a target with body rules: the body gets the target's model and its rules, and
    the response goes back untouched, without passing through here (its ext_proc filter skips the response)."""

    needs_provider_headers = False

    def __init__(self, request: TranslationRequest) -> None:
        self.request = request
        self.rules = decode_body_rules(request.body_rules)
        self.finished = False

    def on_request_headers(self, signed: Mapping[str, str], marker: str) -> bytes:
        return _HEADERS_ANSWERS[marker]

    def on_request_body(self, body: bytes) -> bytes:
        self.finished = True  # nothing more comes: the response skips this ext_proc
        document = _parse_body(body)
        if isinstance(document, bytes):
            return document
        # The Lua rewrite leaves the model to whoever changes the body after it: this exchange.
        document["model"] = self.request.model
        if self.request.provider_api == "openai" and document.get("stream") is True:
            ask_for_usage(document)
        return _body_response(_dumps(body_rules.apply(self.rules, document)), None)

    def on_response_body(self, body: ep.HttpBody, provider_headers: Mapping[str, str]) -> bytes:
        return _RESPONSE_BODY_UNCHANGED


_RESPONSE_BODY_UNCHANGED: bytes = ep.ProcessingResponse(response_body=ep.BodyResponse()).SerializeToString()
_ANSWERS_WITH_REQUEST: dict[type, bool] = {}


def _answers_with_request(translator: Translator) -> bool:
    """Whether the translator's whole answers need the client's request: asked once per translator class, as a
    check against a runtime Protocol costs about 20 us."""
    kind = type(translator)
    answers = _ANSWERS_WITH_REQUEST.get(kind)
    if answers is None:
        answers = _ANSWERS_WITH_REQUEST[kind] = isinstance(translator, AnswersWithRequest)
    return answers


class TranslatedExchange:
    def __init__(self, request: TranslationRequest, translator: Translator) -> None:
        self.request = request
        self.translator = translator
        self.rules = decode_body_rules(request.body_rules)
        self.finished = False
        self.streaming = False
        self.client_request: Mapping[str, Any] = {}
        self.status = 0
        self.content_type = ""
        self.stream: StreamTranslator | None = None
        self._whole = bytearray()
        self._sent_at = 0.0
        self._first_token_at = 0.0
        self._authority = ""
        self._path = ""
        self.needs_provider_headers = True  # until the first chunk of the answer

    @property
    def _answer_model(self) -> str:
        """The `model` a translated answer names: the target's model, the one that served, as a same-API answer
        names the provider's own (docs/providers-and-translation.md, "The model in answers"). The route's name
        is in neither: which target served is no secret (x-switchyard-target says it), and one meaning on every
        path lets a client log and compare answers alike. The translators take it as their `client_model`."""
        return self.request.model

    def on_request_headers(self, signed: Mapping[str, str], marker: str) -> bytes:
        """`signed`: the SIGNED_HEADERS as Envoy's rewrite left them for this attempt, what a signature covers;
        `marker`: the header that carried the attempt's marker (TRANSLATE_STREAM_HEADER for a streamed answer)."""
        self._authority, self._path = signed.get(":authority", ""), signed.get(":path", "")
        return _HEADERS_ANSWERS[marker]

    def on_request_body(self, body: bytes) -> bytes:
        document = _parse_body(body)
        if isinstance(document, bytes):
            return document
        try:
            translated = self.translator.request(document, self.request.model)
        except UnsupportedParameterError as problem:
            return _refuse(
                f"Unsupported parameter `{problem.param}` for target {self.request.target!r} "
                f"({self.translator.provider_api} API): {problem.reason}",
            )
        self.client_request = document
        self.streaming = document.get("stream") is True
        if self.rules:
            translated = body_rules.apply(self.rules, translated)
        self._sent_at = time.monotonic()
        # A provider that streams at another path (Gemini, Bedrock) is switched to it here, where the body is known.
        path = self.request.stream_path if self.streaming else ""
        new_body = _dumps(translated)
        signature = None
        if self.request.sigv4:  # signed over the final body and path (Bedrock)
            signature = sigv4.signature_headers(
                self.request.sigv4, "POST", "https", self._authority, path or self._path, new_body
            )
        return _body_response(new_body, self.translator, path=path, signature=signature, streaming=self.streaming)

    def _on_provider_headers(self, values: Mapping[str, str]) -> None:
        """The provider's response headers, with the first chunk of its answer: its status, and so whether the
        answer streams (translated chunk by chunk) or comes whole (an answer, or an error before any token)."""
        self.needs_provider_headers = False
        self.status = self.translator.provider_status(int(values.get(":status", "0") or 0), values)
        self.content_type = values.get("content-type", "")
        if self.streaming and self.status == 200:
            self.stream = self.translator.stream(self.request.model, self._answer_model, self.client_request)

    def on_response_body(self, body: ep.HttpBody, provider_headers: Mapping[str, str]) -> bytes:
        first = self.needs_provider_headers
        if first:
            self._on_provider_headers(provider_headers)
        end = self.finished = body.end_of_stream
        status: str | None = None
        if self.stream is not None:
            out = self.stream.feed(body.body)
            if not self._first_token_at and self.stream.first_token_seen:
                self._first_token_at = time.monotonic()
            if not end:
                answer = body_answer(RESPONSE_BODY, out)
            else:
                answer = body_answer(RESPONSE_BODY, out + self.stream.finish()) + self._report()
        elif not end:
            self._whole.extend(body.body)
            answer = body_answer(RESPONSE_BODY, b"")
        else:
            whole = bytes(self._whole) + body.body if self._whole else body.body  # most answers come in one piece
            if _answers_with_request(self.translator):
                _, translated = cast(AnswersWithRequest, self.translator).response_to(
                    self.client_request, self.status, whole, self.content_type, self._answer_model
                )
            else:
                _, translated = self.translator.response(self.status, whole, self.content_type, self._answer_model)
            answer = body_answer(RESPONSE_BODY, translated)
            # The status depends on the status alone (Anthropic's 529 is OpenAI's 503);
            # envoy/lua/translated_response.lua holds the answer's headers until now and applies it, in time
            # for Envoy's fallback decision.
            status = str(self.translator.client_status(self.status))
        if status is not None or first:
            answer += _answer_metadata(status, first)
        return answer

    def _report(self) -> bytes:
        """Time to first token, input, cached and output tokens, as dynamic metadata Envoy's attempt log carries to the
        control plane: no extra connection, and nothing waits for it. Appended to the stream's last answer."""
        if self.stream is None or not self._first_token_at:
            return b""
        measured = {
            "ttft_ms": (self._first_token_at - self._sent_at) * 1000,
            "generation_ms": (time.monotonic() - self._first_token_at) * 1000,
        }
        input_tokens, output_tokens = self.stream.usage
        if output_tokens:
            measured["output_tokens"] = float(output_tokens)
        if input_tokens:
            measured["input_tokens"] = float(input_tokens)
        cache_read, cache_write = self.stream.cache_usage
        if cache_read:
            measured["cache_read_tokens"] = float(cache_read)
        if cache_write:
            measured["cache_write_tokens"] = float(cache_write)
        response = ep.ProcessingResponse()
        response.dynamic_metadata.fields[STREAM_METADATA_NAMESPACE].struct_value.update(measured)
        report: bytes = response.SerializeToString()
        return report
