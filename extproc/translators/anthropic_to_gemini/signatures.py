"""Gemini's `thoughtSignature` on a function call, carried through the client's tool round trip in the call id.

Gemini (3 and later, with thinking) signs each function call it makes and refuses the next turn unless the
call comes back with its signature. The client must therefore send it back, and the one thing every client
sends back unchanged is the call's id: an Anthropic client in `tool_use.id` and `tool_result.tool_use_id`,
an OpenAI client in `tool_calls[].id` and the tool message's `tool_call_id`. A thinking block's signature
would reach Anthropic clients only (OpenAI chat has no place for it), so the id it is.

The id becomes `<call id>__sig_<signature>`, the signature (base64) re-encoded as unpadded base64url, so the
id keeps to `[a-zA-Z0-9_-]`, the only characters Anthropic accepts in tool ids. The way back splits at the
first marker: call ids are the gateway's own (`toolu_<hex>`) or Gemini's, neither of which holds it.
"""

from __future__ import annotations

import base64
import binascii

_MARKER = "__sig_"


def signed_id(call_id: str, signature: object) -> str:
    """The tool call id a client sees: Gemini's signature, if the call had one, travels inside it."""
    if not isinstance(signature, str) or not signature:
        return call_id
    try:
        raw = base64.b64decode(signature, validate=True)
    except binascii.Error:
        return call_id  # not what Gemini sends; nothing the next turn could use
    return call_id + _MARKER + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def signature_of(tool_id: str) -> str | None:
    """The signature a client's tool call id carries back (standard base64, as Gemini sent it), if any."""
    _, marker, encoded = tool_id.partition(_MARKER)
    if not marker or not encoded:
        return None
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        return None
    return base64.b64encode(raw).decode()
