"""How `max_input_tokens` estimates a prompt's size without the provider's tokenizer.

No tokenizer of every provider is at hand (and a download at run time is not possible), so the estimate follows
the providers' published rule of thumb: about 4 characters per token for English and code. Text outside ASCII
(CJK, emoji, accented scripts) takes about one token per character or more, so each such character counts as
one token. The estimate errs high for such text, which is the safe side of a limit meant to refuse huge prompts.
"""

from __future__ import annotations

from collections.abc import Iterable

ASCII_CHARACTERS_PER_TOKEN = 4


def estimate_tokens(texts: Iterable[str]) -> int:
    ascii_characters = 0
    other_characters = 0
    for text in texts:
        ascii_part = len(text.encode("ascii", "ignore"))  # in C: a prompt of megabytes costs milliseconds
        ascii_characters += ascii_part
        other_characters += len(text) - ascii_part
    return -(-ascii_characters // ASCII_CHARACTERS_PER_TOKEN) + other_characters
