"""OpenAI Responses API clients served by an AWS Bedrock target (Converse): Responses -> Anthropic form ->
Converse, and back the same way (see `extproc/translators/responses_via_anthropic.py`)."""

from extproc.translators.responses_to_bedrock.pair import ResponsesToBedrock

__all__ = ["ResponsesToBedrock"]
