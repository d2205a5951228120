"""Server-sent events: incremental decoding from arbitrary byte chunks, and encoding.

Envoy hands the ext_proc the body in whatever pieces the network produced, so an event, a line, a `\\r\\n`
or a multi-byte UTF-8 character can be split across chunks. The decoder keeps the incomplete tail and only
yields whole events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from extproc.translators.errors import SHAPE_ERRORS
from extproc.translators.wire import dumps

_LINE_END = re.compile(rb"\r\n|\r|\n")

DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    event: str | None
    data: str


class SSEDecoder:
    def __init__(self) -> None:
        self._tail = b""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buffer = self._tail + chunk
        events: list[SSEEvent] = []
        start = 0
        for match in _LINE_END.finditer(buffer):
            if match.group() == b"\r" and match.end() == len(buffer):
                break  # maybe the first half of a "\r\n": wait for the next byte
            event = self._line(buffer[start : match.start()])
            if event is not None:
                events.append(event)
            start = match.end()
        self._tail = buffer[start:]
        return events

    def close(self) -> list[SSEEvent]:
        """The event still pending at the end of the body, if none of it was cut off.

        The SSE spec drops an event that lacks its closing blank line; some servers omit that line after the
        last event (`data: [DONE]\n` then EOF), so such an event is delivered. An event whose last line was
        cut off before its line end is a truncated body and is dropped: the stream translators report that.
        """
        tail, self._tail = self._tail, b""
        if tail.endswith(b"\r"):  # a complete line, ended by a lone "\r"
            event = self._line(tail[:-1]) or self._dispatch()
        else:
            event = self._dispatch() if not tail else None
        return [event] if event is not None else []

    def _line(self, line: bytes) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        # Line ends are ASCII and never occur inside a UTF-8 sequence, so a whole line decodes cleanly.
        text = line.decode("utf-8", errors="replace")
        if text.startswith(":"):
            return None  # comment / keep-alive
        field, _, value = text.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        return None

    def _dispatch(self) -> SSEEvent | None:
        event = SSEEvent(self._event, "\n".join(self._data)) if self._data else None
        self._event = None
        self._data = []
        return event


def data_event(payload: object) -> bytes:
    """An OpenAI-style event: a JSON `data:` line only."""
    return b"data: " + dumps(payload) + b"\n\n"


def named_event(name: str, payload: object) -> bytes:
    """An Anthropic-style event: `event: <type>` then the JSON `data:` line."""
    return b"event: " + name.encode() + b"\n" + data_event(payload)


def message_start_event(message_id: str, model: str, usage: dict[str, Any] | None = None) -> bytes:
    """Anthropic's `message_start`: the empty assistant message every translated Anthropic stream opens with."""
    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage if usage is not None else {"input_tokens": 0, "output_tokens": 0},
    }
    return named_event("message_start", {"type": "message_start", "message": message})


def message_end_events(stop_reason: str | None, usage: dict[str, Any]) -> bytes:
    """Anthropic's closing pair: `message_delta` (why it stopped, the usage) then `message_stop`."""
    delta = {"stop_reason": stop_reason, "stop_sequence": None}
    end = named_event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
    return end + named_event("message_stop", {"type": "message_stop"})


class StreamBase:
    """What every stream translator does alike: decode the provider's SSE at any chunk boundary, keep usage
    and whether a token went out, and end exactly once, with an error event when the provider did not end.

    Subclasses say how one provider event becomes client bytes (`_event`) and how an error looks in the
    client's API (`_error_event`)."""

    def __init__(self) -> None:
        self._decoder = SSEDecoder()
        self._closed = False  # the client's end or an error is out: nothing more may follow
        self._input: int | None = None
        self._output: int | None = None
        self._cache_read = 0
        self._cache_write = 0
        self._first_token = False

    @property
    def usage(self) -> tuple[int | None, int | None]:
        return self._input, self._output

    @property
    def cache_usage(self) -> tuple[int, int]:
        return self._cache_read, self._cache_write

    @property
    def first_token_seen(self) -> bool:
        return self._first_token

    def feed(self, chunk: bytes) -> bytes:
        return self._events(self._decoder.feed(chunk))

    def finish(self) -> bytes:
        out = self._events(self._decoder.close())
        if self._closed:
            return out
        return out + self.fail("upstream stream ended before the response was complete")

    def fail(self, message: str) -> bytes:
        if self._closed:
            return b""
        self._closed = True
        return self._error_event(message)

    def _events(self, events: list[SSEEvent]) -> bytes:
        """Each event translated in turn; one of the wrong shape ends the stream with an error event."""
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
        raise NotImplementedError

    def _error_event(self, message: str) -> bytes:
        raise NotImplementedError
