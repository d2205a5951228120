"""Stream: OpenAI `chat.completion.chunk` SSE -> Anthropic message events."""

from __future__ import annotations

from typing import Any

from extproc.translators.anthropic_to_openai.response import anthropic_stop_reason, anthropic_usage, token_counts
from extproc.translators.errors import MalformedResponseError, anthropic_error
from extproc.translators.sse import SSEEvent, StreamBase, message_end_events, message_start_event, named_event
from extproc.translators.wire import generated_id, loads_object

JSON = dict[str, Any]


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
        self._usage: Any = None  # the OpenAI usage of the last chunk that had one

    def _error_event(self, message: str) -> bytes:
        return named_event("error", anthropic_error(message))

    def _event(self, event: SSEEvent) -> bytes:
        if event.data.strip() == "[DONE]":
            return self._done()
        data = loads_object(event.data)
        if data is None:
            raise MalformedResponseError("not a JSON object")
        if "error" in data or event.event == "error":
            return self._error(data.get("error", data))
        return self._chunk(data)

    def _chunk(self, chunk: JSON) -> bytes:
        out = [self._start(chunk.get("id"))]
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
            cached = anthropic_usage(self._usage)
            self._cache_read, self._cache_write = (
                cached["cache_read_input_tokens"],
                cached["cache_creation_input_tokens"],
            )
        prompt, completion = token_counts(chunk.get("usage"))
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
                self._stop_reason = anthropic_stop_reason(choice["finish_reason"])
                out.append(self._close_block())
        return b"".join(out)

    def _start(self, chunk_id: Any) -> bytes:
        if self._started:
            return b""
        self._started = True
        return message_start_event("msg_" + str(chunk_id or generated_id("")), self._model)

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
            usage = anthropic_usage(self._usage)
        self._closed = True
        return out + message_end_events(self._stop_reason, usage)

    def _error(self, error: Any) -> bytes:
        self._closed = True
        source = error if isinstance(error, dict) else None
        message = source.get("message") if source is not None else error
        return named_event("error", anthropic_error(str(message or "upstream error"), source))
