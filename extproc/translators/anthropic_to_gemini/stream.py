"""Stream: Gemini `streamGenerateContent?alt=sse` chunks -> Anthropic message events.

Each Gemini event is a whole `GenerateContentResponse` holding the next parts; the one with a finishReason
ends the answer, and Gemini then closes the stream without a terminator of its own. Usage may come with
that last chunk or not at all, so message_delta and message_stop go out when the provider's stream ends
after a finishReason; a stream that ends without one ends with an error event instead.
"""

from __future__ import annotations

import json
from typing import Any

from extproc.translators.anthropic_to_gemini.response import (
    anthropic_error_of,
    anthropic_usage,
    candidate_parts,
    stop_reason,
    tool_use,
)
from extproc.translators.errors import MalformedResponseError, anthropic_error
from extproc.translators.sse import SSEEvent, StreamBase, message_end_events, message_start_event, named_event
from extproc.translators.wire import generated_id, loads_object

JSON = dict[str, Any]


class AnthropicFromGeminiStream(StreamBase):
    def __init__(self, client_model: str) -> None:
        super().__init__()
        self._model = client_model
        self._started = False
        self._text_block: int | None = None  # index of the open text block
        self._blocks = 0
        self._has_calls = False
        self._finish: Any = None
        self._usage: JSON = anthropic_usage(None)

    def _error_event(self, message: str) -> bytes:
        return named_event("error", anthropic_error(message))

    def _event(self, event: SSEEvent) -> bytes:
        data = loads_object(event.data)
        if data is None:
            raise MalformedResponseError("not a JSON object")
        if "error" in data:
            self._closed = True
            return named_event("error", anthropic_error_of(data["error"], None))
        if data.get("usageMetadata"):
            self._usage = anthropic_usage(data["usageMetadata"])
            self._cache_read = self._usage["cache_read_input_tokens"]
            self._cache_write = self._usage["cache_creation_input_tokens"]
            self._input = self._usage["input_tokens"] + self._cache_read + self._cache_write
            self._output = self._usage["output_tokens"]
        out = [self._start(data.get("responseId"))]
        parts, finish = candidate_parts(data)
        for part in parts:
            if isinstance(part.get("text"), str) and part["text"]:
                out.append(self._text(part["text"]))
            elif isinstance(part.get("functionCall"), dict):
                out.append(self._tool_call(part))
        if finish:
            self._finish = finish
        return b"".join(out)

    def finish(self) -> bytes:
        out = self._events(self._decoder.close())
        if self._closed or self._finish is None:
            return out + super().finish()
        out += self._start(None) + self._close_text()
        self._closed = True
        return out + message_end_events(stop_reason(self._finish, self._has_calls), self._usage)

    def _start(self, response_id: Any) -> bytes:
        if self._started:
            return b""
        self._started = True
        return message_start_event("msg_" + str(response_id or generated_id("")), self._model, dict(self._usage))

    def _text(self, text: str) -> bytes:
        self._first_token = True
        out = b""
        if self._text_block is None:
            self._text_block = self._blocks
            self._blocks += 1
            block = {
                "type": "content_block_start",
                "index": self._text_block,
                "content_block": {"type": "text", "text": ""},
            }
            out = named_event("content_block_start", block)
        delta = {"type": "text_delta", "text": text}
        return out + named_event(
            "content_block_delta", {"type": "content_block_delta", "index": self._text_block, "delta": delta}
        )

    def _tool_call(self, part: JSON) -> bytes:
        """Gemini sends a call whole: one block with its input in one delta."""
        call = part["functionCall"]
        self._first_token = True
        self._has_calls = True
        out = self._close_text()
        index = self._blocks
        self._blocks += 1
        block = tool_use(part) | {"input": {}}
        out += named_event(
            "content_block_start", {"type": "content_block_start", "index": index, "content_block": block}
        )
        delta = {"type": "input_json_delta", "partial_json": json.dumps(call.get("args") or {}, ensure_ascii=False)}
        out += named_event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
        return out + named_event("content_block_stop", {"type": "content_block_stop", "index": index})

    def _close_text(self) -> bytes:
        if self._text_block is None:
            return b""
        event = {"type": "content_block_stop", "index": self._text_block}
        self._text_block = None
        return named_event("content_block_stop", event)
