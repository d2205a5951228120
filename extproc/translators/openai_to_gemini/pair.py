"""The OpenAI client -> Gemini target translator, as `base.translator_for` hands it out."""

from __future__ import annotations

from typing import Any

from extproc.translators.anthropic_to_gemini import AnthropicToGemini
from extproc.translators.base import UnsupportedParameterError
from extproc.translators.via_anthropic import ViaAnthropic

JSON = dict[str, Any]

_GENERATION = {
    "temperature": "temperature",  # Gemini takes 0..2, Anthropic 0..1
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}


class OpenAIToGemini(ViaAnthropic):
    """Client speaks OpenAI chat, target speaks Gemini generateContent (through the Anthropic shape)."""

    _past_anthropic = (*_GENERATION, "response_format")

    def __init__(self) -> None:
        super().__init__(AnthropicToGemini())

    def _add_past_anthropic(self, request: JSON, passed: JSON) -> JSON:
        generation: JSON = request.get("generationConfig", {})
        generation.update({_GENERATION[name]: value for name, value in passed.items() if name in _GENERATION})
        generation.update(_response_format(passed.get("response_format")))
        if generation:
            request["generationConfig"] = generation
        return request


def _response_format(value: Any) -> JSON:
    kind = value.get("type") if isinstance(value, dict) else None
    if value is None or kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    schema = value.get("json_schema") if kind == "json_schema" else None
    if isinstance(schema, dict) and isinstance(schema.get("schema"), dict):
        return {"responseMimeType": "application/json", "responseJsonSchema": schema["schema"]}
    raise UnsupportedParameterError("response_format", "must be text, json_object or json_schema with a schema")
