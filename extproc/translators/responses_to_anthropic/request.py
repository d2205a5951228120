"""Request: an OpenAI Responses request -> an Anthropic Messages request.

`instructions` and system/developer messages become the system prompt; `input` (text, or items: messages,
function calls and their outputs, reasoning) becomes alternating user/assistant messages; function tools,
`tool_choice`, `max_output_tokens`, `text.format` (a JSON schema) and `reasoning.effort` map to their
Anthropic counterparts. What needs OpenAI itself (stored responses, conversations, background runs, built-in
tools, prompt templates) is refused by name. Envoy keeps most such requests on a route's OpenAI targets
(controlplane/responses_only.py), so these refusals are for what it cannot see in the body (built-in tools,
items referring to stored ones) and for routes set up otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from extproc.translators.base import UnsupportedParameterError
from extproc.translators.params import Rules, always, screen
from extproc.translators.responses_to_anthropic.response import REDACTED_THINKING

JSON = dict[str, Any]

DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; the Responses API lets the model run to its limit.
_OPENAI_ONLY = "needs an OpenAI target (the route has none that can take this request)"
UNSUPPORTED: Rules = {
    "previous_response_id": (always, f"continuing a stored response {_OPENAI_ONLY}"),
    "conversation": (always, f"conversations {_OPENAI_ONLY}"),
    "store": (bool, f"storing responses {_OPENAI_ONLY}; send `store: false` to be served by any target"),
    "background": (bool, f"background responses {_OPENAI_ONLY}"),
    "prompt": (always, f"prompt templates {_OPENAI_ONLY}"),
    "top_logprobs": (always, "log probabilities are not available for this model"),
    "max_tool_calls": (always, "a cap on built-in tool calls is not supported for this model"),
    "include": (
        lambda values: not (isinstance(values, list) and set(values) <= {"reasoning.encrypted_content"}),
        "only `reasoning.encrypted_content` can be included for this model",
    ),
}
# Parameters whose mere presence can make a translation refuse, for routes that skip such targets.
MAY_REFUSE = frozenset(UNSUPPORTED) - {"store", "background", "include"}
_TRANSLATED = frozenset(
    {"model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "max_output_tokens"}
)
_TRANSLATED |= {"text", "reasoning", "stream", "temperature", "top_p", "user", "safety_identifier"}
# Translated as nothing: they do not change the answer (metadata, billing tier, cache routing, truncation of a
# context no longer than the client sent, the stream's obfuscation padding).
_TRANSLATED |= {"metadata", "service_tier", "prompt_cache_key", "prompt_cache_retention", "truncation"}
_TRANSLATED |= {"stream_options"}

# Responses effort -> Anthropic output_config.effort (Anthropic has no "minimal": the nearest is "low")
_EFFORT = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh"}
_DATA_URL = re.compile(r"data:(?P<media_type>[^;,]+)(?:;[^;,]*)*;base64,(?P<data>.*)", re.DOTALL)
_TOOL_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


def translate_request(body: Mapping[str, Any], target_model: str, sampling: bool = False) -> JSON:
    """The Anthropic request. `sampling`: keep `temperature` and `top_p`, which the current Messages API no
    longer defines but the Anthropic-shaped form other pairs translate from still carries to their provider."""
    params = screen(body, UNSUPPORTED, _TRANSLATED)
    system, messages = translate_input(params.get("input"))
    instructions = params.get("instructions")
    if isinstance(instructions, str) and instructions:
        system.insert(0, instructions)
    elif instructions is not None and not isinstance(instructions, str):
        raise UnsupportedParameterError("instructions", "must be a string for this model")
    out: JSON = {"model": target_model, "messages": messages, "max_tokens": params.get("max_output_tokens")}
    if out["max_tokens"] is None:
        out["max_tokens"] = DEFAULT_MAX_TOKENS
    if system:
        out["system"] = "\n\n".join(system)
    if sampling:
        out.update({name: params[name] for name in ("temperature", "top_p") if name in params})
    if params.get("stream") is True:
        out["stream"] = True
    user = params.get("safety_identifier", params.get("user"))
    if user is not None:
        out["metadata"] = {"user_id": user}
    out.update(translate_tools(params, messages))
    output_config = {**_format(params.get("text")), **_effort(params.get("reasoning"))}
    if output_config:
        out["output_config"] = output_config
    return out


def translate_input(raw: Any) -> tuple[list[str], list[JSON]]:
    """(system texts, alternating messages) of the `input`."""
    if isinstance(raw, str):
        return [], [{"role": "user", "content": raw}]
    if not isinstance(raw, list):
        raise UnsupportedParameterError("input", "must be a string or a list of input items")
    system: list[str] = []
    messages: list[JSON] = []
    for i, item in enumerate(raw):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise UnsupportedParameterError(where, "must be an object")
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role in ("system", "developer"):
                system.append("\n\n".join(_texts(item.get("content"), f"{where}.content")))
                continue
            if role not in ("user", "assistant"):
                raise UnsupportedParameterError(f"{where}.role", f"role {role!r} is not supported for this model")
            _append(messages, role, _content(item.get("content"), f"{where}.content"))
        elif kind == "function_call":
            _append(messages, "assistant", [_tool_use(item, where)])
        elif kind == "function_call_output":
            _append(messages, "user", [_tool_result(item, where)])
        elif kind == "reasoning":
            thinking = _thinking(item)
            if thinking is not None:
                _append(messages, "assistant", [thinking])
        elif kind == "item_reference":
            raise UnsupportedParameterError(f"{where}.type", f"references to stored items {_OPENAI_ONLY}")
        else:
            raise UnsupportedParameterError(f"{where}.type", f"input items of type {kind!r} {_OPENAI_ONLY}")
    return system, messages


def _append(messages: list[JSON], role: str, content: str | list[JSON]) -> None:
    """Anthropic requires strict alternation: consecutive turns of one role are merged."""
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"] = _blocks(messages[-1]["content"]) + _blocks(content)
    else:
        messages.append({"role": role, "content": content})


def _blocks(content: str | list[JSON]) -> list[JSON]:
    if isinstance(content, list):
        return content
    return [{"type": "text", "text": content}] if content else []


def _content(content: Any, where: str) -> str | list[JSON]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise UnsupportedParameterError(where, "must be a string or a list of content parts")
    blocks = [_part(part, f"{where}[{j}]") for j, part in enumerate(content)]
    return [block for block in blocks if block.get("type") != "text" or block.get("text")]  # no empty text


def _part(part: Any, where: str) -> JSON:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": str(part.get("text") or "")}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal") or "")}
    if kind == "input_image":
        return _image(part, where)
    raise UnsupportedParameterError(f"{where}.type", f"content parts of type {kind!r} are not supported for this model")


def _image(part: JSON, where: str) -> JSON:
    url = part.get("image_url")  # `detail` has no equivalent; `file_id` names a file stored at OpenAI
    if part.get("file_id") is not None or not isinstance(url, str):
        raise UnsupportedParameterError(f"{where}.image_url", f"images by file_id {_OPENAI_ONLY}; send an image_url")
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    match = _DATA_URL.fullmatch(url)
    if match is None:
        raise UnsupportedParameterError(f"{where}.image_url", "must be an http(s) URL or a base64 data URL")
    return {"type": "image", "source": {"type": "base64", "media_type": match["media_type"], "data": match["data"]}}


def _texts(content: Any, where: str) -> list[str]:
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise UnsupportedParameterError(where, "must be a string or a list of text parts")
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in ("input_text", "output_text"):
            raise UnsupportedParameterError(f"{where}[{j}].type", "only text parts are supported in instructions")
        texts.append(str(part.get("text") or ""))
    return texts


def tool_id(raw: Any, where: str) -> str:
    """Anthropic only accepts [a-zA-Z0-9_-] ids; other ids are made to fit, alike on a call and its output."""
    if not isinstance(raw, str) or not raw:
        raise UnsupportedParameterError(where, "is required")
    return _TOOL_ID_UNSAFE.sub("_", raw)


def _tool_use(item: JSON, where: str) -> JSON:
    arguments = item.get("arguments")
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) and arguments.strip() else {}
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise UnsupportedParameterError(f"{where}.arguments", "must be a JSON object")
    return {
        "type": "tool_use",
        "id": tool_id(item.get("call_id"), f"{where}.call_id"),
        "name": item.get("name"),
        "input": parsed,
    }


def _tool_result(item: JSON, where: str) -> JSON:
    output = item.get("output")
    content: str | list[JSON]
    if isinstance(output, str):
        content = output
    elif isinstance(output, list):
        content = [_part(part, f"{where}.output[{j}]") for j, part in enumerate(output)]
    else:
        raise UnsupportedParameterError(f"{where}.output", "must be a string or a list of content parts")
    return {"type": "tool_result", "tool_use_id": tool_id(item.get("call_id"), f"{where}.call_id"), "content": content}


def _thinking(item: JSON) -> JSON | None:
    """A reasoning item goes back as the thinking block it came from: its signature travels in
    `encrypted_content` (see `response`), or a redacted block's data behind `REDACTED_THINKING`. Without one
    (another provider's reasoning) it cannot: dropped."""
    signature = item.get("encrypted_content")
    if not isinstance(signature, str) or not signature:
        return None
    if signature.startswith(REDACTED_THINKING):
        return {"type": "redacted_thinking", "data": signature[len(REDACTED_THINKING) :]}
    parts = [*(item.get("content") or []), *(item.get("summary") or [])]
    text = "".join(str(part.get("text") or "") for part in parts if isinstance(part, dict))
    return {"type": "thinking", "thinking": text, "signature": signature}


def translate_tools(params: JSON, messages: list[JSON]) -> JSON:
    """Function tools and `tool_choice`; built-in tools (web search, file search, ...) are OpenAI's own."""
    tools = params.get("tools")
    if not tools:
        return {}
    if not isinstance(tools, list):
        raise UnsupportedParameterError("tools", "must be a list")
    converted = [_tool(tool, f"tools[{k}]") for k, tool in enumerate(tools)]
    choice = params.get("tool_choice", "auto")
    if choice == "none":
        if not any(
            isinstance(b, dict) and b.get("type") == "tool_use" for m in messages for b in _blocks(m["content"])
        ):
            return {}
        return {"tools": converted, "tool_choice": {"type": "none"}}
    anthropic_choice = _tool_choice(choice)
    if params.get("parallel_tool_calls") is False:
        anthropic_choice["disable_parallel_tool_use"] = True
    return {"tools": converted, "tool_choice": anthropic_choice}


def _tool(tool: Any, where: str) -> JSON:
    kind = tool.get("type") if isinstance(tool, dict) else None
    if kind != "function":
        raise UnsupportedParameterError(f"{where}.type", f"the built-in tool {kind!r} {_OPENAI_ONLY}")
    out: JSON = {"name": tool.get("name")}
    if tool.get("description"):
        out["description"] = tool["description"]
    out["input_schema"] = tool.get("parameters") or {"type": "object", "properties": {}}
    return out


def _tool_choice(choice: Any) -> JSON:
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "tool", "name": choice["name"]}
    raise UnsupportedParameterError("tool_choice", "must be 'auto', 'none', 'required' or a named function")


