"""OpenAI Chat Completions clients served by an AWS Bedrock target (Converse), through the Anthropic shape
(see `extproc/translators/via_anthropic.py`): OpenAI -> Anthropic -> Converse, and back the same way."""

from extproc.translators.openai_to_bedrock.pair import OpenAIToBedrock

__all__ = ["OpenAIToBedrock"]
