"""A chat completions request, as `anthropic_to_openai` translates an Anthropic one, rewritten into the same
request in OpenAI's Responses API: system messages become `instructions`, messages and tool calls input items,
function tools and `response_format` their Responses forms. Only what a token count reads is kept."""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]


def responses_request(chat: JSON) -> JSON:
    """The Responses request (`input_tokens` members only) for a chat completions request."""
    instructions: list[str] = []
    items: list[JSON] = []
    for message in chat["messages"]:
        role = message["role"]
        if role == "system":
            instructions.append(message["content"])
        elif role == "tool":
            items.append(
                {"type": "function_call_output", "call_id": message["tool_call_id"], "output": message["content"]}
            )
        elif role == "assistant":
            if message.get("content"):
                items.append({"role": "assistant", "content": message["content"]})
            items.extend(_function_call(call) for call in message.get("tool_calls", ()))
        else:
            items.append({"role": "user", "content": _user_content(message["content"])})
    out: JSON = {"model": chat["model"], "input": items}
    if instructions:
        out["instructions"] = "\n\n".join(instructions)
    if chat.get("tools"):
        out["tools"] = [_function_tool(tool["function"]) for tool in chat["tools"]]
    choice = chat.get("tool_choice")
    if choice is not None:
        out["tool_choice"] = (
            {"type": "function", "name": choice["function"]["name"]} if isinstance(choice, dict) else choice
        )
    if "parallel_tool_calls" in chat:
        out["parallel_tool_calls"] = chat["parallel_tool_calls"]
    response_format = chat.get("response_format")
    if response_format is not None:
        out["text"] = {"format": {"type": "json_schema", **response_format["json_schema"]}}
    if chat.get("reasoning_effort") is not None:
        out["reasoning"] = {"effort": chat["reasoning_effort"]}
    return out


def _user_content(content: str | list[JSON]) -> str | list[JSON]:
    if isinstance(content, str):
        return content
    return [
        {"type": "input_text", "text": part["text"]}
        if part["type"] == "text"
        else {"type": "input_image", "image_url": part["image_url"]["url"], "detail": "auto"}
        for part in content
    ]


def _function_call(call: JSON) -> JSON:
    function = call["function"]
    return {
        "type": "function_call",
        "call_id": call["id"],
        "name": function["name"],
        "arguments": function["arguments"],
    }


def _function_tool(function: JSON) -> JSON:
    """Chat function tools are not strict unless they say so; the Responses API's are, unless told otherwise."""
    tool: JSON = {"type": "function", "name": function["name"], "parameters": function.get("parameters")}
    if function.get("description"):
        tool["description"] = function["description"]
    tool["strict"] = bool(function.get("strict", False))
    return tool
