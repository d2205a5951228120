"""What a client gets when a guardrail blocks: a 400 in its own API's error shape, naming the rule.

OpenAI's SDKs raise `BadRequestError` and Anthropic's `BadRequestError` from these, with the message a person can
act on; the matched text is never in it. OpenAI-shaped bodies (chat, Responses) carry `code: guardrail_blocked`
so a program can tell a guardrail from other 400s.
"""

from __future__ import annotations

from extproc.guardrails.checks import Block
from extproc.translators.errors import anthropic_error, openai_error
from extproc.translators.wire import dumps
from switchyard.contract import WireApi

BLOCK_STATUS = 400
BLOCK_CODE = "guardrail_blocked"


def block_body(api: WireApi, block: Block) -> dict[str, object]:
    if api is WireApi.ANTHROPIC:
        return anthropic_error(block.message, status=BLOCK_STATUS)
    body = openai_error(block.message, status=BLOCK_STATUS)
    body["error"]["code"] = BLOCK_CODE
    return body


def block_reply(api: WireApi, block: Block) -> tuple[int, bytes]:
    """(status, JSON body) for a request refused before it left, or a whole answer refused on its way back."""
    return BLOCK_STATUS, dumps(block_body(api, block))
