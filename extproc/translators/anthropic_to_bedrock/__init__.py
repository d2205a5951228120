"""Anthropic Messages clients served by an AWS Bedrock target (the Converse API).

Requests go Anthropic -> Converse; answers, event streams and errors come back Converse -> Anthropic. OpenAI
clients of Bedrock targets go through this pair too, behind the OpenAI <-> Anthropic one (`openai_to_bedrock`).
The request is signed afterwards, over its final bytes (extproc/sigv4.py).

`pair` is the translator; `request`, `response` (with the error mapping) and `stream` do the work.
"""

from extproc.translators.anthropic_to_bedrock.pair import AnthropicToBedrock

__all__ = ["AnthropicToBedrock"]
