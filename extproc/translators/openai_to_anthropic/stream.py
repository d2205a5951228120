"""Stream: Anthropic message events -> OpenAI `chat.completion.chunk` SSE."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from extproc.translators.errors import MalformedResponseError, openai_error
from extproc.translators.openai_to_anthropic.response import (
    cache_counts,
    openai_finish_reason,
    openai_usage_of,
    token_counts,
)
from extproc.translators.sse import DONE, SSEEvent, StreamBase, data_event
from extproc.translators.wire import generated_id, loads_object

JSON = dict[str, Any]


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

    def _event(self, event: SSEEvent) -> bytes:
        data = loads_object(event.data)
        if data is None:
            raise MalformedResponseError("not a JSON object")
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
            usage = openai_usage_of(self._input or 0, self._output or 0, *self.cache_usage)
            out += data_event(self._envelope([]) | {"usage": usage})
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
        return self._start() + self._chunk({}, openai_finish_reason(stop_reason))

    def _count(self, usage: Any) -> None:
        """message_start and message_delta both carry usage; the counts in message_delta are cumulative."""
        cache = cache_counts(usage)
        if isinstance(usage, dict) and usage.get("input_tokens") is not None:
            self._cache_read, self._cache_write = cache
        prompt, completion = token_counts(usage)
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
