"""Every text a model will read, per client API, as slots that can be read and written back.

A guardrail must see what reaches the model, wherever the API puts it: the system prompt, each message's text
parts, tool results, the arguments of earlier tool calls. Each API shape has its own extractor; the bodies are
the client's, before any translation, so a check runs once whatever provider serves the request. Slots write
into the body they came from (callers pass the body they mean to send). Left out on purpose: images, audio and
files (no text to check), and thinking/reasoning items (signed by the provider: an edit would void them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from switchyard.contract import WireApi


@dataclass
class TextSlot:
    text: str
    # Who wrote it, as the model sees it: system, user, assistant, tool (a tool's result), tool_call (arguments)
    role: str
    _write: Callable[[str], None]

    def replace(self, text: str) -> None:
        if text != self.text:
            self._write(text)
            self.text = text


def _item(container: Any, key: Any, role: str) -> Iterator[TextSlot]:
    """The slot for container[key] when it holds a string."""
    value = container[key]
    if isinstance(value, str):

        def write(text: str) -> None:
            container[key] = text

        yield TextSlot(value, role, write)


def _list(value: Any) -> list[Any]:
    """A list member as a list; anything else (a malformed body) as none: the checks never crash on a body."""
    return value if isinstance(value, list) else []


def _member(body: Any, key: str, role: str) -> Iterator[TextSlot]:
    if isinstance(body, dict) and key in body:
        yield from _item(body, key, role)


def _json_strings(value: Any, role: str) -> Iterator[TextSlot]:
    """Every string inside a JSON value (an Anthropic tool call's `input`), keys excepted."""
    if isinstance(value, dict):
        for key in value:
            if isinstance(value[key], str):
                yield from _item(value, key, role)
            else:
                yield from _json_strings(value[key], role)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str):
                yield from _item(value, index, role)
            else:
                yield from _json_strings(item, role)


# --- OpenAI chat completions (and the older completions and embeddings bodies) ---------------------------------


def _openai_content(message: dict[str, Any], role: str) -> Iterator[TextSlot]:
    content = message.get("content")
    if isinstance(content, str):
        yield from _item(message, "content", role)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict):
                yield from _member(part, "text", role)
                yield from _member(part, "refusal", role)


def openai_request_slots(body: dict[str, Any]) -> Iterator[TextSlot]:
    for message in _list(body.get("messages")):
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        role = "system" if role in ("system", "developer") else role if isinstance(role, str) else "user"
        yield from _openai_content(message, role)
        yield from _member(message, "refusal", role)
        for call in _list(message.get("tool_calls")):
            if isinstance(call, dict):
                yield from _member(call.get("function"), "arguments", "tool_call")
        yield from _member(message.get("function_call"), "arguments", "tool_call")
    for key in ("prompt", "input"):  # /v1/completions, /v1/embeddings: a string or a list of strings
        value = body.get(key)
        if isinstance(value, str):
            yield from _item(body, key, "user")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, str):
                    yield from _item(value, index, "user")


def openai_response_slots(body: dict[str, Any]) -> Iterator[TextSlot]:
    for choice in _list(body.get("choices")):
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        if isinstance(message, dict):
            yield from _openai_content(message, "assistant")
            yield from _member(message, "refusal", "assistant")
            for call in _list(message.get("tool_calls")):
                if isinstance(call, dict):
                    yield from _member(call.get("function"), "arguments", "tool_call")
        yield from _member(choice, "text", "assistant")  # /v1/completions


# --- OpenAI Responses API ----------------------------------------------------------------------------------------

_RESPONSES_TEXT_PARTS = {"input_text": "text", "output_text": "text", "refusal": "refusal", "text": "text"}


def _responses_parts(container: dict[str, Any], key: str, role: str) -> Iterator[TextSlot]:
    value = container.get(key)
    if isinstance(value, str):
        yield from _item(container, key, role)
    elif isinstance(value, list):
        for part in value:
            if isinstance(part, dict) and (member := _RESPONSES_TEXT_PARTS.get(str(part.get("type")))):
                yield from _member(part, member, role)


def _responses_item(item: dict[str, Any]) -> Iterator[TextSlot]:
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        role = "system" if role in ("system", "developer") else role if isinstance(role, str) else "user"
        yield from _responses_parts(item, "content", role)
    elif kind in ("function_call", "custom_tool_call"):
        yield from _member(item, "arguments" if kind == "function_call" else "input", "tool_call")
    elif kind in ("function_call_output", "custom_tool_call_output"):
        yield from _responses_parts(item, "output", "tool")


def responses_request_slots(body: dict[str, Any]) -> Iterator[TextSlot]:
    yield from _member(body, "instructions", "system")
    items = body.get("input")
    if isinstance(items, str):
        yield from _item(body, "input", "user")
    elif isinstance(items, list):
        for item in items:
            if isinstance(item, dict):
                yield from _responses_item(item)


def responses_response_slots(body: dict[str, Any]) -> Iterator[TextSlot]:
    for item in _list(body.get("output")):
        if isinstance(item, dict) and item.get("type") in ("message", "function_call", "custom_tool_call"):
            for slot in _responses_item(item):
                yield TextSlot(slot.text, "assistant" if slot.role != "tool_call" else slot.role, slot._write)


# --- Anthropic Messages API --------------------------------------------------------------------------------------


def _anthropic_blocks(container: dict[str, Any], key: str, role: str) -> Iterator[TextSlot]:
    value = container.get(key)
    if isinstance(value, str):
        yield from _item(container, key, role)
        return
    for block in _list(value):
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            yield from _member(block, "text", role)
        elif kind == "tool_use":
            yield from _json_strings(block.get("input"), "tool_call")
        elif kind == "tool_result" or kind == "search_result":
            yield from _anthropic_blocks(block, "content", "tool")
        elif kind == "document" and isinstance(source := block.get("source"), dict):
            if source.get("type") == "text":
                yield from _member(source, "data", role)
            elif source.get("type") == "content":
                yield from _anthropic_blocks(source, "content", role)


def anthropic_request_slots(body: dict[str, Any]) -> Iterator[TextSlot]:
    yield from _anthropic_blocks(body, "system", "system")
    for message in _list(body.get("messages")):
        if isinstance(message, dict):
            role = message.get("role")
            yield from _anthropic_blocks(message, "content", role if isinstance(role, str) else "user")


def anthropic_response_slots(body: dict[str, Any]) -> Iterator[TextSlot]:
    yield from _anthropic_blocks(body, "content", "assistant")


REQUEST_SLOTS: dict[WireApi, Callable[[dict[str, Any]], Iterator[TextSlot]]] = {
    WireApi.OPENAI: openai_request_slots,
    WireApi.RESPONSES: responses_request_slots,
    WireApi.ANTHROPIC: anthropic_request_slots,
}
RESPONSE_SLOTS: dict[WireApi, Callable[[dict[str, Any]], Iterator[TextSlot]]] = {
    WireApi.OPENAI: openai_response_slots,
    WireApi.RESPONSES: responses_response_slots,
    WireApi.ANTHROPIC: anthropic_response_slots,
}


def request_slots(api: WireApi, body: dict[str, Any]) -> list[TextSlot]:
    """The texts of a client request in `api`'s shape; an API without an extractor has none (checked: empty)."""
    extractor = REQUEST_SLOTS.get(api)
    return list(extractor(body)) if extractor else []


def response_slots(api: WireApi, body: dict[str, Any]) -> list[TextSlot]:
    extractor = RESPONSE_SLOTS.get(api)
    return list(extractor(body)) if extractor else []
