"""The mock's OpenAI Responses API (`POST /v1/responses`), validated with the `openai` SDK's own types: the
end-to-end tests of native Responses traffic trust it to look like OpenAI."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from switchyard.mock_provider.rules import Rule
from tests.unit.responses_types import valid_event, valid_response
from tests.unit.test_mock_provider import MockProvider, run

REQUEST = {"model": "gpt-4o", "input": "hello", "instructions": "Be brief.", "max_output_tokens": 64}


def _events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of each SSE event."""
    events = []
    for block in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_a_response_is_an_sdk_response_naming_provider_and_model() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        async with session.post(f"{base}/v1/responses", json=REQUEST) as resp:
            assert resp.status == 200
            response = valid_response(await resp.json())
        assert response.output_text == "Hello from t (gpt-4o)"
        assert (response.status, response.model, response.instructions) == ("completed", "gpt-4o", "Be brief.")
        assert response.usage is not None and response.usage.output_tokens == 4
        assert response.usage.total_tokens == response.usage.input_tokens + 4

    run(scenario)


def test_a_streamed_response_sends_openais_event_sequence_each_event_an_sdk_event() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        async with session.post(f"{base}/v1/responses", json={**REQUEST, "stream": True}) as resp:
            assert resp.status == 200 and resp.content_type == "text/event-stream"
            events = _events(await resp.text())
        for name, data in events:
            assert name == data["type"]
            valid_event(data)
        kinds = [name for name, _ in events]
        assert kinds == [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            *["response.output_text.delta"] * 3,
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
        assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
        deltas = "".join(data["delta"] for name, data in events if name == "response.output_text.delta")
        assert deltas == "Hello from t (gpt-4o)"
        completed = valid_response(events[-1][1]["response"])
        assert completed.output_text == deltas and completed.usage is not None and completed.usage.output_tokens == 4

    run(scenario, stream_chunks=3, chunk_delay_ms=0)


def test_a_broken_responses_stream_ends_with_the_responses_error_event() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        async with session.post(f"{base}/v1/responses", json={**REQUEST, "stream": True}) as resp:
            events = _events(await resp.text())
        name, data = events[-1]
        assert name == "error" and valid_event(data).message.endswith("injected stream error")
        assert "response.completed" not in [name for name, _ in events]

    run(scenario, rules=[Rule(stream_error_after=1)], stream_chunks=3, chunk_delay_ms=0)


def test_a_responses_request_without_input_gets_openais_400() -> None:
    async def scenario(session: aiohttp.ClientSession, base: str, _: MockProvider) -> None:
        async with session.post(f"{base}/v1/responses", json={"model": "gpt-4o"}) as resp:
            assert resp.status == 400
            error = (await resp.json())["error"]
        assert (error["type"], error["param"]) == ("invalid_request_error", "input")

    run(scenario)
