"""Stream: Bedrock's `converse-stream` binary event stream -> Anthropic message events (SSE).

AWS frames each event in its binary event-stream encoding (length prelude, typed headers, payload, CRCs);
botocore's decoder takes the frames apart at any chunk boundary and checks their checksums. The `:event-type`
header names the event: messageStart, contentBlockStart (tool calls only; a text block starts with its first
delta), contentBlockDelta, contentBlockStop, messageStop (the stop reason), then metadata (usage). Reasoning
comes as `reasoningContent` deltas (text, then the signature; or redacted bytes) and becomes a thinking block
(`thinking_delta`, `signature_delta`) or a redacted_thinking block, as Anthropic streams them. An
`:message-type: exception` frame is an error mid-stream. The answer ends with the provider's stream after a
messageStop; a stream that ends without one ends with an error event.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.eventstream import EventStreamBuffer, ParserError

from extproc.translators.anthropic_to_bedrock.response import anthropic_usage, stop_reason
from extproc.translators.errors import MalformedResponseError, anthropic_error
from extproc.translators.sse import SSEEvent, StreamBase, message_end_events, message_start_event, named_event
from extproc.translators.wire import generated_id, loads_object

JSON = dict[str, Any]

# Bedrock's mid-stream exception (`:exception-type`) -> the Anthropic error type of the same meaning
_EXCEPTION_TYPES = {
    "throttlingException": "rate_limit_error",
    "serviceUnavailableException": "overloaded_error",
    "modelNotReadyException": "overloaded_error",
    "modelTimeoutException": "timeout_error",
    "validationException": "invalid_request_error",
}
_EXCEPTION = "exception:"


class AnthropicFromBedrockStream(StreamBase):
    def __init__(self, client_model: str) -> None:
        super().__init__()
        self._model = client_model
        self._frames = EventStreamBuffer()
        self._started = False
        self._open: dict[int, str] = {}  # Bedrock block index -> kind of the Anthropic block open for it
        self._indexes: dict[int, int] = {}  # Bedrock block index -> Anthropic block index
        self._stop: Any = None
        self._usage: JSON = anthropic_usage(None)

    def feed(self, chunk: bytes) -> bytes:
        self._frames.add_data(chunk)
        events = []
        try:
            for frame in self._frames:
                headers: dict[str, Any] = frame.headers  # type: ignore[assignment]  # the stubs say int
                if headers.get(":message-type") == "exception":
                    name = _EXCEPTION + str(headers.get(":exception-type"))
                else:
                    name = str(headers.get(":event-type"))
                events.append(SSEEvent(name, frame.payload.decode("utf-8", errors="replace")))
        except ParserError:
            return self._events(events) + self.fail("upstream sent a malformed event stream")
        return self._events(events)

    def finish(self) -> bytes:
        if self._closed or self._stop is None:
            return self.fail("upstream stream ended before the response was complete")
        out = self._start() + b"".join(self._close(i) for i in list(self._open))
        self._closed = True
        return out + message_end_events(stop_reason(self._stop), self._usage)

    def _error_event(self, message: str) -> bytes:
        return named_event("error", anthropic_error(message))

    def _event(self, event: SSEEvent) -> bytes:
        data = loads_object(event.data)
        if data is None:
            raise MalformedResponseError("not a JSON object")
        name = event.event or ""
        if name.startswith(_EXCEPTION):
            self._closed = True
            kind = _EXCEPTION_TYPES.get(name[len(_EXCEPTION) :], "api_error")
            message = str(data.get("message") or data.get("Message") or "upstream error")
            return named_event("error", {"type": "error", "error": {"type": kind, "message": message}})
        if name == "messageStart":
            return self._start()
        if name == "contentBlockStart":
            return self._block_start(data)
        if name == "contentBlockDelta":
            return self._delta(data)
        if name == "contentBlockStop":
            return self._close(int(data.get("contentBlockIndex", 0)))
        if name == "messageStop":
            self._stop = data.get("stopReason")
        elif name == "metadata":
            self._usage = anthropic_usage(data.get("usage"))
            self._cache_read = self._usage["cache_read_input_tokens"]
            self._cache_write = self._usage["cache_creation_input_tokens"]
            self._input = self._usage["input_tokens"] + self._cache_read + self._cache_write
            self._output = self._usage["output_tokens"]
        return b""

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return message_start_event(generated_id("msg_bdrk_"), self._model)

    def _block_start(self, data: JSON) -> bytes:
        call = (data.get("start") or {}).get("toolUse")
        if not isinstance(call, dict):
            return b""
        self._first_token = True
        block: JSON = {
            "type": "tool_use",
            "id": str(call.get("toolUseId") or generated_id("toolu_")),
            "name": call.get("name"),
            "input": {},
        }
        return self._open_block(int(data.get("contentBlockIndex", 0)), "tool_use", block)

    def _delta(self, data: JSON) -> bytes:
        index = int(data.get("contentBlockIndex", 0))
        delta = data.get("delta") or {}
        out = b""
        if isinstance(delta.get("text"), str):
            if index not in self._open:
                out = self._open_block(index, "text", {"type": "text", "text": ""})
            if not delta["text"]:
                return out
            self._first_token = True
            anthropic_delta: JSON = {"type": "text_delta", "text": delta["text"]}
        elif isinstance(delta.get("toolUse"), dict) and self._open.get(index) == "tool_use":
            partial = delta["toolUse"].get("input")
            anthropic_delta = {
                "type": "input_json_delta",
                "partial_json": partial if isinstance(partial, str) else json.dumps(partial),
            }
        elif isinstance(delta.get("reasoningContent"), dict):
            return self._reasoning(index, delta["reasoningContent"])
        else:
            return b""  # citations and other deltas an Anthropic client did not ask for
        event = {"type": "content_block_delta", "index": self._indexes[index], "delta": anthropic_delta}
        return out + named_event("content_block_delta", event)

    def _reasoning(self, index: int, reasoning: JSON) -> bytes:
        if "redactedContent" in reasoning:  # a redacted block comes whole, its data in its start event
            if index in self._open:
                return b""
            block = {"type": "redacted_thinking", "data": str(reasoning["redactedContent"] or "")}
            return self._open_block(index, "redacted_thinking", block)
        out = b""
        if index not in self._open:
            out = self._open_block(index, "thinking", {"type": "thinking", "thinking": "", "signature": ""})
        if self._open[index] != "thinking":
            return out
        deltas: list[JSON] = []
        if isinstance(reasoning.get("text"), str) and reasoning["text"]:
            deltas.append({"type": "thinking_delta", "thinking": reasoning["text"]})
        if isinstance(reasoning.get("signature"), str) and reasoning["signature"]:
            deltas.append({"type": "signature_delta", "signature": reasoning["signature"]})
        for delta in deltas:
            event = {"type": "content_block_delta", "index": self._indexes[index], "delta": delta}
            out += named_event("content_block_delta", event)
        return out

    def _open_block(self, index: int, kind: str, block: JSON) -> bytes:
        out = self._start()
        self._open[index] = kind
        self._indexes[index] = len(self._indexes)
        event = {"type": "content_block_start", "index": self._indexes[index], "content_block": block}
        return out + named_event("content_block_start", event)

    def _close(self, index: int) -> bytes:
        if self._open.pop(index, None) is None:
            return b""
        return named_event("content_block_stop", {"type": "content_block_stop", "index": self._indexes[index]})
