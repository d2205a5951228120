"""A deliberately minimal OpenAI-shaped provider for benchmarks: raw asyncio, canned bodies, no recording.

The full mock provider (switchyard mock-provider) records and inspects every request, which makes it the
bottleneck under load; a benchmark must measure the gateway, not the stand-in behind it. This one parses
just enough HTTP/1.1 (keep-alive, content-length) to answer, echoes the request's model, and can fail
every request (`--status 502`) or stream (`"stream": true` → SSE). A request to `/v1/responses` gets OpenAI's
Responses shape (a `response` object, or its event stream), for the Responses client's native variant; the bodies
come from the full mock's Responses module (validated against the `openai` SDK's types there), built once per
model. `--api anthropic` answers in Anthropic's Messages shape, for the cross-provider variants; `--api bedrock`
with a Converse answer (whole answers only; the signature is not checked: the full mock does that, this one must
not set the pace).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import socket
import time

from switchyard.mock_provider import responses_api

_MODEL = re.compile(rb'"model"\s*:\s*"([^"]*)"')
_STREAM = re.compile(rb'"stream"\s*:\s*true')
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_RESPONSES_PATH = re.compile(rb"^POST /v1/responses[ ?]")


# The headers a real provider sends with each answer besides its type and length (rate limits, ids, CDN), as
# Anthropic's API does: off by default (`--provider-headers` turns them on), so runs stay comparable.
_PROVIDER_HEADERS = b"".join(
    b"%s: %s\r\n" % (name, value)
    for name, value in (
        (b"date", b"Mon, 07 Dec 2026 07:00:00 GMT"),
        (b"request-id", b"req_011CVbench0000000000000000"),
        (b"anthropic-organization-id", b"00000000-0000-0000-0000-000000000000"),
        (b"anthropic-ratelimit-requests-limit", b"4000"),
        (b"anthropic-ratelimit-requests-remaining", b"3999"),
        (b"anthropic-ratelimit-requests-reset", b"2026-12-07T07:00:01Z"),
        (b"anthropic-ratelimit-input-tokens-limit", b"400000"),
        (b"anthropic-ratelimit-input-tokens-remaining", b"400000"),
        (b"anthropic-ratelimit-input-tokens-reset", b"2026-12-07T07:00:00Z"),
        (b"anthropic-ratelimit-output-tokens-limit", b"80000"),
        (b"anthropic-ratelimit-output-tokens-remaining", b"80000"),
        (b"anthropic-ratelimit-output-tokens-reset", b"2026-12-07T07:00:00Z"),
        (b"anthropic-ratelimit-tokens-limit", b"480000"),
        (b"anthropic-ratelimit-tokens-remaining", b"480000"),
        (b"anthropic-ratelimit-tokens-reset", b"2026-12-07T07:00:00Z"),
        (b"via", b"1.1 google"),
        (b"cf-cache-status", b"DYNAMIC"),
        (b"x-robots-tag", b"none"),
        (b"server", b"cloudflare"),
        (b"cf-ray", b"8f0000000000bench-SJC"),
    )
)
_extra_headers = b""


def _response(status: int, body: bytes, content_type: bytes = b"application/json") -> bytes:
    reason = {200: b"OK", 502: b"Bad Gateway"}.get(status, b"Status")
    return b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n%s\r\n%s" % (
        status,
        reason,
        content_type,
        len(body),
        _extra_headers,
        body,
    )


def _completion(model: bytes) -> bytes:
    return (
        b'{"id":"chatcmpl-bench","object":"chat.completion","created":0,"model":"%s","choices":[{"index":0,'
        b'"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}' % model
    )


def _chunked_events(events: list[bytes]) -> bytes:
    """A whole event stream in one chunk: the client sees it as a stream, the mock writes it at once."""
    body = b"".join(events)
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    return head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


def _sse(model: bytes, chunks: int = 5) -> bytes:
    events = [
        b'data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":0,"model":"%s",'
        b'"choices":[{"index":0,"delta":{"content":"t%d"},"finish_reason":null}]}\n\n' % (model, i)
        for i in range(chunks)
    ]
    return _chunked_events([*events, b"data: [DONE]\n\n"])


def _message(model: bytes) -> bytes:
    return (
        b'{"id":"msg_bench","type":"message","role":"assistant","model":"%s","content":[{"type":"text",'
        b'"text":"ok"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":9,"output_tokens":1}}'
        % model
    )


_CONVERSE = (
    b'{"output":{"message":{"role":"assistant","content":[{"text":"ok"}]}},"stopReason":"end_turn",'
    b'"usage":{"inputTokens":9,"outputTokens":1,"totalTokens":10},"metrics":{"latencyMs":1}}'
)


def _message_events(model: bytes, chunks: int = 5) -> bytes:
    def event(name: bytes, data: bytes) -> bytes:
        return b"event: %s\ndata: %s\n\n" % (name, data)

    events = [
        event(b"message_start", b'{"type":"message_start","message":{"id":"msg_bench","type":"message",'
              b'"role":"assistant","model":"%s","content":[],"stop_reason":null,"stop_sequence":null,'
              b'"usage":{"input_tokens":9,"output_tokens":1}}}' % model),
        event(b"content_block_start",
              b'{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}'),
        *[
            event(b"content_block_delta",
                  b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"t%d"}}' % i)
            for i in range(chunks)
        ],
        event(b"content_block_stop", b'{"type":"content_block_stop","index":0}'),
        event(b"message_delta", b'{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
              b'"usage":{"output_tokens":%d}}' % chunks),
        event(b"message_stop", b'{"type":"message_stop"}'),
    ]  # fmt: skip
    return _chunked_events(events)


class _ResponsesAnswers:
    """Whole and streamed Responses answers, built on the first request for a model and replayed after: the
    model is the only part that varies (the bench sends a handful), and building one costs tens of microseconds
    this mock must not spend on every request."""

    def __init__(self) -> None:
        self.built: dict[tuple[bytes, bool], bytes] = {}

    def answer(self, model: bytes, stream: bool) -> bytes:
        found = self.built.get((model, stream))
        if found is None:
            found = self.built[(model, stream)] = self._build(model.decode(), stream)
        return found

    @staticmethod
    def _build(model: str, stream: bool) -> bytes:
        created = int(time.time())
        if not stream:
            return _response(200, responses_api.response("bench", created, "fast-mock", model, {}, 9, 1))
        head, paced, tail = responses_api.stream_events(
            resp_id="bench", created=created, name="fast-mock", model=model, request={}, chunks=5, input_tokens=9
        )
        return _chunked_events([*head, *paced, *tail])


_ERROR = _response(502, b'{"error":{"message":"bench primary down","type":"server_error","code":null}}')


class _Connection(asyncio.Protocol):
    def __init__(self, fail_status: int, api: str, responses: _ResponsesAnswers) -> None:
        self.fail_status = fail_status
        self.api = api
        self.buffer = bytearray()
        self.responses = responses
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            match = _CONTENT_LENGTH.search(self.buffer, 0, end + 2)
            total = end + 4 + (int(match.group(1)) if match else 0)
            if len(self.buffer) < total:
                return
            body = bytes(self.buffer[end + 4 : total])
            responses = _RESPONSES_PATH.match(self.buffer) is not None
            del self.buffer[:total]
            assert self.transport is not None
            self.transport.write(self._answer(body, responses))

    def _answer(self, body: bytes, responses: bool = False) -> bytes:
        if self.fail_status:
            return _ERROR
        found = _MODEL.search(body)
        model = found.group(1) if found else b"unknown"
        if self.api == "bedrock":
            return _response(200, _CONVERSE)
        if self.api == "anthropic":
            return _message_events(model) if _STREAM.search(body) else _response(200, _message(model))
        if responses:
            return self.responses.answer(model, _STREAM.search(body) is not None)
        if _STREAM.search(body):
            return _sse(model)
        return _response(200, _completion(model))


async def serve(port: int, fail_status: int, api: str = "openai") -> None:
    loop = asyncio.get_running_loop()
    responses = _ResponsesAnswers()  # shared by every connection
    server = await loop.create_server(lambda: _Connection(fail_status, api, responses), "127.0.0.1", port, backlog=4096)
    print(f"fast-mock listening on http://127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--status", type=int, default=0, help="answer every request with this status (e.g. 502)")
    parser.add_argument(
        "--api", choices=("openai", "anthropic", "bedrock"), default="openai", help="the answers' shape"
    )
    parser.add_argument(
        "--provider-headers", action="store_true", help="send the score of headers a real provider sends"
    )
    args = parser.parse_args()
    global _extra_headers
    _extra_headers = _PROVIDER_HEADERS if args.provider_headers else b""
    asyncio.run(serve(args.port, args.status, args.api))


if __name__ == "__main__":
    main()
