"""OpenAI Responses API clients served by an Anthropic Messages target.

Requests go Responses -> Anthropic; answers, streams and errors come back Anthropic -> Responses, so an OpenAI
SDK's `client.responses.create` sees an ordinary response object (or event stream) naming the model it asked
for. The Anthropic form is also the way to Bedrock, Gemini and chat-completions targets
(`extproc/translators/responses_via_anthropic.py`).

`pair` is the translator; `request`, `response` and `stream` do the work.
"""

from extproc.translators.responses_to_anthropic.pair import ResponsesToAnthropic
from extproc.translators.responses_to_anthropic.request import (
    MAY_REFUSE,
    json_schema,
    reasoning_effort,
    translate_request,
)
from extproc.translators.responses_to_anthropic.response import translate_message
from extproc.translators.responses_to_anthropic.stream import ResponsesEventStream

__all__ = [
    "MAY_REFUSE",
    "ResponsesEventStream",
    "ResponsesToAnthropic",
    "json_schema",
    "reasoning_effort",
    "translate_message",
    "translate_request",
]
