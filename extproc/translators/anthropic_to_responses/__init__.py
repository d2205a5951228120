"""Anthropic clients' token counts on targets of OpenAI's Responses API (`/v1/responses/input_tokens`).

Messages to OpenAI go through chat completions (`anthropic_to_openai`), which every OpenAI-compatible server
has; only OpenAI itself counts tokens, and only in the Responses API. So a count request is translated as a
message would be, to a chat request, and that is rewritten into Responses input (`request`); `count` is the
translator."""

from extproc.translators.anthropic_to_responses.count import AnthropicToResponsesCount

__all__ = ["AnthropicToResponsesCount"]
