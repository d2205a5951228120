"""OpenAI Responses API clients served by a target with chat completions only (`openai_compatible` servers
without `responses_api: true`): Responses -> Anthropic form -> chat completions, and back the same way (see
`extproc/translators/responses_via_anthropic.py`)."""

from extproc.translators.responses_to_chat.pair import ResponsesToChat

__all__ = ["ResponsesToChat"]
