"""A Responses client's `input_tokens` call on an Anthropic target: `/v1/messages/count_tokens` with the
message request the pair would send, trimmed to what a count request takes (no max_tokens, metadata, stream)."""

from __future__ import annotations

from typing import Any

from extproc.translators.counting import CountPair
from extproc.translators.responses_to_anthropic.pair import ResponsesToAnthropic
from extproc.translators.responses_to_anthropic.request import translate_request

JSON = dict[str, Any]

# MessageCountTokensParams' members that a translated Responses request can carry (the anthropic SDK's type)
_COUNT_MEMBERS = ("model", "messages", "system", "tools", "tool_choice", "thinking", "output_config", "cache_control")


class ResponsesToAnthropicCount(CountPair):
    def __init__(self) -> None:
        super().__init__(ResponsesToAnthropic())

    def count_request(self, body: dict[str, Any], target_model: str) -> JSON:
        message = translate_request(body, target_model)
        return {k: message[k] for k in _COUNT_MEMBERS if k in message}
