"""Which translator serves which (client API, provider API) pair: the one place that lists the pairs.

It sits above the interface (`base`) and the pair modules, which import only the interface: adding a pair is a
module of its own plus one line here.
"""

from __future__ import annotations

from functools import cache

from extproc.translators.anthropic_to_bedrock import AnthropicToBedrock
from extproc.translators.anthropic_to_bedrock.count import AnthropicToBedrockCount
from extproc.translators.anthropic_to_gemini import AnthropicToGemini
from extproc.translators.anthropic_to_gemini.count import AnthropicToGeminiCount
from extproc.translators.anthropic_to_openai import AnthropicToOpenAI
from extproc.translators.anthropic_to_responses import AnthropicToResponsesCount
from extproc.translators.base import Translator
from extproc.translators.openai_to_anthropic import OpenAIToAnthropic
from extproc.translators.openai_to_bedrock import OpenAIToBedrock
from extproc.translators.openai_to_gemini import OpenAIToGemini
from extproc.translators.responses_to_anthropic import ResponsesToAnthropic
from extproc.translators.responses_to_anthropic.count import ResponsesToAnthropicCount
from extproc.translators.responses_to_bedrock import ResponsesToBedrock
from extproc.translators.responses_to_bedrock.count import ResponsesToBedrockCount
from extproc.translators.responses_to_chat import ResponsesToChat
from extproc.translators.responses_to_gemini import ResponsesToGemini
from extproc.translators.responses_to_gemini.count import ResponsesToGeminiCount
from switchyard.contract import COUNT_TOKENS


def translator_for(client_api: str, provider_api: str, operation: str = "") -> Translator | None:
    """The translator for a pair, or None when both speak the same API (bytes then never reach Python).
    `operation` is the translation request's: token counts have translators of their own (`counting`).

    An unknown pair is a configuration bug, not something to pass through untranslated: ValueError.
    """
    if client_api == provider_api:
        return None
    table = _counters() if operation == COUNT_TOKENS else _translators()
    try:
        return table[(client_api, provider_api)]
    except KeyError:
        what = "token counts" if operation == COUNT_TOKENS else "translation"
        raise ValueError(f"no {what} from {client_api!r} clients to {provider_api!r} providers") from None


def parameters_that_may_not_translate() -> frozenset[str]:
    """Every pair's `may_refuse`: what the control plane flags requests by (PARAMETERS_THAT_MAY_NOT_TRANSLATE in
    switchyard/contract.py, checked against this by a unit test; see `Translator.may_refuse`)."""
    return frozenset().union(*(t.may_refuse for t in _translators().values()))


@cache
def _translators() -> dict[tuple[str, str], Translator]:
    translators: tuple[Translator, ...] = (
        OpenAIToAnthropic(),
        AnthropicToOpenAI(),
        OpenAIToGemini(),
        AnthropicToGemini(),
        OpenAIToBedrock(),
        AnthropicToBedrock(),
        ResponsesToAnthropic(),
        ResponsesToChat(),
        ResponsesToBedrock(),
        ResponsesToGemini(),
    )
    return {(t.client_api, t.provider_api): t for t in translators}


@cache
def _counters() -> dict[tuple[str, str], Translator]:
    """The pairs whose provider has a counting API of its own (Anthropic, OpenAI's Responses API, Bedrock,
    Gemini): the control plane sends count calls to no other (controlplane/providers/)."""
    counters: tuple[Translator, ...] = (
        AnthropicToBedrockCount(),
        AnthropicToGeminiCount(),
        AnthropicToResponsesCount(),
        ResponsesToAnthropicCount(),
        ResponsesToBedrockCount(),
        ResponsesToGeminiCount(),
    )
    return {(t.client_api, t.provider_api): t for t in counters}
