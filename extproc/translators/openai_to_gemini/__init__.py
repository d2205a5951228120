"""OpenAI Chat Completions clients served by a Google Gemini target (see `extproc/translators/via_anthropic.py`).

Built on the two pairs that exist already rather than a third full translation: a request goes
OpenAI -> Anthropic (`openai_to_anthropic`) -> Gemini (`anthropic_to_gemini`), and answers, streams and
errors come back the same way reversed. The Anthropic messages shape is the intermediate form; only what
Gemini can do and Anthropic cannot (seed, repetition penalties, JSON output, temperature up to 2) is
carried past it here.
"""

from extproc.translators.openai_to_gemini.pair import OpenAIToGemini

__all__ = ["OpenAIToGemini"]
