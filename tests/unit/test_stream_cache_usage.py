"""What every translated stream reports to usage accounting (extproc/exchange.py puts it in the answer log): the
input tokens, all of them, and apart the part read from or written to the prompt cache, whatever the client API
and the provider. The provider streams are the mock's (switchyard/mock_provider), with cached tokens in them."""

from __future__ import annotations

import pytest

from extproc.translators.registry import translator_for
from switchyard.mock_provider import anthropic_responses, bedrock_responses, gemini_responses, responses
from switchyard.mock_provider.caching import CacheCounts

PROMPT = 2048
MARKED = CacheCounts(read=1024, write=512)  # what the mock answers a request with cache markers
LONG = CacheCounts(read=1024)  # what OpenAI and Gemini mocks answer a long prompt


def provider_stream(provider_api: str) -> tuple[bytes, CacheCounts]:
    if provider_api == "anthropic":
        head, deltas, tail = anthropic_responses.stream_events(
            msg_id="m", name="mock", model="claude", chunks=2, input_tokens=PROMPT, cached=MARKED
        )
        return b"".join([*head, *deltas, *tail]), MARKED
    if provider_api == "bedrock":
        head, paced, tail = bedrock_responses.stream_events(
            name="mock", model="claude", chunks=2, input_tokens=PROMPT, completion_tokens=None, cached=MARKED
        )
        return b"".join([*head, *paced, *tail]), MARKED
    if provider_api == "gemini":
        paced, rest = gemini_responses.stream_events(
            response_id="r",
            name="mock",
            model="gemini",
            chunks=2,
            prompt_tokens=PROMPT,
            completion_tokens=None,
            cached_tokens=LONG.read,
        )
        return b"".join([*paced, *rest]), LONG
    paced, rest = responses.stream_events(
        chat=True,
        resp_id="c",
        created=0,
        name="mock",
        model="gpt",
        chunks=2,
        include_usage=True,
        prompt_tokens=PROMPT,
        cached_tokens=LONG.read,
    )
    return b"".join([*paced, *rest]), LONG


PAIRS = [
    ("openai", "anthropic"),
    ("openai", "bedrock"),
    ("openai", "gemini"),
    ("anthropic", "openai"),
    ("anthropic", "bedrock"),
    ("anthropic", "gemini"),
    ("responses", "anthropic"),
    ("responses", "openai"),
    ("responses", "bedrock"),
    ("responses", "gemini"),
]


@pytest.mark.parametrize(("client_api", "provider_api"), PAIRS)
def test_a_translated_stream_reports_all_input_tokens_and_the_cached_part(client_api: str, provider_api: str) -> None:
    translator = translator_for(client_api, provider_api)
    assert translator is not None
    # a client that did not ask for usage in its stream: the counts must reach accounting all the same
    stream = translator.stream("target-model", "client-model", {"stream": True, "input": "hi"})
    body, cached = provider_stream(provider_api)
    stream.feed(body[: len(body) // 2])
    stream.feed(body[len(body) // 2 :])
    stream.finish()
    assert stream.usage[0] == PROMPT
    assert stream.cache_usage == (cached.read, cached.write)
