"""Request messages: the Anthropic system prompt and messages -> OpenAI chat messages."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from extproc.translators.base import UnsupportedParameterError

JSON = dict[str, Any]


def translate_system(system: Any) -> list[JSON]:
    if system is None:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    return [{"role": "system", "content": "\n\n".join(_texts(system, "system"))}]


def translate_messages(raw: Any) -> list[JSON]:
    if not isinstance(raw, list):
        raise UnsupportedParameterError("messages", "must be a list of messages")
    out: list[JSON] = []
    for i, message in enumerate(raw):
        where = f"messages[{i}]"
        role = message.get("role") if isinstance(message, dict) else None
        convert = _ROLES.get(role) if isinstance(role, str) else None
        if convert is None:
            raise UnsupportedParameterError(f"{where}.role", "must be 'user' or 'assistant'")
        content = message.get("content")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
        elif isinstance(content, list):
            out.extend(convert(content, where))
        else:
            raise UnsupportedParameterError(f"{where}.content", "must be a string or a list of content blocks")
    return out


def _user(blocks: list[Any], where: str) -> list[JSON]:
    """Tool results become `tool` messages, which OpenAI wants right after the assistant's tool calls, so
    they come first; the user's own text and images follow in one user message."""
    results: list[JSON] = []
    parts: list[JSON] = []
    for j, block in enumerate(blocks):
        here = f"{where}.content[{j}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "tool_result":
            results.append(_tool_result(block, here))
        elif kind == "text":
            parts.append({"type": "text", "text": block.get("text")})
        elif kind == "image":
            parts.append(_image(block.get("source"), f"{here}.source"))
        else:
            raise UnsupportedParameterError(f"{here}.type", f"content blocks of type {kind!r} are not supported here")
    return results + ([{"role": "user", "content": parts}] if parts else [])


def _image(source: Any, where: str) -> JSON:
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
    elif kind == "url":
        url = source.get("url")
    else:
        raise UnsupportedParameterError(f"{where}.type", "images must be base64 or url sources")
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result(block: JSON, where: str) -> JSON:
    # `is_error` has no OpenAI equivalent; the result text itself says what went wrong.
    content = block.get("content")
    text = content if isinstance(content, str) else "\n\n".join(_texts(content, f"{where}.content"))
    return {"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text}


def _assistant(blocks: list[Any], where: str) -> list[JSON]:
    texts: list[str] = []
    calls: list[JSON] = []
    for j, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            arguments = json.dumps(block.get("input", {}), ensure_ascii=False)
            function = {"name": block.get("name"), "arguments": arguments}
            calls.append({"id": block.get("id"), "type": "function", "function": function})
        elif kind not in ("thinking", "redacted_thinking"):  # another model's reasoning means nothing here
            raise UnsupportedParameterError(
                f"{where}.content[{j}].type", f"content blocks of type {kind!r} are not supported"
            )
    message: JSON = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return [message]


_ROLES: dict[str, Callable[[list[Any], str], list[JSON]]] = {"user": _user, "assistant": _assistant}


def _texts(blocks: Any, where: str) -> list[str]:
    if blocks is None:
        return []
    if isinstance(blocks, str):
        return [blocks]
    if not isinstance(blocks, list):
        raise UnsupportedParameterError(where, "must be a string or a list of text blocks")
    texts = []
    for j, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise UnsupportedParameterError(f"{where}[{j}].type", "only text blocks are supported here")
        texts.append(str(block.get("text") or ""))
    return texts
