"""Request tools: OpenAI function tools and tool_choice -> Anthropic tools and tool_choice."""

from __future__ import annotations

from typing import Any

from extproc.translators.base import UnsupportedParameterError

JSON = dict[str, Any]


def translate_tools(params: JSON, messages: list[JSON]) -> JSON:
    """The `tools` and `tool_choice` of the Anthropic request; `messages` are the already translated ones."""
    tools = params.get("tools")
    if not tools:
        return {}
    if not isinstance(tools, list):
        raise UnsupportedParameterError("tools", "must be a list")
    choice = params.get("tool_choice", "auto")
    if choice == "none":
        # Without tools the model cannot call one; but a history holding tool calls needs the definitions.
        if not _has_tool_blocks(messages):
            return {}
        anthropic_choice: JSON = {"type": "none"}
    else:
        anthropic_choice = _tool_choice(choice)
        if params.get("parallel_tool_calls") is False:
            anthropic_choice["disable_parallel_tool_use"] = True
    return {"tools": [_tool(tool, f"tools[{k}]") for k, tool in enumerate(tools)], "tool_choice": anthropic_choice}


def _tool_choice(choice: Any) -> JSON:
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    function = choice.get("function") if isinstance(choice, dict) and choice.get("type") == "function" else None
    if isinstance(function, dict) and isinstance(function.get("name"), str):
        return {"type": "tool", "name": function["name"]}
    raise UnsupportedParameterError("tool_choice", "must be 'auto', 'none', 'required' or a named function")


def _tool(tool: Any, where: str) -> JSON:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict):
        raise UnsupportedParameterError(f"{where}.type", "only function tools are supported for this model")
    out: JSON = {"name": function.get("name")}
    if function.get("description"):
        out["description"] = function["description"]
    out["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
    return out


def _has_tool_blocks(messages: list[JSON]) -> bool:
    return any(
        isinstance(block, dict) and block.get("type") in ("tool_use", "tool_result")
        for message in messages
        if isinstance(message["content"], list)
        for block in message["content"]
    )
