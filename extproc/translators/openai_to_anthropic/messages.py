"""Request messages: OpenAI chat messages -> the Anthropic system prompt and alternating messages."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from extproc.translators.base import UnsupportedParameterError

JSON = dict[str, Any]
Content = str | list[JSON]

_DATA_URL = re.compile(r"data:(?P<media_type>[^;,]+)(?:;[^;,]*)*;base64,(?P<data>.*)", re.DOTALL)
_TOOL_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


def translate_messages(raw: Any) -> tuple[str | None, list[JSON]]:
    """System/developer messages become the top-level system prompt; the rest must alternate user/assistant."""
    if not isinstance(raw, list):
        raise UnsupportedParameterError("messages", "must be a list of messages")
    system: list[str] = []
    out: list[JSON] = []
    for i, message in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise UnsupportedParameterError(where, "must be an object")
        role = message.get("role")
        if role in ("system", "developer"):
            system.append("\n\n".join(_texts(message.get("content"), f"{where}.content", ("text",))))
            continue
        convert = _ROLES.get(role) if isinstance(role, str) else None
        if convert is None:
            raise UnsupportedParameterError(f"{where}.role", f"role {role!r} is not supported for this model")
        anthropic_role, content = convert(message, where)
        if out and out[-1]["role"] == anthropic_role:  # Anthropic requires strict alternation: merge
            out[-1]["content"] = _blocks(out[-1]["content"]) + _blocks(content)
        else:
            out.append({"role": anthropic_role, "content": content})
    return ("\n\n".join(system) if system else None), out


def _user(message: JSON, where: str) -> tuple[str, Content]:
    content = message.get("content")
    if isinstance(content, str):
        return "user", content
    if not isinstance(content, list):
        raise UnsupportedParameterError(f"{where}.content", "must be a string or a list of content parts")
    return "user", [_user_part(part, f"{where}.content[{j}]") for j, part in enumerate(content)]


def _user_part(part: Any, where: str) -> JSON:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        return {"type": "text", "text": part.get("text")}
    if kind == "image_url":
        return _image(part.get("image_url"), f"{where}.image_url")
    raise UnsupportedParameterError(f"{where}.type", f"content parts of type {kind!r} are not supported for this model")


def _image(image_url: Any, where: str) -> JSON:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url  # `detail` has no equivalent
    if isinstance(url, str) and url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    match = _DATA_URL.fullmatch(url) if isinstance(url, str) else None
    if match is None:
        raise UnsupportedParameterError(f"{where}.url", "must be an http(s) URL or a base64 data URL")
    return {"type": "image", "source": {"type": "base64", "media_type": match["media_type"], "data": match["data"]}}


def _assistant(message: JSON, where: str) -> tuple[str, Content]:
    content = message.get("content")
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise UnsupportedParameterError(f"{where}.tool_calls", "must be a list")
    if isinstance(content, str) and not calls:
        return "assistant", content
    texts = _texts(content, f"{where}.content", ("text", "refusal"))
    blocks: list[JSON] = [{"type": "text", "text": text} for text in texts if text]  # no empty text blocks
    blocks += [_tool_use(call, f"{where}.tool_calls[{k}]") for k, call in enumerate(calls)]
    return "assistant", blocks


def _tool_use(call: Any, where: str) -> JSON:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or call.get("type", "function") != "function":
        raise UnsupportedParameterError(f"{where}.type", "only function tool calls are supported")
    arguments = function.get("arguments")
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) and arguments.strip() else {}
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise UnsupportedParameterError(f"{where}.function.arguments", "must be a JSON object")
    return {
        "type": "tool_use",
        "id": _tool_id(call.get("id"), f"{where}.id"),
        "name": function.get("name"),
        "input": parsed,
    }


def _tool_result(message: JSON, where: str) -> tuple[str, Content]:
    content = message.get("content")
    if not isinstance(content, str):
        content = [{"type": "text", "text": text} for text in _texts(content, f"{where}.content", ("text",))]
    tool_use_id = _tool_id(message.get("tool_call_id"), f"{where}.tool_call_id")
    return "user", [{"type": "tool_result", "tool_use_id": tool_use_id, "content": content}]


_ROLES: dict[str, Callable[[JSON, str], tuple[str, Content]]] = {
    "user": _user,
    "assistant": _assistant,
    "tool": _tool_result,
}


def _texts(content: Any, where: str, kinds: tuple[str, ...]) -> list[str]:
    """The texts of a string or text-only part list (`refusal` parts carry theirs under "refusal")."""
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise UnsupportedParameterError(where, "must be a string or a list of content parts")
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in kinds:
            raise UnsupportedParameterError(
                f"{where}[{j}].type", f"content parts of type {kind!r} are not supported here"
            )
        texts.append(str(part.get(kind) or ""))
    return texts


def _tool_id(raw: Any, where: str) -> str:
    """Anthropic only accepts [a-zA-Z0-9_-] ids; ids from other providers are made to fit, the same way on
    the call and on its result, so the pair still matches."""
    if not isinstance(raw, str) or not raw:
        raise UnsupportedParameterError(where, "is required")
    return _TOOL_ID_UNSAFE.sub("_", raw)


def _blocks(content: Content) -> list[JSON]:
    if isinstance(content, list):
        return content
    return [{"type": "text", "text": content}] if content else []
