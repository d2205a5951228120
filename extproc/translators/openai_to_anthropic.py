"""OpenAI Chat Completions clients served by an Anthropic Messages target.

Requests go OpenAI -> Anthropic; responses, streams and errors come back Anthropic -> OpenAI, so an OpenAI
SDK sees an ordinary chat completion that names the model it asked for.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from extproc.translators.base import PairTranslator, UnsupportedParameter
from extproc.translators.errors import (
    SHAPE_ERRORS,
    MalformedResponse,
    anthropic_response_to_openai,
    openai_error,
    shape_problem,
)
from extproc.translators.params import Rules, always, screen
from extproc.translators.sse import DONE, SSEEvent, StreamBase, data_event
from extproc.translators.wire import dumps, generated_id, loads_object

JSON = dict[str, Any]
Content = str | list[JSON]

DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; OpenAI lets the model run to its own limit.

_COPIED = ("temperature", "top_p", "stream")  # same name, same meaning in both APIs
_UNSUPPORTED: Rules = {
    "temperature": (lambda t: isinstance(t, int | float) and t > 1, "must be between 0 and 1 for this model"),
    "n": (lambda n: n != 1, "only one choice per request is supported for this model"),
    "logprobs": (bool, "log probabilities are not available for this model"),
    "top_logprobs": (always, "log probabilities are not available for this model"),
    "presence_penalty": (lambda p: p != 0, "repetition penalties are not supported for this model"),
    "frequency_penalty": (lambda p: p != 0, "repetition penalties are not supported for this model"),
    "logit_bias": (bool, "token biases are not supported for this model"),
    "seed": (always, "seeded sampling is not supported for this model"),
    "response_format": (
        lambda f: not (isinstance(f, dict) and f.get("type") == "text"),
        "JSON mode and JSON schemas are not supported for this model",
    ),
}
_TRANSLATED = frozenset({*_COPIED, "model", "messages", "max_tokens", "max_completion_tokens", "stop", "user"})
_TRANSLATED |= {"stream_options", "safety_identifier", "tools", "tool_choice", "parallel_tool_calls"}
# Translated as nothing: they do not change the answer (storage, billing tier, cache routing).
_TRANSLATED |= {"store", "metadata", "service_tier", "prompt_cache_key"}

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_DATA_URL = re.compile(r"data:(?P<media_type>[^;,]+)(?:;[^;,]*)*;base64,(?P<data>.*)", re.DOTALL)
_TOOL_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


class OpenAIToAnthropic(PairTranslator):
    """Client speaks OpenAI chat, target speaks Anthropic messages."""

    client_api = "openai"
    provider_api = "anthropic"
    may_refuse = frozenset(_UNSUPPORTED) - {"temperature"}

    def request(self, body: dict[str, Any], target_model: str) -> dict[str, Any]:
        return translate_request(body, target_model)

    def _error_response(self, status: int, body: bytes, content_type: str) -> tuple[int, bytes]:
        return anthropic_response_to_openai(status, body, content_type)

    def _success_body(self, body: bytes, client_model: str) -> bytes:
        return dumps(translate_message(loads_object(body), client_model))

    def _malformed_body(self, problem: Exception) -> bytes:
        return dumps(openai_error(shape_problem(problem)))

    def stream(self, target_model: str, client_model: str, client_request: Mapping[str, Any]) -> OpenAIChunkStream:
        options = client_request.get("stream_options")
        return OpenAIChunkStream(client_model, isinstance(options, dict) and options.get("include_usage") is True)


# --- request: OpenAI -> Anthropic ---------------------------------------------------------------------------


def translate_request(body: Mapping[str, Any], target_model: str) -> JSON:
    params = screen(body, _UNSUPPORTED, _TRANSLATED)
    system, messages = _messages(params.get("messages"))
    out: JSON = {
        "model": target_model,
        "messages": messages,
        "max_tokens": params.get("max_completion_tokens", params.get("max_tokens", DEFAULT_MAX_TOKENS)),
    }
    if system is not None:
        out["system"] = system
    for name in _COPIED:
        if name in params:
            out[name] = params[name]
    stop = params.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else stop
    user = params.get("safety_identifier", params.get("user"))
    if user is not None:
        out["metadata"] = {"user_id": user}
    out.update(_tools(params, messages))
    return out


def _messages(raw: Any) -> tuple[str | None, list[JSON]]:
    """System/developer messages become the top-level system prompt; the rest must alternate user/assistant."""
    if not isinstance(raw, list):
        raise UnsupportedParameter("messages", "must be a list of messages")
    system: list[str] = []
    out: list[JSON] = []
    for i, message in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise UnsupportedParameter(where, "must be an object")
        role = message.get("role")
        if role in ("system", "developer"):
            system.append("\n\n".join(_texts(message.get("content"), f"{where}.content", ("text",))))
            continue
        convert = _ROLES.get(role) if isinstance(role, str) else None
        if convert is None:
            raise UnsupportedParameter(f"{where}.role", f"role {role!r} is not supported for this model")
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
        raise UnsupportedParameter(f"{where}.content", "must be a string or a list of content parts")
    return "user", [_user_part(part, f"{where}.content[{j}]") for j, part in enumerate(content)]


def _user_part(part: Any, where: str) -> JSON:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        return {"type": "text", "text": part.get("text")}
    if kind == "image_url":
        return _image(part.get("image_url"), f"{where}.image_url")
    raise UnsupportedParameter(f"{where}.type", f"content parts of type {kind!r} are not supported for this model")


def _image(image_url: Any, where: str) -> JSON:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url  # `detail` has no equivalent
    if isinstance(url, str) and url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    match = _DATA_URL.fullmatch(url) if isinstance(url, str) else None
    if match is None:
        raise UnsupportedParameter(f"{where}.url", "must be an http(s) URL or a base64 data URL")
    return {"type": "image", "source": {"type": "base64", "media_type": match["media_type"], "data": match["data"]}}


def _assistant(message: JSON, where: str) -> tuple[str, Content]:
    content = message.get("content")
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise UnsupportedParameter(f"{where}.tool_calls", "must be a list")
    if isinstance(content, str) and not calls:
        return "assistant", content
    texts = _texts(content, f"{where}.content", ("text", "refusal"))
    blocks: list[JSON] = [{"type": "text", "text": text} for text in texts if text]  # no empty text blocks
    blocks += [_tool_use(call, f"{where}.tool_calls[{k}]") for k, call in enumerate(calls)]
    return "assistant", blocks


def _tool_use(call: Any, where: str) -> JSON:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or call.get("type", "function") != "function":
        raise UnsupportedParameter(f"{where}.type", "only function tool calls are supported")
    arguments = function.get("arguments")
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) and arguments.strip() else {}
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise UnsupportedParameter(f"{where}.function.arguments", "must be a JSON object")
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
        raise UnsupportedParameter(where, "must be a string or a list of content parts")
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in kinds:
            raise UnsupportedParameter(f"{where}[{j}].type", f"content parts of type {kind!r} are not supported here")
        texts.append(str(part.get(kind) or ""))
    return texts


def _tool_id(raw: Any, where: str) -> str:
    """Anthropic only accepts [a-zA-Z0-9_-] ids; ids from other providers are made to fit, the same way on
    the call and on its result, so the pair still matches."""
    if not isinstance(raw, str) or not raw:
        raise UnsupportedParameter(where, "is required")
    return _TOOL_ID_UNSAFE.sub("_", raw)


def _blocks(content: Content) -> list[JSON]:
    if isinstance(content, list):
        return content
    return [{"type": "text", "text": content}] if content else []


def _tools(params: JSON, messages: list[JSON]) -> JSON:
    tools = params.get("tools")
    if not tools:
        return {}
    if not isinstance(tools, list):
        raise UnsupportedParameter("tools", "must be a list")
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
    raise UnsupportedParameter("tool_choice", "must be 'auto', 'none', 'required' or a named function")


def _tool(tool: Any, where: str) -> JSON:
    function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(function, dict):
        raise UnsupportedParameter(f"{where}.type", "only function tools are supported for this model")
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


# --- response: Anthropic -> OpenAI ---------------------------------------------------------------------------


def translate_message(message: JSON | None, client_model: str) -> JSON:
    """An Anthropic message as an OpenAI chat.completion."""
    content = message.get("content") if message is not None else None
    if message is None or not isinstance(content, list):
        raise MalformedResponse("upstream answered with a body that is not a message")
    blocks = [block for block in content if isinstance(block, dict)]
    texts = [str(block.get("text", "")) for block in blocks if block.get("type") == "text"]
    calls = [
        {
            "id": block.get("id"),
            "type": "function",
            "function": {
                "name": block.get("name"),
                "arguments": json.dumps(block.get("input", {}), ensure_ascii=False),
            },
        }
        for block in blocks
        if block.get("type") == "tool_use"
    ]
    reply: JSON = {"role": "assistant", "content": "".join(texts) if texts else None, "refusal": None}
    if calls:
        reply["tool_calls"] = calls
    return {
        "id": "chatcmpl-" + str(message.get("id") or generated_id("")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": client_model,
        "choices": [
            {
                "index": 0,
                "message": reply,
                "logprobs": None,
                "finish_reason": _finish_reason(message.get("stop_reason")),
            }
        ],
        "usage": _usage(*_counts(message.get("usage"))),
    }


def _finish_reason(stop_reason: Any) -> str:
    return _FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def _counts(usage: Any) -> tuple[int | None, int | None]:
    """(input, output) tokens; OpenAI's prompt tokens include the cached ones Anthropic counts separately."""
    if not isinstance(usage, dict):
        return None, None
    inputs = [usage.get(k) for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")]
    prompt = sum(n for n in inputs if isinstance(n, int)) if isinstance(inputs[0], int) else None
    completion = usage.get("output_tokens")
    return prompt, completion if isinstance(completion, int) else None


def _usage(prompt: int | None, completion: int | None) -> JSON:
    prompt, completion = prompt or 0, completion or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


# --- stream: Anthropic events -> OpenAI chunks ---------------------------------------------------------------


class OpenAIChunkStream(StreamBase):
    """Anthropic message events in, `chat.completion.chunk` SSE out.

    Anthropic numbers content blocks (text and tool_use interleaved); OpenAI numbers tool calls only, so
    each tool_use block gets the next tool call index.
    """

    def __init__(self, client_model: str, include_usage: bool) -> None:
        super().__init__()
        self._model = client_model
        self._include_usage = include_usage
        self._created = int(time.time())
        self._id = ""
        self._started = False
        self._finished = False  # the finish_reason chunk is out
        self._tool_calls: dict[int, int] = {}  # Anthropic block index -> OpenAI tool call index
        self._handlers: dict[str, Callable[[JSON], bytes]] = {
            "message_start": self._message_start,
            "content_block_start": self._block_start,
            "content_block_delta": self._block_delta,
            "message_delta": self._message_delta,
            "message_stop": self._message_stop,
            "error": self._error,
        }

    def _error_event(self, message: str) -> bytes:
        return data_event(openai_error(message))

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
        data = loads_object(event.data)
        if data is None:
            raise MalformedResponse("not a JSON object")
        handler = self._handlers.get(str(data.get("type") or event.event))
        # ping, content_block_stop, thinking and future event types carry nothing for an OpenAI client
        return handler(data) if handler is not None else b""

    def _message_start(self, data: JSON) -> bytes:
        message = data.get("message")
        if isinstance(message, dict):
            self._id = "chatcmpl-" + str(message.get("id") or generated_id(""))
            self._count(message.get("usage"))
        return self._start()

    def _block_start(self, data: JSON) -> bytes:
        block = data.get("content_block") or {}
        if block.get("type") == "text" and block.get("text"):
            return self._text(block["text"])
        if block.get("type") != "tool_use":
            return b""
        index = self._tool_calls[data.get("index", -1)] = len(self._tool_calls)
        self._first_token = True
        call = {
            "index": index,
            "id": block.get("id"),
            "type": "function",
            "function": {"name": block.get("name"), "arguments": ""},
        }
        return self._start() + self._chunk({"tool_calls": [call]})

    def _block_delta(self, data: JSON) -> bytes:
        delta = data.get("delta") or {}
        if delta.get("type") == "text_delta" and delta.get("text"):
            return self._text(delta["text"])
        index = self._tool_calls.get(data.get("index", -1))
        if delta.get("type") != "input_json_delta" or index is None or not delta.get("partial_json"):
            return b""
        return self._chunk({"tool_calls": [{"index": index, "function": {"arguments": delta["partial_json"]}}]})

    def _message_delta(self, data: JSON) -> bytes:
        self._count(data.get("usage"))
        stop_reason = (data.get("delta") or {}).get("stop_reason")
        return self._finish(stop_reason) if stop_reason else b""

    def _message_stop(self, data: JSON) -> bytes:
        out = self._start() + self._finish("end_turn")
        if self._include_usage:
            out += data_event(self._envelope([]) | {"usage": _usage(self._input, self._output)})
        self._closed = True
        return out + DONE

    def _error(self, data: JSON) -> bytes:
        error = data.get("error") or {}
        self._closed = True
        return data_event(openai_error(str(error.get("message") or "upstream error"), error.get("type")))

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        self._id = self._id or generated_id("chatcmpl-")
        return self._chunk({"role": "assistant", "content": ""})

    def _text(self, text: str) -> bytes:
        self._first_token = True
        return self._start() + self._chunk({"content": text})

    def _finish(self, stop_reason: str) -> bytes:
        if self._finished:
            return b""
        self._finished = True
        return self._start() + self._chunk({}, _finish_reason(stop_reason))

    def _count(self, usage: Any) -> None:
        prompt, completion = _counts(usage)
        self._input = prompt if prompt is not None else self._input
        self._output = completion if completion is not None else self._output

    def _chunk(self, delta: JSON, finish_reason: str | None = None) -> bytes:
        return data_event(
            self._envelope([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}])
        )

    def _envelope(self, choices: list[JSON]) -> JSON:
        chunk: JSON = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
        }
        chunk["choices"] = choices
        if self._include_usage:
            chunk["usage"] = None  # as OpenAI does: every chunk has the key, only the last one a value
        return chunk
