"""Which translator serves which (client API, provider API) pair: the one place that lists the pairs.

It sits above the interface (`base`) and the pair modules, which import only the interface: adding a pair is a
module of its own plus one line here.
"""

from __future__ import annotations

from functools import cache

from extproc.translators.anthropic_to_bedrock import AnthropicToBedrock
from extproc.translators.anthropic_to_gemini import AnthropicToGemini
from extproc.translators.anthropic_to_openai import AnthropicToOpenAI
from extproc.translators.base import Translator
from extproc.translators.openai_to_anthropic import OpenAIToAnthropic
from extproc.translators.openai_to_bedrock import OpenAIToBedrock
from extproc.translators.openai_to_gemini import OpenAIToGemini
from extproc.translators.responses_to_anthropic import ResponsesToAnthropic
from extproc.translators.responses_to_bedrock import ResponsesToBedrock
from extproc.translators.responses_to_chat import ResponsesToChat
from extproc.translators.responses_to_gemini import ResponsesToGemini


def translator_for(client_api: str, provider_api: str) -> Translator | None:
    """The translator for a pair, or None when both speak the same API (bytes then never reach Python).

    An unknown pair is a configuration bug, not something to pass through untranslated: ValueError.
    """
    if client_api == provider_api:
        return None
    try:
        return _translators()[(client_api, provider_api)]
    except KeyError:
        raise ValueError(f"no translation from {client_api!r} clients to {provider_api!r} providers") from None


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
