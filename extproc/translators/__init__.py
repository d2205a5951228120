"""Translation between LLM APIs, for attempts whose target speaks a different API than the client.

Pure functions and small state machines only: no gRPC, no Envoy. See `base` for the interface.
"""

from extproc.translators.base import StreamTranslator, Translator, UnsupportedParameterError
from extproc.translators.registry import parameters_that_may_not_translate, translator_for

__all__ = [
    "StreamTranslator",
    "Translator",
    "UnsupportedParameterError",
    "parameters_that_may_not_translate",
    "translator_for",
]
