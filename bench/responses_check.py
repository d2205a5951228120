"""Is a Responses variant's answer one the `openai` SDK reads? Checked once per variant before it is measured.

A bench variant that answers fast but wrongly would measure nothing: the native path (R) must pass the provider's
answer through, the translated path (RX) must build a Responses answer from an Anthropic one. Both are judged by
the official SDK's own types (`Response`, `ResponseStreamEvent`), not by our reading of OpenAI's documentation.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseCreatedEvent,
    ResponseStreamEvent,
    ResponseTextDeltaEvent,
)

_EVENTS: pydantic.TypeAdapter[ResponseStreamEvent] = pydantic.TypeAdapter(ResponseStreamEvent)


class ResponsesAnswerError(RuntimeError):
    """A Responses variant's answer is not what an SDK client would accept."""


def whole(variant: str, body: Any, expect_model: str) -> None:
    """A whole answer: a completed `response` object with text, naming `expect_model`."""
    try:
        answer = Response.model_validate(body)
    except pydantic.ValidationError as error:
        raise ResponsesAnswerError(f"variant {variant}: not a Responses answer: {error}") from None
    if answer.status != "completed" or answer.model != expect_model or not answer.output_text:
        raise ResponsesAnswerError(
            f"variant {variant}: status {answer.status}, model {answer.model} (expected {expect_model}), "
            f"text {answer.output_text!r}"
        )


def stream(variant: str, text: str, expect_model: str) -> None:
    """An event stream: SDK events only, opened by `response.created`, closed by `response.completed` naming
    `expect_model`, whose text is what the deltas spelled."""
    events = [_event(variant, block) for block in text.replace("\r\n", "\n").split("\n\n") if block.strip()]
    if (
        not events
        or not isinstance(events[0], ResponseCreatedEvent)
        or not isinstance(events[-1], ResponseCompletedEvent)
    ):
        kinds = [e.type for e in events]
        raise ResponsesAnswerError(f"variant {variant}: a stream must open with created, end with completed: {kinds}")
    completed = events[-1].response
    deltas = "".join(e.delta for e in events if isinstance(e, ResponseTextDeltaEvent))
    if completed.model != expect_model or not deltas or deltas != completed.output_text:
        raise ResponsesAnswerError(
            f"variant {variant}: stream named {completed.model} (expected {expect_model}), deltas {deltas!r}, "
            f"final {completed.output_text!r}"
        )


def _event(variant: str, block: str) -> ResponseStreamEvent:
    data = "".join(line[len("data:") :].strip() for line in block.split("\n") if line.startswith("data:"))
    try:
        return _EVENTS.validate_python(json.loads(data))
    except (ValueError, pydantic.ValidationError) as error:
        raise ResponsesAnswerError(
            f"variant {variant}: not a Responses stream event: {block[:300]!r}: {error}"
        ) from None
