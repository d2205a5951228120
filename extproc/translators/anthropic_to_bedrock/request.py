"""Request: Anthropic messages -> a Bedrock Converse body.

Converse takes the model in the path (controlplane/providers/bedrock.py), the system prompt as a list of
blocks, sampling in `inferenceConfig`, tools in `toolConfig`, and what only some models understand (top_k,
extended thinking: Anthropic's own names, since Anthropic models are who understand them) in
`additionalModelRequestFields`. Blobs (image bytes) are base64 text in Converse's JSON, as in Anthropic's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extproc.translators.base import UnsupportedParameter
from extproc.translators.params import screen

JSON = dict[str, Any]

_INFERENCE = {
    "max_tokens": "maxTokens",
    "temperature": "temperature",
    "top_p": "topP",
    "stop_sequences": "stopSequences",
}
_MODEL_FIELDS = ("top_k", "thinking")  # passed to the model as they are
_TRANSLATED = frozenset({*_INFERENCE, *_MODEL_FIELDS, "model", "messages", "system", "tools", "tool_choice"})
_TRANSLATED |= {"metadata", "service_tier", "stream"}  # no effect on the answer; the path says `stream`
_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}


def translate_request(body: Mapping[str, Any], target_model: str) -> JSON:
    params = screen(body, {}, _TRANSLATED)
    out: JSON = {"messages": [_message(m, f"messages[{i}]") for i, m in enumerate(_list(params.get("messages")))]}
    system = _system(params.get("system"))
    if system:
        out["system"] = system
    inference = {converse: params[name] for name, converse in _INFERENCE.items() if name in params}
    if inference:
        out["inferenceConfig"] = inference
    extra = {name: params[name] for name in _MODEL_FIELDS if name in params}
    if extra:
        out["additionalModelRequestFields"] = extra
    tools = params.get("tools")
    if tools:
        config: JSON = {"tools": [_tool(t, f"tools[{i}]") for i, t in enumerate(_list(tools, "tools"))]}
        choice = params.get("tool_choice")
        if choice is not None:
            config["toolChoice"] = _tool_choice(choice)
        out["toolConfig"] = config
    return out


def _list(value: Any, where: str = "messages") -> list[Any]:
    if not isinstance(value, list):
        raise UnsupportedParameter(where, "must be a list")
    return value


def _system(system: Any) -> list[JSON]:
    if system is None or isinstance(system, str):
        return [{"text": system}] if system else []
    blocks = []
    for i, block in enumerate(_list(system, "system")):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise UnsupportedParameter(f"system[{i}]", "only text blocks are supported for this model")
        if block.get("text"):
            blocks.append({"text": block["text"]})
    return blocks


def _message(message: Any, where: str) -> JSON:
    role = message.get("role") if isinstance(message, dict) else None
    if role not in ("user", "assistant"):
        raise UnsupportedParameter(f"{where}.role", "must be 'user' or 'assistant'")
    content = message.get("content")
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else _list(content, f"{where}.content")
    return {"role": role, "content": [p for j, b in enumerate(blocks) if (p := _block(b, f"{where}.content[{j}]"))]}


def _block(block: Any, where: str) -> JSON | None:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind == "text":
        return {"text": block["text"]} if block.get("text") else None  # Converse refuses blank text
    if kind == "image":
        return _image(block, where)
    if kind == "tool_use":
        return {"toolUse": {"toolUseId": block.get("id"), "name": block.get("name"), "input": block.get("input") or {}}}
    if kind == "tool_result":
        result: JSON = {"toolUseId": block.get("tool_use_id"), "content": _result_content(block.get("content"), where)}
        if block.get("is_error"):
            result["status"] = "error"
        return {"toolResult": result}
    if kind in ("thinking", "redacted_thinking"):
        return None  # earlier reasoning: not needed for the answer
    raise UnsupportedParameter(f"{where}.type", f"content blocks of type {kind!r} are not supported for this model")


def _image(block: JSON, where: str) -> JSON:
    source = block.get("source") or {}
    image_format = _IMAGE_FORMATS.get(str(source.get("media_type")))
    if source.get("type") != "base64" or image_format is None:
        raise UnsupportedParameter(f"{where}.source", "only base64 png, jpeg, gif or webp images are supported")
    return {"image": {"format": image_format, "source": {"bytes": source.get("data")}}}


def _result_content(content: Any, where: str) -> list[JSON]:
    if content is None or isinstance(content, str):
        return [{"text": content or ""}]
    parts = []
    for j, block in enumerate(_list(content, f"{where}.content")):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append({"text": str(block.get("text") or "")})
        elif kind == "image":
            parts.append(_image(block, f"{where}.content[{j}]"))
        else:
            raise UnsupportedParameter(f"{where}.content[{j}].type", "only text and image tool results are supported")
    return parts


def _tool(tool: Any, where: str) -> JSON:
    if not isinstance(tool, dict) or tool.get("type", "custom") != "custom" or "input_schema" not in tool:
        raise UnsupportedParameter(f"{where}.type", "only custom tools with an input_schema are supported")
    spec: JSON = {"name": tool.get("name")}
    if tool.get("description"):
        spec["description"] = tool["description"]
    spec["inputSchema"] = {"json": tool["input_schema"]}
    return {"toolSpec": spec}


def _tool_choice(choice: Any) -> JSON:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "auto":
        return {"auto": {}}
    if kind == "any":
        return {"any": {}}
    if kind == "tool" and isinstance(choice.get("name"), str):
        return {"tool": {"name": choice["name"]}}
    raise UnsupportedParameter("tool_choice", "must be auto, any or a named tool (Converse has no 'none')")
