"""What the mock reports as read from and written to a prompt cache: deterministic, so tests can tell cached
tokens reached the client and usage accounting, and compute how many.

Providers cache in two ways, and the mock follows each:
- Anthropic and Bedrock cache only where the request marks it (`cache_control`, `cachePoint`). A request carrying
  a marker is answered as if half its prompt was read from the cache and a quarter written to it.
- OpenAI and Gemini cache long prompts by themselves (from 1024 tokens). Such a prompt is answered as if the
  largest multiple of 128 tokens within its first half was read from the cache; they report no writes.
The prompt's total stays `responses.estimate_prompt_tokens` of the body's size either way.
"""

from __future__ import annotations

from typing import NamedTuple

# A marker is a member name: a quote inside a JSON string is escaped, so `"cache_control"` with bare quotes
# cannot come from text the prompt holds.
_MARKERS = (b'"cache_control"', b'"cachePoint"')
LONG_PROMPT_TOKENS = 1024
_OPENAI_BLOCK = 128


class CacheCounts(NamedTuple):
    read: int = 0  # prompt tokens read from the cache
    write: int = 0  # prompt tokens written to it

    def plain(self, prompt_tokens: int) -> int:
        """The prompt tokens neither read nor written: Anthropic's and Bedrock's input count."""
        return prompt_tokens - self.read - self.write


NO_CACHE = CacheCounts()


def marked(raw_body: bytes, prompt_tokens: int) -> CacheCounts:
    """Anthropic and Bedrock: cache counts only for a request with a cache marker."""
    if not any(marker in raw_body for marker in _MARKERS):
        return NO_CACHE
    return CacheCounts(read=prompt_tokens // 2, write=prompt_tokens // 4)


def automatic(prompt_tokens: int) -> CacheCounts:
    """OpenAI and Gemini: a long prompt's prefix read from the cache."""
    if prompt_tokens < LONG_PROMPT_TOKENS:
        return NO_CACHE
    return CacheCounts(read=prompt_tokens // 2 // _OPENAI_BLOCK * _OPENAI_BLOCK)
