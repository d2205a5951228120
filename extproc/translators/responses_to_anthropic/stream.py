"""Stream: Anthropic message events -> the OpenAI Responses event stream.

message_start opens the response (response.created, response.in_progress); each content block is an output
item: text a message (output_item.added, content_part.added, output_text.delta..., output_text.done,
content_part.done, output_item.done), tool_use a function_call (its input_json_delta as
function_call_arguments.delta), thinking a reasoning item (reasoning_text.delta, the signature kept for
`encrypted_content`); message_stop closes it with response.completed (or response.incomplete), which carries
the whole response and its usage. Every event has the next `sequence_number`. An error becomes the Responses
`error` event, and nothing follows it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from extproc.translators.errors import MalformedResponseError, openai_error
from extproc.translators.responses_to_anthropic.response import (
    REDACTED_THINKING,
    function_call_item,
    message_item,
    reasoning_item,
    response_object,
    text_part,
    token_counts,
    usage_object,
)
from extproc.translators.sse import SSEEvent, StreamBase, named_event
from extproc.translators.wire import generated_id, loads_object

JSON = dict[str, Any]


@dataclass
class _Item:
    """One output item being streamed: what its closing events and the final response need."""

    index: int  # output_index
    kind: str  # "message", "function_call" or "reasoning"
    item_id: str
    text: list[str] = field(default_factory=list)  # text, arguments or thinking, as it arrived
    call_id: str = ""
    name: str = ""
    signature: str = ""


class ResponsesEventStream(StreamBase):
    """Anthropic message events in, Responses API events out."""

    def __init__(self, client_model: str, request: Mapping[str, Any]) -> None:
        super().__init__()
        self._model = client_model
        self._request = request
        self._created = int(time.time())
        self._id = ""
        self._sequence = -1
        self._items: dict[int, _Item] = {}  # Anthropic block index -> item
        self._done: list[JSON] = []  # finished items, in output order
        self._stop_reason: Any = None
        self._cached = 0
        self._written = 0
        self._handlers: dict[str, Callable[[JSON], bytes]] = {
            "message_start": self._message_start,
            "content_block_start": self._block_start,
            "content_block_delta": self._block_delta,
            "content_block_stop": self._block_stop,
            "message_delta": self._message_delta,
            "message_stop": self._message_stop,
            "error": self._error,
        }

    def _send(self, kind: str, **fields: Any) -> bytes:
        self._sequence += 1
        return named_event(kind, {"type": kind, "sequence_number": self._sequence, **fields})

    def _error_event(self, message: str) -> bytes:
        return self._send("error", code="server_error", message=message, param=None)

    def _event(self, event: SSEEvent) -> bytes:
        data = loads_object(event.data)
        if data is None:
            raise MalformedResponseError("not a JSON object")
        handler = self._handlers.get(str(data.get("type") or event.event))
        return handler(data) if handler is not None else b""  # ping and future event types carry nothing

    def _response(self, usage: JSON | None) -> JSON:
        return response_object(
            self._id, self._model, self._request, list(self._done), self._stop_reason, usage, self._created
        )

    def _message_start(self, data: JSON) -> bytes:
        message = data.get("message")
        if isinstance(message, dict):
            self._id = "resp_" + str(message.get("id") or generated_id(""))
            self._count(message.get("usage"))
        self._id = self._id or generated_id("resp_")
        opened = self._response(None)
        return self._send("response.created", response=opened) + self._send("response.in_progress", response=opened)

    def _block_start(self, data: JSON) -> bytes:
        block = data.get("content_block") or {}
        kind = block.get("type")
        index = len(self._done) + len(self._items)
        if kind == "text":
            item = _Item(index, "message", generated_id("msg_"))
            self._items[data.get("index", -1)] = item
            where = {"item_id": item.item_id, "output_index": index, "content_index": 0}
            out = self._send("response.output_item.added", output_index=index, item=self._open(item))
            out += self._send("response.content_part.added", **where, part=text_part(""))
            return out + (self._text(item, block["text"]) if block.get("text") else b"")
        if kind == "tool_use":
            call_id = str(block.get("id") or generated_id("toolu_"))
            item = _Item(index, "function_call", "fc_" + call_id, call_id=call_id, name=str(block.get("name")))
            self._items[data.get("index", -1)] = item
            self._first_token = True
            return self._send("response.output_item.added", output_index=index, item=self._open(item))
        if kind == "thinking" or (kind == "redacted_thinking" and isinstance(block.get("data"), str)):
            # A redacted block arrives whole in its start event: its data is the item's encrypted_content.
            signature = REDACTED_THINKING + block["data"] if kind == "redacted_thinking" else ""
            item = _Item(index, "reasoning", generated_id("rs_"), signature=signature)
            self._items[data.get("index", -1)] = item
            return self._send("response.output_item.added", output_index=index, item=self._open(item))
        return b""  # block types Responses clients have no item for

    def _open(self, item: _Item) -> JSON:
        if item.kind == "message":
            return message_item(item.item_id, [], "in_progress")
        if item.kind == "function_call":
            return function_call_item(item.call_id, item.name, "", "in_progress")
        return reasoning_item(item.item_id, "", None, "in_progress")

    def _text(self, item: _Item, text: str) -> bytes:
        self._first_token = True
        item.text.append(text)
        where = {"item_id": item.item_id, "output_index": item.index, "content_index": 0}
        return self._send("response.output_text.delta", **where, delta=text, logprobs=[])

    def _block_delta(self, data: JSON) -> bytes:
        item = self._items.get(data.get("index", -1))
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if item is None:
            return b""
        if kind == "text_delta" and delta.get("text"):
            return self._text(item, str(delta["text"]))
        if kind == "input_json_delta" and delta.get("partial_json"):
            item.text.append(str(delta["partial_json"]))
            where = {"item_id": item.item_id, "output_index": item.index}
            return self._send("response.function_call_arguments.delta", **where, delta=delta["partial_json"])
        if kind == "thinking_delta" and delta.get("thinking"):
            item.text.append(str(delta["thinking"]))
            where = {"item_id": item.item_id, "output_index": item.index, "content_index": 0}
            return self._send("response.reasoning_text.delta", **where, delta=delta["thinking"])
        if kind == "signature_delta":
            item.signature += str(delta.get("signature") or "")
        return b""

    def _block_stop(self, data: JSON) -> bytes:
        item = self._items.pop(data.get("index", -1), None)
        if item is None:
            return b""
        text = "".join(item.text)
        where = {"item_id": item.item_id, "output_index": item.index}
        out = b""
        if item.kind == "message":
            part = text_part(text)
            out += self._send("response.output_text.done", **where, content_index=0, text=text, logprobs=[])
            out += self._send("response.content_part.done", **where, content_index=0, part=part)
            done = message_item(item.item_id, [part])
        elif item.kind == "function_call":
            out += self._send("response.function_call_arguments.done", **where, arguments=text or "{}")
            done = function_call_item(item.call_id, item.name, text or "{}")
        else:
            if text:
                out += self._send("response.reasoning_text.done", **where, content_index=0, text=text)
            done = reasoning_item(item.item_id, text, item.signature)
        self._done.append(done)
        return out + self._send("response.output_item.done", output_index=item.index, item=done)

    def _message_delta(self, data: JSON) -> bytes:
        self._count(data.get("usage"))
        stop_reason = (data.get("delta") or {}).get("stop_reason")
        if stop_reason:
            self._stop_reason = stop_reason
        return b""

    def _message_stop(self, data: JSON) -> bytes:
        out = b"".join(self._block_stop({"index": index}) for index in list(self._items))
        usage = usage_object(self._input or 0, self._output or 0, self._cached, self._written)
        final = self._response(usage)
        self._closed = True
        kind = "response.incomplete" if final["status"] == "incomplete" else "response.completed"
        return out + self._send(kind, response=final)

    def _error(self, data: JSON) -> bytes:
        error = data.get("error") or {}
        self._closed = True
        shaped = openai_error(str(error.get("message") or "upstream error"), error.get("type"))["error"]
        return self._send("error", code=shaped["code"] or shaped["type"], message=shaped["message"], param=None)

    def _count(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        prompt, completion, read, write = token_counts(usage)
        if prompt is not None:
            self._input, self._cached, self._written = prompt, read, write
            self._cache_read, self._cache_write = read, write
        if completion is not None:
            self._output = completion
