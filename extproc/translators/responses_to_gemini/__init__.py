"""OpenAI Responses API clients served by a Google Gemini target: Responses -> Anthropic form ->
generateContent, and back the same way (see `extproc/translators/responses_via_anthropic.py`)."""

from extproc.translators.responses_to_gemini.pair import ResponsesToGemini

__all__ = ["ResponsesToGemini"]
