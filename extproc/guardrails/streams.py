"""Streamed answers in each client API, checked as they pass: SSE bytes in, SSE bytes out.

Like the stream translators (`extproc/translators/base.py` StreamTranslator), a pure state machine fed Envoy's
chunks at any boundary. Each text stream of the answer (an OpenAI choice, an Anthropic text block, a Responses
output part) gets its own `StreamGuard`: its text deltas go out as the guard releases them, the held-back tail
goes out when that text ends (in the finishing chunk, or an extra delta event before the block's or part's end),
and the events that repeat the whole text (Responses' `done` and `completed` events) carry the masked text. A
`block` rule, or an answer that fails a `json_schema` block rule, ends the stream with an error event in the
client's API, and the matched text is never sent. Events the guard does not read pass through as they came.
Tool-call argument deltas are not checked in streams (only text is).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from extproc.guardrails.checks import Block, GuardrailSet
from extproc.guardrails.masking import Masker
from extproc.guardrails.replies import BLOCK_CODE
from extproc.guardrails.stream import DEFAULT_WINDOW, StreamGuard
from extproc.translators.errors import anthropic_error, openai_error
from extproc.translators.sse import DONE, SSEDecoder, SSEEvent, data_event, named_event
from extproc.translators.wire import loads_object
from switchyard.contract import WireApi

JSON = dict[str, Any]


def _encode(event: SSEEvent) -> bytes:
    """An event as it came (data lines joined back), for events the guard only reads."""
    head = f"event: {event.event}\n" if event.event is not None else ""
    lines = "".join(f"data: {line}\n" for line in event.data.split("\n"))
    return (head + lines + "\n").encode()


class GuardedStream:
    """What every API's guarded stream does alike; subclasses read and rewrite their API's events."""

    def __init__(self, rules: GuardrailSet, masker: Masker, window: int = DEFAULT_WINDOW) -> None:
        self._rules = rules
        self._masker = masker
        self._window = window
        self._decoder = SSEDecoder()
        self._guards: dict[Hashable, StreamGuard] = {}
        self._released: dict[Hashable, list[str]] = {}
        self._finished: set[Hashable] = set()
        self.block: Block | None = None
        self.flagged: dict[str, int] = {}  # rule -> number of stretches of text it found something in

    def feed(self, chunk: bytes) -> bytes:
        return self._events(self._decoder.feed(chunk))

    def finish(self) -> bytes:
        return self._events(self._decoder.close())

    def _events(self, events: list[SSEEvent]) -> bytes:
        out = []
        for event in events:
            if self.block is not None:
                break  # the error event is out: nothing follows it
            data = loads_object(event.data)
            out.append(self._event(event, data) if data is not None else self._other(event))
        return b"".join(out)

    def _other(self, event: SSEEvent) -> bytes:
        return _encode(event)

    def _event(self, event: SSEEvent, data: JSON) -> bytes:
        raise NotImplementedError

    def _error_event(self, message: str) -> bytes:
        raise NotImplementedError

    # --- text streams ---

    def _pass_text(self, key: Hashable, delta: str) -> str | None:
        """The part of `delta` (with what was held) that may go out now; None when a block rule matched."""
        guard = self._guards.get(key)
        if guard is None:
            guard = self._guards[key] = self._rules.stream(self._masker, self._window)
        step = guard.feed(delta)
        return self._released_text(key, step.text, step.flagged, step.blocked_by)

    def _end_text(self, key: Hashable) -> str | None:
        """What the guard of `key` still holds, masked, once that text has ended ("" when none was held)."""
        guard = self._guards.get(key)
        if guard is None or key in self._finished:
            return ""
        self._finished.add(key)
        step = guard.finish()
        return self._released_text(key, step.text, step.flagged, step.blocked_by)

    def _released_text(self, key: Hashable, text: str, flagged: list[str], blocked_by: str | None) -> str | None:
        for rule in flagged:
            self.flagged[rule] = self.flagged.get(rule, 0) + 1
        if blocked_by is not None:
            self._blocked(blocked_by)
            return None
        self._released.setdefault(key, []).append(text)
        return text

    def _whole_text(self, key: Hashable) -> str:
        return "".join(self._released.get(key, ()))

    def _schema_passes(self, keys: list[Hashable]) -> bool:
        """The `json_schema` rules on the answer's text, once it is complete; False when one blocks."""
        decision = self._rules.check_answer_text("".join(self._whole_text(key) for key in keys))
        for event in decision.events:
            self.flagged[event.rule] = self.flagged.get(event.rule, 0) + 1
        if decision.block is not None:
            self.block = decision.block
            return False
        return True

    def _blocked(self, rule_name: str) -> None:
        check = next((rule.check for rule in self._rules.rules if rule.name == rule_name), "guardrail")
        self.block = Block(rule_name, check, where="answer")

    def _block_event(self) -> bytes:
        assert self.block is not None
        return self._error_event(self.block.message)


