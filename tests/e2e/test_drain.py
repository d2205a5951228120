"""A planned stop loses nothing in flight: SIGTERM to `switchyard up` drains before it stops.

Slow answers and slow SSE streams (one of them translated by the ext_proc) are in flight at the signal; each
must finish with 200 and its complete body. /healthz turns 503 at once, the listener refuses new connections
once the notice is over, and `up` exits 0 right after the last answer. A second SIGTERM stops at once.
Every wait polls with a deadline.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from switchyard.supervisor.processes import free_port
from tests.support.harness import MockProvider, Stack, running_stack, sse_events, wait_for

pytestmark = pytest.mark.e2e

CHUNKS, CHUNK_DELAY_MS = 40, 100  # a stream lasts about 4 s
SLOW_MS = 4000  # so does a slow answer
NOTICE = 1  # --drain-notice: the listener closes one second after the signal


def _config(port: int, oa: MockProvider, an: MockProvider) -> str:
    return f"""
listen: 127.0.0.1:{port}
providers:
  oa: {{kind: openai, base_url: "{oa.url}", api_key: sk-drain}}
  an: {{kind: anthropic, base_url: "{an.url}", api_key: sk-ant-drain}}
routes:
  - model: direct
    targets: [{{provider: oa, model: gpt-direct}}]
  - model: cross
    targets: [{{provider: an, model: claude-cross}}]
  - model: slow
    targets: [{{provider: oa, model: gpt-slow}}]
