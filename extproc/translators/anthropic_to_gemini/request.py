"""Request: Anthropic messages -> a Gemini `generateContent` body.

Gemini takes the model in the path (controlplane/providers/gemini.py), the system prompt as
`systemInstruction`, turns as `contents` with roles `user` and `model`, sampling in `generationConfig`,
tools as `functionDeclarations`. A tool result names its function, not the call's id, so the name is
looked up from the assistant turn that made the call. A call's `thoughtSignature` comes back inside its id
(`signatures`). Structured output and effort go to `generationConfig` (`responseJsonSchema`,
`thinkingConfig.thinkingLevel`).

Prompt-cache markers (`cache_control`, on blocks and at the top level) are dropped without error: Gemini has
no per-request cache marker. It caches repeated prefixes by itself (implicit caching), and its explicit
caching is a `cachedContent` resource created beforehand through another API. The cached tokens still come
back in the answer's usage (`cachedContentTokenCount`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from extproc.translators.anthropic_to_gemini.signatures import signature_of
from extproc.translators.base import UnsupportedParameterError
from extproc.translators.params import output_schema, screen

JSON = dict[str, Any]

# Anthropic parameter -> Gemini generationConfig member
_GENERATION = {
    "max_tokens": "maxOutputTokens",
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "stop_sequences": "stopSequences",
}
# What is translated, plus what does not change the answer (user id, billing tier, the stream flag: the
# path says it), so needs no translation.
_TRANSLATED = frozenset({*_GENERATION, "model", "messages", "system", "tools", "tool_choice", "thinking"})
_TRANSLATED |= {"metadata", "service_tier", "stream", "cache_control", "output_config"}
_ROLES = {"user": "user", "assistant": "model"}
# Anthropic output_config.effort -> Gemini thinkingLevel (google-genai's ThinkingLevel has no level above XHIGH)
_THINKING_LEVELS = {"low": "LOW", "medium": "MEDIUM", "high": "HIGH", "xhigh": "XHIGH", "max": "XHIGH"}


def translate_request(body: Mapping[str, Any], target_model: str) -> JSON:
    params = screen(body, {}, _TRANSLATED)
    out: JSON = {"contents": _contents(params.get("messages"))}
    system = _system(params.get("system"))
    if system:
        out["systemInstruction"] = {"parts": [{"text": system}]}
    generation = {gemini: params[name] for name, gemini in _GENERATION.items() if name in params}
    generation.update(_output_config(params.get("output_config"), params.get("thinking")))
    if generation:
        out["generationConfig"] = generation
    tools = params.get("tools")
    if tools:
        out["tools"] = [{"functionDeclarations": [_declaration(t, f"tools[{i}]") for i, t in enumerate(tools)]}]
        choice = params.get("tool_choice")
        if choice is not None:
            out["toolConfig"] = {"functionCallingConfig": _calling_config(choice)}
    return out


def _output_config(config: Any, thinking: Any) -> JSON:
    """`output_config` and `thinking` -> generationConfig members. Gemini takes a thinking level or a budget,
    never both: an effort wins over a budget."""
    config = config if isinstance(config, dict) else {}
    out: JSON = {}
    schema = output_schema(config)
    if schema is not None:
        out["responseMimeType"] = "application/json"
        out["responseJsonSchema"] = schema
    effort = config.get("effort")
    if effort is not None:
        if effort not in _THINKING_LEVELS:
            raise UnsupportedParameterError("output_config.effort", "must be low, medium, high, xhigh or max")
        out["thinkingConfig"] = {"thinkingLevel": _THINKING_LEVELS[effort]}
    elif isinstance(thinking, dict) and thinking.get("type") == "enabled":
        out["thinkingConfig"] = {"thinkingBudget": thinking.get("budget_tokens")}
    return out


def _system(system: Any) -> str:
    if system is None or isinstance(system, str):
        return system or ""
    if not isinstance(system, list):
        raise UnsupportedParameterError("system", "must be a string or a list of text blocks")
    texts = []
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise UnsupportedParameterError(f"system[{i}]", "only text blocks are supported for this model")
        texts.append(str(block.get("text") or ""))
    return "\n\n".join(texts)


def _contents(messages: Any) -> list[JSON]:
    if not isinstance(messages, list):
        raise UnsupportedParameterError("messages", "must be a list of messages")
    names: dict[str, str] = {}  # tool_use id -> function name, for the results that answer them
    contents: list[JSON] = []
    for i, message in enumerate(messages):
        role = _ROLES.get(str(message.get("role"))) if isinstance(message, dict) else None
        if role is None:
            raise UnsupportedParameterError(f"messages[{i}].role", "must be 'user' or 'assistant'")
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if not isinstance(blocks, list):
            raise UnsupportedParameterError(f"messages[{i}].content", "must be a string or a list of blocks")
        parts = [p for j, b in enumerate(blocks) if (p := _part(b, names, f"messages[{i}].content[{j}]"))]
        if parts:
            contents.append({"role": role, "parts": parts})
    return contents


def _part(block: Any, names: dict[str, str], where: str) -> JSON | None:
    kind = block.get("type") if isinstance(block, dict) else None
    if kind == "text":
        return {"text": str(block.get("text") or "")} if block.get("text") else None
    if kind == "image":
        source = block.get("source") or {}
        if source.get("type") != "base64":
            raise UnsupportedParameterError(f"{where}.source", "only base64 images are supported for this model")
        return {"inlineData": {"mimeType": source.get("media_type"), "data": source.get("data")}}
    if kind == "tool_use":
        names[str(block.get("id"))] = str(block.get("name"))
        part: JSON = {"functionCall": {"name": block.get("name"), "args": block.get("input") or {}}}
        signature = signature_of(str(block.get("id")))
        if signature is not None:
            part["thoughtSignature"] = signature
        return part
    if kind == "tool_result":
        name = names.get(str(block.get("tool_use_id")))
        if name is None:
            raise UnsupportedParameterError(f"{where}.tool_use_id", "answers no earlier tool_use block")
        key = "error" if block.get("is_error") else "content"
        return {"functionResponse": {"name": name, "response": {key: _result_text(block.get("content"), where)}}}
    if kind in ("thinking", "redacted_thinking"):
        return None  # another model's reasoning: Gemini cannot take it back, and the answer does not need it
    raise UnsupportedParameterError(
        f"{where}.type", f"content blocks of type {kind!r} are not supported for this model"
    )


def _result_text(content: Any, where: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for block in content if isinstance(content, list) else [None]:
        if not isinstance(block, dict) or block.get("type") != "text":
            raise UnsupportedParameterError(f"{where}.content", "only text tool results are supported for this model")
        texts.append(str(block.get("text") or ""))
    return "\n\n".join(texts)


def _declaration(tool: Any, where: str) -> JSON:
    if not isinstance(tool, dict) or tool.get("type", "custom") != "custom" or "input_schema" not in tool:
        raise UnsupportedParameterError(f"{where}.type", "only custom tools with an input_schema are supported")
    out: JSON = {"name": tool.get("name")}
    if tool.get("description"):
        out["description"] = tool["description"]
    out["parametersJsonSchema"] = tool["input_schema"]
    return out


def _calling_config(choice: Any) -> JSON:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "auto":
        return {"mode": "AUTO"}
    if kind == "any":
        return {"mode": "ANY"}
    if kind == "none":
        return {"mode": "NONE"}
    if kind == "tool" and isinstance(choice.get("name"), str):
        return {"mode": "ANY", "allowedFunctionNames": [choice["name"]]}
    raise UnsupportedParameterError("tool_choice", "must be auto, any, none or a named tool")
