"""Request: Anthropic messages -> a Bedrock Converse body.

Converse takes the model in the path (controlplane/providers/bedrock.py), the system prompt as a list of
blocks, sampling in `inferenceConfig`, tools in `toolConfig`, structured output and effort in `outputConfig`,
and what only some models understand (top_k, extended thinking: Anthropic's own names, since Anthropic models
are who understand them) in `additionalModelRequestFields`. Blobs (image bytes, redacted reasoning) are base64
text in Converse's JSON, as in Anthropic's.

Prompt caching: Converse marks the end of a cached prefix with a `cachePoint` block of its own, after the
block Anthropic marks with `cache_control` (in the system prompt, in messages and in tools). A top-level
`cache_control` marks the last block of the request, as Anthropic's automatic caching does. Thinking blocks
in the history go back as `reasoningContent` with their signatures: a model that thought before a tool call
refuses the continuation without them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from extproc.translators.base import UnsupportedParameterError
from extproc.translators.params import output_schema, screen

JSON = dict[str, Any]

_INFERENCE = {
    "max_tokens": "maxTokens",
    "temperature": "temperature",
    "top_p": "topP",
    "stop_sequences": "stopSequences",
}
_MODEL_FIELDS = ("top_k", "thinking")  # passed to the model as they are
_TRANSLATED = frozenset({*_INFERENCE, *_MODEL_FIELDS, "model", "messages", "system", "tools", "tool_choice"})
_TRANSLATED |= {"cache_control", "output_config"}
_TRANSLATED |= {"metadata", "service_tier", "stream"}  # no effect on the answer; the path says `stream`
_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}


def translate_request(body: Mapping[str, Any], target_model: str) -> JSON:
    params = screen(body, {}, _TRANSLATED)
    out: JSON = {"messages": [_message(m, f"messages[{i}]") for i, m in enumerate(_list(params.get("messages")))]}
    _mark_last_block(out["messages"], params.get("cache_control"))
    system = _system(params.get("system"))
    if system:
        out["system"] = system
    inference = {converse: params[name] for name, converse in _INFERENCE.items() if name in params}
    if inference:
        out["inferenceConfig"] = inference
    extra = {name: params[name] for name in _MODEL_FIELDS if name in params}
    if extra:
        out["additionalModelRequestFields"] = extra
    output_config = _output_config(params.get("output_config"))
    if output_config:
        out["outputConfig"] = output_config
    tools = params.get("tools")
    if tools:
        config: JSON = {
            "tools": [t for i, tool in enumerate(_list(tools, "tools")) for t in _tool(tool, f"tools[{i}]")]
        }
        choice = params.get("tool_choice")
        if choice is not None:
            config["toolChoice"] = _tool_choice(choice)
        out["toolConfig"] = config
    return out


def _list(value: Any, where: str = "messages") -> list[Any]:
    if not isinstance(value, list):
        raise UnsupportedParameterError(where, "must be a list")
    return value


def _cache_point(cache_control: Any) -> JSON:
    """Converse's marker for an Anthropic `cache_control` (`{"type": "ephemeral", "ttl": ...}`)."""
    point: JSON = {"type": "default"}
    if isinstance(cache_control, dict) and cache_control.get("ttl") is not None:
        point["ttl"] = cache_control["ttl"]  # both APIs know 5m and 1h
    return {"cachePoint": point}


def _cached(blocks: list[JSON], block: Any) -> list[JSON]:
    """`blocks` followed by a cache point if the Anthropic block they came from is marked (and they are some)."""
    marker = block.get("cache_control") if isinstance(block, dict) else None
    return [*blocks, _cache_point(marker)] if marker is not None and blocks else blocks


def _mark_last_block(messages: list[JSON], cache_control: Any) -> None:
    """A top-level `cache_control`: a cache point after the last block of the request, unless one is there."""
    if cache_control is None or not messages or not messages[-1]["content"]:
        return
    content = messages[-1]["content"]
    if "cachePoint" not in content[-1]:
        content.append(_cache_point(cache_control))


def _output_config(config: Any) -> JSON:
    """Anthropic `output_config` -> Converse `outputConfig`: the same effort levels, and the schema as JSON text."""
    if not isinstance(config, dict):
        return {}
    out: JSON = {}
    if config.get("effort") is not None:
        out["effort"] = config["effort"]
    schema = output_schema(config)
    if schema is not None:
        structure = {"jsonSchema": {"schema": json.dumps(schema, ensure_ascii=False)}}
        out["textFormat"] = {"type": "json_schema", "structure": structure}
    return out


def _system(system: Any) -> list[JSON]:
    if system is None or isinstance(system, str):
        return [{"text": system}] if system else []
    blocks: list[JSON] = []
    for i, block in enumerate(_list(system, "system")):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise UnsupportedParameterError(f"system[{i}]", "only text blocks are supported for this model")
        blocks += _cached([{"text": block["text"]}] if block.get("text") else [], block)
    return blocks


def _message(message: Any, where: str) -> JSON:
    role = message.get("role") if isinstance(message, dict) else None
    if role not in ("user", "assistant"):
        raise UnsupportedParameterError(f"{where}.role", "must be 'user' or 'assistant'")
    content = message.get("content")
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else _list(content, f"{where}.content")
    out: list[JSON] = []
    for j, block in enumerate(blocks):
        part = _block(block, f"{where}.content[{j}]")
        out = _cached([*out, part] if part is not None else out, block)
    return {"role": role, "content": out}


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
    if kind == "thinking":
        text: JSON = {"text": str(block.get("thinking") or "")}
        if block.get("signature"):
            text["signature"] = block["signature"]
        return {"reasoningContent": {"reasoningText": text}}
    if kind == "redacted_thinking":
        return {"reasoningContent": {"redactedContent": block.get("data")}}
    raise UnsupportedParameterError(
        f"{where}.type", f"content blocks of type {kind!r} are not supported for this model"
    )


def _image(block: JSON, where: str) -> JSON:
    source = block.get("source") or {}
    image_format = _IMAGE_FORMATS.get(str(source.get("media_type")))
    if source.get("type") != "base64" or image_format is None:
        raise UnsupportedParameterError(f"{where}.source", "only base64 png, jpeg, gif or webp images are supported")
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
            raise UnsupportedParameterError(
                f"{where}.content[{j}].type", "only text and image tool results are supported"
            )
    return parts


def _tool(tool: Any, where: str) -> list[JSON]:
    """A tool's spec, and the cache point that follows it when the tool is marked."""
    if not isinstance(tool, dict) or tool.get("type", "custom") != "custom" or "input_schema" not in tool:
        raise UnsupportedParameterError(f"{where}.type", "only custom tools with an input_schema are supported")
    spec: JSON = {"name": tool.get("name")}
    if tool.get("description"):
        spec["description"] = tool["description"]
    spec["inputSchema"] = {"json": tool["input_schema"]}
    return _cached([{"toolSpec": spec}], tool)


def _tool_choice(choice: Any) -> JSON:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "auto":
        return {"auto": {}}
    if kind == "any":
        return {"any": {}}
    if kind == "tool" and isinstance(choice.get("name"), str):
        return {"tool": {"name": choice["name"]}}
    raise UnsupportedParameterError("tool_choice", "must be auto, any or a named tool (Converse has no 'none')")
