"""Anthropic Messages clients served by an OpenAI Chat Completions (or compatible) target.

Requests go Anthropic -> OpenAI; responses, streams and errors come back OpenAI -> Anthropic, so an
Anthropic SDK sees an ordinary message that names the model it asked for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from extproc.translators.base import PairTranslator, UnsupportedParameter
from extproc.translators.errors import (
    SHAPE_ERRORS,
    MalformedResponse,
    anthropic_error,
    openai_response_to_anthropic,
    shape_problem,
)
from extproc.translators.params import Rules, always, screen
from extproc.translators.sse import SSEEvent, StreamBase, named_event
from extproc.translators.wire import dumps, generated_id, loads_object

JSON = dict[str, Any]

_COPIED = ("max_tokens", "temperature", "top_p")  # same name, same meaning in both APIs
_UNSUPPORTED: Rules = {
    "top_k": (always, "top-k sampling is not supported for this model"),
    "thinking": (
        lambda thinking: not (isinstance(thinking, dict) and thinking.get("type") == "disabled"),
        "extended thinking is not supported for this model",
    ),
}
# What is translated, plus what does not change the answer (billing tier), so needs no translation.
_TRANSLATED = frozenset({*_COPIED, "model", "messages", "system", "stop_sequences", "metadata", "tools", "tool_choice"})
_TRANSLATED |= {"stream", "service_tier"}

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_TOOL_CHOICES: dict[str, Any] = {"auto": "auto", "any": "required", "none": "none"}


class AnthropicToOpenAI(PairTranslator):
    """Client speaks Anthropic messages, target speaks OpenAI chat."""

    client_api = "anthropic"
    provider_api = "openai"
    may_refuse = frozenset(_UNSUPPORTED) - {"temperature"}

    def request(self, body: dict[str, Any], target_model: str) -> dict[str, Any]:
        return translate_request(body, target_model)

    def _error_response(self, status: int, body: bytes, content_type: str) -> tuple[int, bytes]:
        return openai_response_to_anthropic(status, body, content_type)

    def _success_body(self, body: bytes, client_model: str) -> bytes:
        return dumps(translate_completion(loads_object(body), client_model))

    def _malformed_body(self, problem: Exception) -> bytes:
        return dumps(anthropic_error(shape_problem(problem), status=502))

    def stream(self, target_model: str, client_model: str, client_request: Mapping[str, Any]) -> AnthropicEventStream:
        return AnthropicEventStream(client_model)


# --- request: Anthropic -> OpenAI ---------------------------------------------------------------------------


def translate_request(body: Mapping[str, Any], target_model: str) -> JSON:
    params = screen(body, _UNSUPPORTED, _TRANSLATED)
    out: JSON = {"model": target_model, "messages": _system(params.get("system")) + _messages(params.get("messages"))}
    for name in _COPIED:
        if name in params:
            out[name] = params[name]
    if params.get("stop_sequences"):
        out["stop"] = params["stop_sequences"]
    metadata = params.get("metadata")
    if isinstance(metadata, dict) and metadata.get("user_id") is not None:
        out["user"] = metadata["user_id"]
    out.update(_tools(params))
    if params.get("stream"):
        # Usage only arrives in a final chunk when asked for; message_delta needs it for output_tokens.
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _system(system: Any) -> list[JSON]:
    if system is None:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    return [{"role": "system", "content": "\n\n".join(_texts(system, "system"))}]


def _messages(raw: Any) -> list[JSON]:
    if not isinstance(raw, list):
        raise UnsupportedParameter("messages", "must be a list of messages")
    out: list[JSON] = []
    for i, message in enumerate(raw):
        where = f"messages[{i}]"
        role = message.get("role") if isinstance(message, dict) else None
        convert = _ROLES.get(role) if isinstance(role, str) else None
        if convert is None:
            raise UnsupportedParameter(f"{where}.role", "must be 'user' or 'assistant'")
        content = message.get("content")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
        elif isinstance(content, list):
            out.extend(convert(content, where))
        else:
            raise UnsupportedParameter(f"{where}.content", "must be a string or a list of content blocks")
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
            raise UnsupportedParameter(f"{here}.type", f"content blocks of type {kind!r} are not supported here")
    return results + ([{"role": "user", "content": parts}] if parts else [])


def _image(source: Any, where: str) -> JSON:
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
    elif kind == "url":
        url = source.get("url")
    else:
        raise UnsupportedParameter(f"{where}.type", "images must be base64 or url sources")
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
            raise UnsupportedParameter(
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
        raise UnsupportedParameter(where, "must be a string or a list of text blocks")
    texts = []
    for j, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise UnsupportedParameter(f"{where}[{j}].type", "only text blocks are supported here")
        texts.append(str(block.get("text") or ""))
    return texts


def _tools(params: JSON) -> JSON:
    tools = params.get("tools")
    if not tools:
        return {}
    if not isinstance(tools, list):
        raise UnsupportedParameter("tools", "must be a list")
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
        raise UnsupportedParameter("tool_choice.type", "must be 'auto', 'any', 'tool' or 'none'")
    if choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False
    return out


def _tool(tool: Any, where: str) -> JSON:
    if not isinstance(tool, dict) or tool.get("type", "custom") != "custom":
        raise UnsupportedParameter(f"{where}.type", "server tools are not supported for this model")
    function: JSON = {"name": tool.get("name")}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = tool.get("input_schema")
    return {"type": "function", "function": function}


# --- response: OpenAI -> Anthropic ---------------------------------------------------------------------------


def translate_completion(completion: JSON | None, client_model: str) -> JSON:
    """An OpenAI chat.completion as an Anthropic message."""
    choices = completion.get("choices") if completion is not None else None
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
    message = choice.get("message") if choice is not None else None
    if completion is None or choice is None or not isinstance(message, dict):
        raise MalformedResponse("upstream answered with a body that is not a chat completion")
    text = message.get("content") or message.get("refusal")
    content: list[JSON] = [{"type": "text", "text": text}] if isinstance(text, str) and text else []
    content += [_tool_use(call) for call in message.get("tool_calls") or []]
    prompt, completion_tokens = _counts(completion.get("usage"))
    return {
        "id": "msg_" + str(completion.get("id") or generated_id("")),
        "type": "message",
        "role": "assistant",
        "model": client_model,
        "content": content,
        "stop_reason": _stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": {"input_tokens": prompt or 0, "output_tokens": completion_tokens or 0},
    }


def _tool_use(call: Any) -> JSON:
    function = call.get("function") if isinstance(call, dict) else None
    arguments = function.get("arguments") if isinstance(function, dict) else None
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) and arguments.strip() else {}
    except ValueError:
        parsed = None
    if not isinstance(function, dict) or not isinstance(parsed, dict):
        # An Anthropic client cannot represent it; a 502 lets it retry instead of crashing on a bad input.
        raise MalformedResponse("upstream answered with tool call arguments that are not a JSON object")
    return {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": parsed}


def _stop_reason(finish_reason: Any) -> str:
    return _STOP_REASONS.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn"


def _counts(usage: Any) -> tuple[int | None, int | None]:
    if not isinstance(usage, dict):
        return None, None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return (prompt if isinstance(prompt, int) else None), (completion if isinstance(completion, int) else None)


# --- stream: OpenAI chunks -> Anthropic events ---------------------------------------------------------------


class AnthropicEventStream(StreamBase):
    """`chat.completion.chunk` SSE in, Anthropic message events out.

    OpenAI reports usage (and the translator asked for it) only in a last chunk after the finish_reason,
    so message_delta and message_stop wait for `[DONE]`. Input tokens are unknown at message_start: it says
    0, and message_delta carries the real count.
    """

    def __init__(self, client_model: str) -> None:
        super().__init__()
        self._model = client_model
        self._started = False
        self._block: int | None = None  # index of the open content block
        self._block_kind = ""
        self._blocks = 0
        self._tool_blocks: dict[int, int] = {}  # OpenAI tool call index -> Anthropic block index
        self._stop_reason = "end_turn"

    def _error_event(self, message: str) -> bytes:
        return named_event("error", anthropic_error(message))

    def _events(self, events: list[SSEEvent]) -> bytes:
        out = []
        for event in events:
            if self._closed:
                break
            try:
                out.append(self._event(event))
            except SHAPE_ERRORS:
                out.append(self.fail("upstream sent a malformed stream event"))
        return b"".join(out)

    def _event(self, event: SSEEvent) -> bytes:
        if event.data.strip() == "[DONE]":
            return self._done()
        data = loads_object(event.data)
        if data is None:
            raise MalformedResponse("not a JSON object")
        if "error" in data or event.event == "error":
            return self._error(data.get("error", data))
        return self._chunk(data)

    def _chunk(self, chunk: JSON) -> bytes:
        out = [self._start(chunk.get("id"))]
        prompt, completion = _counts(chunk.get("usage"))
        self._input = prompt if prompt is not None else self._input
        self._output = completion if completion is not None else self._output
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # only one choice is ever asked for
            delta = choice.get("delta") or {}
            text = delta.get("content") or delta.get("refusal")
            if isinstance(text, str) and text:
                out.append(self._text(text))
            for call in delta.get("tool_calls") or []:
                out.append(self._tool_call(call))
            if choice.get("finish_reason"):
                self._stop_reason = _stop_reason(choice["finish_reason"])
                out.append(self._close_block())
        return b"".join(out)

    def _start(self, chunk_id: Any) -> bytes:
        if self._started:
            return b""
        self._started = True
        message: JSON = {
            "id": "msg_" + str(chunk_id or generated_id("")),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return named_event("message_start", {"type": "message_start", "message": message})

    def _text(self, text: str) -> bytes:
        self._first_token = True
        out = b"" if self._block_kind == "text" else self._open_block("text", {"type": "text", "text": ""})
        delta = {"type": "text_delta", "text": text}
        return out + named_event(
            "content_block_delta", {"type": "content_block_delta", "index": self._block, "delta": delta}
        )

    def _tool_call(self, call: Any) -> bytes:
        if not isinstance(call, dict):
            return b""
        function = call.get("function") or {}
        out = b""
        index = call.get("index", 0)
        if index not in self._tool_blocks:
            self._first_token = True
            block: JSON = {
                "type": "tool_use",
                "id": call.get("id") or generated_id("toolu_"),
                "name": function.get("name"),
                "input": {},
            }
            out = self._open_block("tool_use", block)
            self._tool_blocks[index] = self._blocks - 1
        arguments = function.get("arguments")
        if not arguments:
            return out
        delta = {"type": "input_json_delta", "partial_json": arguments}
        event = {"type": "content_block_delta", "index": self._tool_blocks[index], "delta": delta}
        return out + named_event("content_block_delta", event)

    def _open_block(self, kind: str, block: JSON) -> bytes:
        out = self._close_block()
        self._block, self._block_kind = self._blocks, kind
        self._blocks += 1
        event = {"type": "content_block_start", "index": self._block, "content_block": block}
        return out + named_event("content_block_start", event)

    def _close_block(self) -> bytes:
        if self._block is None:
            return b""
        event = {"type": "content_block_stop", "index": self._block}
        self._block, self._block_kind = None, ""
        return named_event("content_block_stop", event)

    def _done(self) -> bytes:
        out = self._start(None) + self._close_block()
        usage: JSON = {"output_tokens": self._output or 0}
        if self._input is not None:
            usage = {"input_tokens": self._input} | usage
        delta = {"stop_reason": self._stop_reason, "stop_sequence": None}
        out += named_event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        self._closed = True
        return out + named_event("message_stop", {"type": "message_stop"})

    def _error(self, error: Any) -> bytes:
        self._closed = True
        source = error if isinstance(error, dict) else None
        message = source.get("message") if source is not None else error
        return named_event("error", anthropic_error(str(message or "upstream error"), source))