"""


@dataclass
class Call:
    """One client request on its own connection, run in a thread."""

    model: str
    stream: bool
    started: threading.Event = field(default_factory=threading.Event)  # headers (and a first event) received
    status: int | None = None
    events: list[object] = field(default_factory=list)
    body: dict[str, object] | None = None
    error: str | None = None
    finished_at: float | None = None
    thread: threading.Thread | None = None

    def run(self, url: str) -> None:
        payload = {"model": self.model, "messages": [{"role": "user", "content": "hi"}], "stream": self.stream}
        try:
            with httpx.Client(base_url=url, timeout=60) as client:
                if self.stream:
                    with client.stream("POST", "/v1/chat/completions", json=payload) as response:
                        self.status = response.status_code
                        for event in sse_events(response):
                            self.events.append(event)
                            self.started.set()
                else:
                    response = client.post("/v1/chat/completions", json=payload)
                    self.status, self.body = response.status_code, response.json()
        except (httpx.HTTPError, ValueError) as error:
            self.error = f"{type(error).__name__}: {error}"
        finally:
            self.finished_at = time.monotonic()
            self.started.set()

    def start(self, url: str) -> Call:
        self.thread = threading.Thread(target=self.run, args=(url,), daemon=True)
        self.thread.start()
        return self

    @property
    def done(self) -> bool:
        return self.finished_at is not None

    def complete(self) -> bool:
        """200 and the whole answer: a stream ends with its finish_reason and [DONE]."""
        if self.status != 200 or self.error is not None:
            return False
        if not self.stream:
            return self.body is not None and self.body["choices"][0]["finish_reason"] == "stop"  # type: ignore[index]
        reasons = [e["choices"][0]["finish_reason"] for e in self.events if isinstance(e, dict) and e["choices"]]
        return bool(self.events) and self.events[-1] == "[DONE]" and reasons[-1] == "stop"


def _healthz(url: str) -> int | str:
    """GET /healthz on a fresh connection: the status, or "refused" when the listener is gone."""
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code
    except httpx.ConnectError:
        return "refused"


def _in_flight(stack: Stack) -> int:
    text = stack.admin_get("/stats?filter=^http\\.switchyard\\.downstream_rq_active$")
    match = re.search(r"downstream_rq_active: (\d+)", text)
    return int(match.group(1)) if match else -1


def _poll(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """wait_for, returning when the predicate came true (time.monotonic())."""
    wait_for(predicate, timeout, what, interval=0.02)
    return time.monotonic()


@pytest.fixture
def mocks(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[MockProvider, MockProvider]]:
    chunks = getattr(request, "param", CHUNKS)
    slow = ("--stream-chunks", str(chunks), "--chunk-delay-ms", str(CHUNK_DELAY_MS))
    oa = MockProvider("oa", tmp_path, (*slow, "--rule", f"model=gpt-slow,latency_ms={SLOW_MS}"))
    an = MockProvider("an", tmp_path, ("--api", "anthropic", *slow))
    try:
        yield oa, an
    finally:
        oa.stop()
        an.stop()


def test_sigterm_lets_slow_answers_and_streams_finish(tmp_path: Path, mocks: tuple[MockProvider, ...]) -> None:
    oa, an = mocks
    up_args = ("--drain-timeout", "15", "--drain-notice", str(NOTICE))
    with running_stack(_config(free_port(), oa, an), tmp_path, up_args=up_args) as stack:
        assert _healthz(stack.url) == 200
        calls = [
            Call("direct", stream=True).start(stack.url),
            Call("direct", stream=True).start(stack.url),
            Call("cross", stream=True).start(stack.url),  # translated by the ext_proc, which must outlive it
            Call("slow", stream=False).start(stack.url),
            Call("slow", stream=False).start(stack.url),
        ]
        for call in calls:
            if call.stream:
                assert call.started.wait(10), f"{call} did not start"
        _poll(lambda: _in_flight(stack) == len(calls), 10, "Envoy to count every request in flight")

        signalled = time.monotonic()
        stack.signal(signal.SIGTERM)
        unhealthy_at = _poll(lambda: _healthz(stack.url) == 503, 3, "/healthz to answer 503")
        # During the notice, new requests are still served (and told to close their connection).
        during = httpx.post(
            f"{stack.url}/v1/chat/completions",
            json={"model": "cross", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert during.status_code == 200 and during.headers.get("connection") == "close", during.headers
        closed_at = _poll(lambda: _healthz(stack.url) == "refused", NOTICE + 3, "the listener to close")
        assert not all(call.done for call in calls), "the listener closes while answers are still in flight"

        exited_at = _poll(lambda: stack.process.poll() is not None, 15 + 5, "`up` to drain and exit")
        up_log = stack.log("up")

    for call in calls:
        assert call.done and call.complete(), (call, up_log)
    last_answer = max(call.finished_at for call in calls if call.finished_at is not None)
    assert stack.process.returncode == 0, up_log
    assert unhealthy_at - signalled < 1.0, f"/healthz took {unhealthy_at - signalled:.2f}s to turn 503"
    assert NOTICE - 0.5 < closed_at - signalled < NOTICE + 2, f"listener closed after {closed_at - signalled:.2f}s"
    assert exited_at - last_answer < 3.0, f"`up` exited {exited_at - last_answer:.2f}s after the last answer"
    assert re.search(r"draining: \d requests? in flight, \d+s left", up_log), up_log
    assert "drained after" in up_log and "nothing in flight; stopping" in up_log
    assert "restarting" not in up_log, "nothing is restarted during the drain"


@pytest.mark.parametrize("mocks", [300], indirect=True)  # a 30 s stream
def test_a_second_sigterm_stops_at_once(tmp_path: Path, mocks: tuple[MockProvider, ...]) -> None:
    oa, an = mocks
    with running_stack(_config(free_port(), oa, an), tmp_path) as stack:
        stream = Call("direct", stream=True).start(stack.url)
        assert stream.started.wait(10)
        stack.signal(signal.SIGTERM)
        wait_for(lambda: "SIGTERM: draining" in stack.log("up"), 5, "the drain to start")
        second = time.monotonic()
        stack.signal(signal.SIGTERM)
        exited_at = _poll(lambda: stack.process.poll() is not None, 10, "`up` to stop")
        assert stream.thread is not None
        stream.thread.join(5)
        up_log = stack.log("up")

    assert stack.process.returncode == 0, up_log
    assert exited_at - second < 2.5, f"`up` took {exited_at - second:.2f}s to stop after the second SIGTERM"
    assert stream.done and not stream.complete(), "the 30 s stream is cut"
    assert "[DONE]" not in stream.events
    assert "SIGTERM again: stopping everything now" in up_log