class OpenAIChatStream(GuardedStream):
    """Chat completion chunks: `choices[i].delta.content`, one text per choice index."""

    def _error_event(self, message: str) -> bytes:
        body = openai_error(message, status=400)
        body["error"]["code"] = BLOCK_CODE
        return data_event(body)

    def _other(self, event: SSEEvent) -> bytes:
        if event.data.strip() == "[DONE]":
            return DONE
        return _encode(event)

    def _event(self, event: SSEEvent, data: JSON) -> bytes:
        choices = data.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict):
                continue
            key = choice.get("index", 0)
            delta = choice.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                text = self._pass_text(key, delta["content"])
                if text is None:
                    return self._block_event()
                delta["content"] = text
            if choice.get("finish_reason") is not None:
                held = self._end_text(key)
                if held is None or not self._schema_passes([key]):
                    return self._block_event()
                if held:
                    delta = choice.setdefault("delta", {})
                    delta["content"] = (delta.get("content") or "") + held
        return data_event(data)


class AnthropicStream(GuardedStream):
    """Messages events: `text_delta`s of each content block; the held text goes out before `content_block_stop`."""

    def _error_event(self, message: str) -> bytes:
        return named_event("error", anthropic_error(message, status=400))

    def _event(self, event: SSEEvent, data: JSON) -> bytes:
        kind = data.get("type") or event.event
        index = data.get("index")
        delta = data.get("delta")
        if kind == "content_block_delta" and isinstance(delta, dict) and delta.get("type") == "text_delta":
            text = self._pass_text(index, str(delta.get("text", "")))
            if text is None:
                return self._block_event()
            if not text:
                return b""  # all held back: an empty delta says nothing
            delta["text"] = text
            return named_event("content_block_delta", data)
        if kind == "content_block_stop":
            held = self._end_text(index)
            if held is None:
                return self._block_event()
            before = b""
            if held:
                payload = {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": held}}
                before = named_event("content_block_delta", payload)
            return before + _encode(event)
        if kind == "message_delta" and not self._schema_passes(list(self._released)):
            return self._block_event()
        return _encode(event)


class ResponsesStream(GuardedStream):
    """Responses API events: `response.output_text.delta` per (output item, content part); the events that repeat
    the whole text (`.done`, `content_part.done`, `output_item.done`, `response.completed`) get the masked text.
    An extra delta carries the held text before `.done`, so later `sequence_number`s move up by one each."""

    def __init__(self, rules: GuardrailSet, masker: Masker, window: int = DEFAULT_WINDOW) -> None:
        super().__init__(rules, masker, window)
        self._inserted = 0
        self._last_sequence = 0

    def _error_event(self, message: str) -> bytes:
        payload = {"type": "error", "sequence_number": self._last_sequence + 1, "code": BLOCK_CODE}
        return named_event("error", {**payload, "message": message, "param": None})

    def _event(self, event: SSEEvent, data: JSON) -> bytes:
        if isinstance(data.get("sequence_number"), int):
            data["sequence_number"] += self._inserted
            self._last_sequence = data["sequence_number"]
        kind = str(data.get("type") or event.event)
        key = (data.get("output_index"), data.get("content_index"))
        if kind == "response.output_text.delta":
            text = self._pass_text(key, str(data.get("delta", "")))
            if text is None:
                return self._block_event()
            data["delta"] = text
        elif kind == "response.output_text.done":
            held = self._end_text(key)
            if held is None:
                return self._block_event()
            before = b""
            if held:
                extra = {k: data.get(k) for k in ("item_id", "output_index", "content_index")}
                extra = {"type": "response.output_text.delta", **extra, "delta": held, "logprobs": []}
                before = named_event(
                    "response.output_text.delta", {**extra, "sequence_number": data.get("sequence_number")}
                )
                self._inserted += 1
                data["sequence_number"] = self._last_sequence = int(data.get("sequence_number") or 0) + 1
            data["text"] = self._whole_text(key)
            return before + named_event(kind, data)
        elif kind == "response.content_part.done" and isinstance(part := data.get("part"), dict):
            self._mask_part(part, key)
        elif kind == "response.output_item.done" and isinstance(item := data.get("item"), dict):
            self._mask_item(item, data.get("output_index"))
        elif kind in ("response.completed", "response.incomplete"):
            if not self._schema_passes(list(self._released)):
                return self._block_event()
            response = data.get("response")
            outputs = response.get("output") if isinstance(response, dict) else None
            for index, item in enumerate(outputs if isinstance(outputs, list) else ()):
                if isinstance(item, dict):
                    self._mask_item(item, index)
        return named_event(kind, data)

    def _mask_part(self, part: JSON, key: Hashable) -> None:
        if part.get("type") == "output_text" and key in self._released:
            part["text"] = self._whole_text(key)

    def _mask_item(self, item: JSON, output_index: Any) -> None:
        content = item.get("content")
        for index, part in enumerate(content if isinstance(content, list) else ()):
            if isinstance(part, dict):
                self._mask_part(part, (output_index, index))


GUARDED_STREAMS: dict[WireApi, type[GuardedStream]] = {
    WireApi.OPENAI: OpenAIChatStream,
    WireApi.ANTHROPIC: AnthropicStream,
    WireApi.RESPONSES: ResponsesStream,
}


def guarded_stream(api: WireApi, rules: GuardrailSet, masker: Masker, window: int = DEFAULT_WINDOW) -> GuardedStream:
    """The guard of a streamed answer in the client's API (the answer as the client gets it: after translation)."""
    return GUARDED_STREAMS[api](rules, masker, window)
