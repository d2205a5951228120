"""An attempt whose target speaks another API than the client: the request, and the response on its way
back, pass through a translator (extproc/translators/), then the target's body rules, and for providers that
want it a SigV4 signature over the final body (extproc/sigv4.py). An attempt to a target of the client's own
API with body rules only has its request body rewritten (`RulesExchange`).

Envoy has already rewritten the path and credentials for the target (envoy/lua/attempt_rewrite.lua); what is
left is the body both ways: Envoy sends this ext_proc the request headers, the whole request body (without
waiting for the answer to the headers), the response headers and the response body. Whether the answer streams
is only known later, so the response always comes in chunks: a stream's are translated as they arrive, a whole
answer's are held back and translated at its end. The status is translated with the headers, before Envoy
decides on a fallback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2 as pm
from envoy.service.ext_proc.v3 import external_processor_pb2 as ep
from google.protobuf import struct_pb2

from extproc import body_rules, sigv4
from extproc.replies import header, local_error
from extproc.translators import StreamTranslator, Translator, UnsupportedParameterError
from extproc.translators.base import AnswersWithRequest
from switchyard.contract import STREAM_METADATA_NAMESPACE, TranslationRequest, decode_body_rules
from switchyard.contract import TRANSLATE_HEADER as HEADER


def _headers(headers: base_pb2.HeaderMap) -> dict[str, str]:
    return {h.key: (h.raw_value.decode("latin-1") if h.raw_value else h.value) for h in headers.headers}


def _refuse(message: str) -> ep.ProcessingResponse:
    return local_error(400, message, "switchyard_translation")


def _body_response(
    new_body: bytes, translated: bool, path: str = "", signature: Mapping[str, str] | None = None
) -> ep.ProcessingResponse:
    """The request body the provider gets, with the headers that must match it (its path, if another, and
    the signature over it)."""
    mutation = ep.HeaderMutation(set_headers=[header("content-length", str(len(new_body)))])
    if path:
        mutation.set_headers.append(header(":path", path))
    for name, value in (signature or {}).items():
        mutation.set_headers.append(header(name, value))
    if translated:
        mutation.set_headers.append(header("content-type", "application/json"))
        # The translator reads the provider's bytes: they must not come compressed.
        mutation.set_headers.append(header("accept-encoding", "identity"))
    common = ep.CommonResponse(header_mutation=mutation)
    common.body_mutation.body = new_body
    return ep.ProcessingResponse(request_body=ep.BodyResponse(response=common))


def _parse_body(body: bytes) -> dict[str, Any] | ep.ProcessingResponse:
    """The request JSON object, or the 400 to answer instead."""
    try:
        document = json.loads(body)
    except ValueError:
        return _refuse("The request body is not valid JSON.")
    if not isinstance(document, dict):
        return _refuse("The request body must be a JSON object.")
    return document


def _dumps(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


# A rules-only attempt needs the request body and nothing of the response.
_REQUEST_BODY_ONLY = pm.ProcessingMode(
    request_header_mode=pm.ProcessingMode.SEND,
    request_body_mode=pm.ProcessingMode.BUFFERED,
    response_header_mode=pm.ProcessingMode.SKIP,
    response_body_mode=pm.ProcessingMode.NONE,
    request_trailer_mode=pm.ProcessingMode.SKIP,
    response_trailer_mode=pm.ProcessingMode.SKIP,
)


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
    the response goes back untouched, without passing through here (`mode_override`)."""

    def __init__(self, request: TranslationRequest) -> None:
        self.request = request
        self.rules = decode_body_rules(request.body_rules)
        self.finished = False

    def on_request_headers(self, headers: ep.HttpHeaders) -> ep.ProcessingResponse:
        common = ep.CommonResponse(header_mutation=ep.HeaderMutation(remove_headers=[HEADER]))
        response = ep.ProcessingResponse(request_headers=ep.HeadersResponse(response=common))
        response.mode_override.CopyFrom(_REQUEST_BODY_ONLY)
        return response

    def on_request_body(self, body: bytes) -> ep.ProcessingResponse:
        self.finished = True  # nothing more comes: the response skips this ext_proc
        document = _parse_body(body)
        if isinstance(document, ep.ProcessingResponse):
            return document
        # The Lua rewrite leaves the model to whoever changes the body after it: this exchange.
        document["model"] = self.request.model
        if self.request.provider_api == "openai" and document.get("stream") is True:
            ask_for_usage(document)
        return _body_response(_dumps(body_rules.apply(self.rules, document)), translated=False)

    def on_response_headers(self, headers: ep.HttpHeaders) -> ep.ProcessingResponse:
        return ep.ProcessingResponse(response_headers=ep.HeadersResponse())

    def on_response_body(self, body: ep.HttpBody) -> ep.ProcessingResponse:
        return ep.ProcessingResponse(response_body=ep.BodyResponse())


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

    @property
    def _answer_model(self) -> str:
        """The `model` a translated answer names: the target's model, the one that served, as a same-API answer
        names the provider's own (docs/providers-and-translation.md, "The model in answers"). The route's name
        is in neither: which target served is no secret (x-switchyard-target says it), and one meaning on every
        path lets a client log and compare answers alike. The translators take it as their `client_model`."""
        return self.request.model

    def on_request_headers(self, headers: ep.HttpHeaders) -> ep.ProcessingResponse:
        values = _headers(headers.headers)
        # As Envoy's rewrite left them for this attempt: what a signature must cover.
        self._authority, self._path = values.get(":authority", ""), values.get(":path", "")
        # The header that brought the request here must not travel on to the provider.
        common = ep.CommonResponse(header_mutation=ep.HeaderMutation(remove_headers=[HEADER]))
        return ep.ProcessingResponse(request_headers=ep.HeadersResponse(response=common))

    def on_request_body(self, body: bytes) -> ep.ProcessingResponse:
        document = _parse_body(body)
        if isinstance(document, ep.ProcessingResponse):
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
        return _body_response(new_body, translated=True, path=path, signature=signature)

    def on_response_headers(self, headers: ep.HttpHeaders) -> ep.ProcessingResponse:
        values = _headers(headers.headers)
        self.status = self.translator.provider_status(int(values.get(":status", "0") or 0), values)
        self.content_type = values.get("content-type", "")
        mutation = ep.HeaderMutation(remove_headers=["content-length"])
        if self.streaming and self.status == 200:
            self.stream = self.translator.stream(self.request.model, self._answer_model, self.client_request)
            mutation.set_headers.append(header("content-type", "text/event-stream"))
        else:
            # A whole answer, or an error before any token: answered whole, in the client's shape. Its status
            # depends on the status alone (Anthropic's 529 is OpenAI's 503), so it is set now, in time for
            # Envoy's fallback decision; the body follows in chunks of any length (no content-length).
            mutation.set_headers.append(header(":status", str(self.translator.client_status(self.status))))
            mutation.set_headers.append(header("content-type", "application/json"))
        common = ep.CommonResponse(header_mutation=mutation)
        return ep.ProcessingResponse(response_headers=ep.HeadersResponse(response=common))

    def on_response_body(self, body: ep.HttpBody) -> ep.ProcessingResponse:
        self.finished = body.end_of_stream
        if self.stream is not None:
            out = self.stream.feed(body.body)
            if not self._first_token_at and self.stream.first_token_seen:
                self._first_token_at = time.monotonic()
            if not body.end_of_stream:
                return _response_body(out)
            response = _response_body(out + self.stream.finish())
            self._report(response)
            return response
        self._whole.extend(body.body)
        if not body.end_of_stream:
            return _response_body(b"")
        if isinstance(self.translator, AnswersWithRequest):
            _, translated = self.translator.response_to(
                self.client_request, self.status, bytes(self._whole), self.content_type, self._answer_model
            )
        else:
            _, translated = self.translator.response(
                self.status, bytes(self._whole), self.content_type, self._answer_model
            )
        return _response_body(translated)

    def _report(self, response: ep.ProcessingResponse) -> None:
        """Time to first token, input, cached and output tokens, as dynamic metadata Envoy's attempt log carries to the
        control plane: no extra connection, and nothing waits for it."""
        if self.stream is None or not self._first_token_at:
            return
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
        fields = struct_pb2.Struct()
        fields.update(measured)
        response.dynamic_metadata.fields[STREAM_METADATA_NAMESPACE].struct_value.CopyFrom(fields)


def _response_body(body: bytes) -> ep.ProcessingResponse:
    common = ep.CommonResponse()
    common.body_mutation.body = body
    return ep.ProcessingResponse(response_body=ep.BodyResponse(response=common))
