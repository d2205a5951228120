"""Request tools: Anthropic custom tools and tool_choice -> OpenAI function tools and tool_choice."""

from __future__ import annotations

from typing import Any

from extproc.translators.base import UnsupportedParameterError

JSON = dict[str, Any]

_TOOL_CHOICES: dict[str, Any] = {"auto": "auto", "any": "required", "none": "none"}


def translate_tools(params: JSON) -> JSON:
    tools = params.get("tools")
    if not tools:
        return {}
    if not isinstance(tools, list):
        raise UnsupportedParameterError("tools", "must be a list")
    out: JSON = {"tools": [_tool(tool, f"tools[{k}]") for k, tool in enumerate(tools)]}
    choice = params.get("tool_choice")
    if choice is None:
        return out
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "tool":
        out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif kind in _TOOL_CHOICES:
        out["tool_choice"] = _TOOL_CHOICES[kind]
    else:
        raise UnsupportedParameterError("tool_choice.type", "must be 'auto', 'any', 'tool' or 'none'")
    if choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False
    return out


def _tool(tool: Any, where: str) -> JSON:
    if not isinstance(tool, dict) or tool.get("type", "custom") != "custom":
        raise UnsupportedParameterError(f"{where}.type", "server tools are not supported for this model")
    function: JSON = {"name": tool.get("name")}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = tool.get("input_schema")
    return {"type": "function", "function": function}