def json_schema(text: Any) -> JSON | None:
    """The JSON schema `text.format` asks the answer to follow; None for plain text."""
    if text is None:
        return None
    fmt = text.get("format") if isinstance(text, dict) else None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if fmt is None or kind == "text":
        return None
    if kind == "json_schema" and isinstance(fmt.get("schema"), dict):
        schema: JSON = fmt["schema"]
        return schema
    raise UnsupportedParameterError("text.format", "must be text or json_schema with a schema for this model")


def _format(text: Any) -> JSON:
    if isinstance(text, dict) and text.get("verbosity") not in (None, "medium"):
        raise UnsupportedParameterError("text.verbosity", "is not supported for this model")
    schema = json_schema(text)
    return {} if schema is None else {"format": {"type": "json_schema", "schema": schema}}


def reasoning_effort(reasoning: Any) -> str | None:
    """The Responses `reasoning.effort`, checked; None when absent or "none"."""
    if reasoning is None:
        return None
    effort = reasoning.get("effort") if isinstance(reasoning, dict) else "?"
    if effort is None or effort == "none":
        return None
    if effort not in _EFFORT:
        raise UnsupportedParameterError("reasoning.effort", f"must be one of none, {', '.join(_EFFORT)}")
    return str(effort)


def _effort(reasoning: Any) -> JSON:
    effort = reasoning_effort(reasoning)
    return {} if effort is None else {"effort": _EFFORT[effort]}
