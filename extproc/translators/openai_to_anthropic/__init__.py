"""OpenAI Chat Completions clients served by an Anthropic Messages target.

Requests go OpenAI -> Anthropic; responses, streams and errors come back Anthropic -> OpenAI, so an OpenAI
SDK sees an ordinary chat completion that names the model it asked for.

`pair` is the translator; `request` (with `messages` and `tools`), `response` and `stream` do the work.
"""

from extproc.translators.openai_to_anthropic.pair import OpenAIToAnthropic
from extproc.translators.openai_to_anthropic.request import DEFAULT_MAX_TOKENS, translate_request
from extproc.translators.openai_to_anthropic.response import translate_message
from extproc.translators.openai_to_anthropic.stream import OpenAIChunkStream

__all__ = ["DEFAULT_MAX_TOKENS", "OpenAIChunkStream", "OpenAIToAnthropic", "translate_message", "translate_request"]
