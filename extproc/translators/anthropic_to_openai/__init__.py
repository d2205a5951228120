"""Anthropic Messages clients served by an OpenAI Chat Completions (or compatible) target.

Requests go Anthropic -> OpenAI; responses, streams and errors come back OpenAI -> Anthropic, so an
Anthropic SDK sees an ordinary message that names the model it asked for.

`pair` is the translator; `request` (with `messages` and `tools`), `response` and `stream` do the work.
"""

from extproc.translators.anthropic_to_openai.pair import AnthropicToOpenAI
from extproc.translators.anthropic_to_openai.request import translate_request
from extproc.translators.anthropic_to_openai.response import translate_completion
from extproc.translators.anthropic_to_openai.stream import AnthropicEventStream

__all__ = ["AnthropicEventStream", "AnthropicToOpenAI", "translate_completion", "translate_request"]
