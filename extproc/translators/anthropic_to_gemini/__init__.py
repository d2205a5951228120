"""Anthropic Messages clients served by a Google Gemini target (`generateContent`).

Requests go Anthropic -> Gemini; answers, streams and errors come back Gemini -> Anthropic. OpenAI clients
of Gemini targets go through this pair too, behind the OpenAI <-> Anthropic one (`openai_to_gemini`).

`pair` is the translator; `request`, `response` (with the error mapping) and `stream` do the work.
"""

from extproc.translators.anthropic_to_gemini.pair import AnthropicToGemini
from extproc.translators.anthropic_to_gemini.request import translate_request
from extproc.translators.anthropic_to_gemini.response import gemini_error_to_anthropic, translate_response
from extproc.translators.anthropic_to_gemini.stream import AnthropicFromGeminiStream

__all__ = [
    "AnthropicFromGeminiStream",
    "AnthropicToGemini",
    "gemini_error_to_anthropic",
    "translate_request",
    "translate_response",
]
