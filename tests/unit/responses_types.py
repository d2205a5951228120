"""Validation against the `openai` SDK's own Responses types, strictly: the SDK's models accept unknown members
silently, so every member the SDK does not define is reported too. A body that passes is shaped exactly as the
SDK defines a Response or a stream event."""

from __future__ import annotations

from typing import Any

from openai.types.responses import Response, ResponseStreamEvent
from pydantic import BaseModel, TypeAdapter

_EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


def _unknown_members(value: Any, where: str) -> list[str]:
    if isinstance(value, BaseModel):
        found = [f"{where}.{name}" for name in value.model_extra or {}]
        for name in type(value).model_fields:
            found += _unknown_members(getattr(value, name), f"{where}.{name}")
        return found
    if isinstance(value, list):
        return [problem for i, item in enumerate(value) for problem in _unknown_members(item, f"{where}[{i}]")]
    return []


def valid_response(body: dict[str, Any]) -> Response:
    response = Response.model_validate(body)
    assert _unknown_members(response, "response") == []
    return response


def valid_event(payload: dict[str, Any]) -> Any:
    event = _EVENTS.validate_python(payload)
    assert _unknown_members(event, payload.get("type", "event")) == []
    return event
