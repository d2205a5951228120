"""The OpenAI client -> Gemini target translator, as `base.translator_for` hands it out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extproc.translators import anthropic_to_gemini, openai_to_anthropic
from extproc.translators.base import PairTranslator, UnsupportedParameter
from extproc.translators.errors import anthropic_response_to_openai, openai_error, openai_status, shape_problem
from extproc.translators.openai_to_anthropic.request import UNSUPPORTED
from extproc.translators.wire import dumps, loads_object

JSON = dict[str, Any]

# OpenAI parameters Gemini honours but Anthropic does not: kept out of the intermediate form, then added.
_PAST_ANTHROPIC = ("temperature", "seed", "presence_penalty", "frequency_penalty", "response_format")
_GENERATION = {
    "temperature": "temperature",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}


class OpenAIToGemini(PairTranslator):
    """Client speaks OpenAI chat, target speaks Gemini generateContent."""

    client_api = "openai"
    provider_api = "gemini"
    may_refuse = frozenset(UNSUPPORTED) - set(_PAST_ANTHROPIC)

    def request(self, body: dict[str, Any], target_model: str) -> dict[str, Any]:
        passed = {name: body[name] for name in _PAST_ANTHROPIC if body.get(name) is not None}
        rest = {name: value for name, value in body.items() if name not in _PAST_ANTHROPIC}
        intermediate = openai_to_anthropic.translate_request(rest, target_model)
        if body.get("max_tokens") is None and body.get("max_completion_tokens") is None:
            del intermediate["max_tokens"]  # Anthropic needs one, Gemini runs to the model's own limit
        out = anthropic_to_gemini.translate_request(intermediate, target_model)
        generation: JSON = out.get("generationConfig", {})
        generation.update({_GENERATION[name]: value for name, value in passed.items() if name in _GENERATION})
        generation.update(_response_format(passed.get("response_format")))
        if generation:
            out["generationConfig"] = generation
        return out

    def client_status(self, provider_status: int) -> int:
        return openai_status(provider_status)

    def _error_response(self, status: int, body: bytes, content_type: str) -> tuple[int, bytes]:
        status, anthropic_body = anthropic_to_gemini.gemini_error_to_anthropic(status, body, content_type)
        return anthropic_response_to_openai(status, anthropic_body, "application/json")

    def _success_body(self, body: bytes, client_model: str) -> bytes:
        message = anthropic_to_gemini.translate_response(loads_object(body), client_model)
        return dumps(openai_to_anthropic.translate_message(message, client_model))

    def _malformed_body(self, problem: Exception) -> bytes:
        return dumps(openai_error(shape_problem(problem)))

    def stream(self, target_model: str, client_model: str, client_request: Mapping[str, Any]) -> ChainedStream:
        options = client_request.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return ChainedStream(
            anthropic_to_gemini.AnthropicFromGeminiStream(client_model),
            openai_to_anthropic.OpenAIChunkStream(client_model, include_usage),
        )


def _response_format(value: Any) -> JSON:
    kind = value.get("type") if isinstance(value, dict) else None
    if value is None or kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    schema = value.get("json_schema") if kind == "json_schema" else None
    if isinstance(schema, dict) and isinstance(schema.get("schema"), dict):
        return {"responseMimeType": "application/json", "responseJsonSchema": schema["schema"]}
    raise UnsupportedParameter("response_format", "must be text, json_object or json_schema with a schema")


class ChainedStream:
    """Gemini SSE -> Anthropic events -> OpenAI chunks, chunk by chunk: nothing is held back on the way."""

    def __init__(
        self, inner: anthropic_to_gemini.AnthropicFromGeminiStream, outer: openai_to_anthropic.OpenAIChunkStream
    ) -> None:
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
    def first_token_seen(self) -> bool:
        return self._outer.first_token_seen
