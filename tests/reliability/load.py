"""Steady load for the chaos scenarios: a few client threads, each with its own keep-alive httpx client, POSTing
chat completions to the gateway on 127.0.0.1 and recording the outcome of every single request.

Bounded: every thread stops at `stop()`, after `max_seconds` or after `max_requests`, whichever comes first. A
request that cannot connect is retried after a short pause (a refused gateway is not hammered); that pause paces
the load, nothing waits on it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

CHAT = "/v1/chat/completions"
_REFUSED_PAUSE_S = 0.02


@dataclass(frozen=True)
class Kind:
    """What one client thread sends, again and again."""

    model: str
    stream: bool = False

    @property
    def label(self) -> str:
        return f"{self.model}{' stream' if self.stream else ''}"


@dataclass
class Outcome:
    kind: Kind
    sent: float  # time.monotonic() just before the request was handed to the client
    done: float  # when the answer was complete, or the request failed
    status: int  # 0: no HTTP status (refused, reset, cut, timed out)
    complete: bool  # a whole answer: a JSON completion with content, or a stream through `[DONE]` with no error
    refused: bool = False  # refused at connect: the request never reached the gateway
    # no response at all on a fresh connection: reset before a status line (e.g. accepted by the kernel just as the
    # listener closed); the gateway never answered it, and for a request sent during a drain that is a refusal
    unanswered: bool = False
    error: str = ""
    model: str = ""  # the model the answer names (same-API routes: the provider's model, echoed by the mock)
    target: str = ""  # x-switchyard-target

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.complete

    def describe(self, origin: float = 0.0) -> str:
        """What happened, with times in seconds from `origin` (e.g. the fault)."""
        what = self.error or f"status {self.status}{'' if self.complete else ', incomplete body'}"
        return f"{self.kind.label} [{self.sent - origin:+.3f}s..{self.done - origin:+.3f}s]: {what}"


class Load:
    """One thread per `Kind` in `kinds`; use as a context manager or call `stop()`."""

    def __init__(
        self,
        url: str,
        kinds: Sequence[Kind],
        max_seconds: float = 60.0,
        max_requests: int = 20_000,
        stream_chunks: int | None = None,
        timeout: float = 20.0,
    ) -> None:
        self.url = url
        self.stream_chunks = stream_chunks  # content deltas a complete stream carries, when known
        self._timeout = timeout
        self._outcomes: list[Outcome] = []
        self._active: dict[int, tuple[Kind, float]] = {}  # thread index -> (kind, sent) of its request in flight
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._deadline = time.monotonic() + max_seconds
        self._max_requests = max_requests
        self._threads = [
            threading.Thread(target=self._run, args=(index, kind), name=f"load-{index}-{kind.label}", daemon=True)
            for index, kind in enumerate(kinds)
        ]
        for thread in self._threads:
            thread.start()

    def __enter__(self) -> Load:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- what happened ----------------------------------------------------------------------------------------

    @property
    def outcomes(self) -> list[Outcome]:
        with self._lock:
            return list(self._outcomes)

    def count(self, ok_only: bool = False, sent_after: float = 0.0, model: str | None = None) -> int:
        return sum(1 for o in self.outcomes if _matches(o, ok_only, sent_after, model))

    def in_flight(self, stream: bool | None = None) -> list[tuple[Kind, float]]:
        """Requests sent and not finished right now, as (kind, sent)."""
        with self._lock:
            active = list(self._active.values())
        return [a for a in active if stream is None or a[0].stream == stream]

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for thread in self._threads:
            thread.join(self._timeout + 5)
        return self.outcomes

    # -- the client threads -----------------------------------------------------------------------------------

    def _run(self, index: int, kind: Kind) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        timeout = httpx.Timeout(self._timeout, connect=2.0)
        with httpx.Client(base_url=self.url, timeout=timeout, limits=limits) as client:
            while not self._stop.is_set() and time.monotonic() < self._deadline:
                with self._lock:
                    if len(self._outcomes) >= self._max_requests:
                        return
                    sent = time.monotonic()
                    self._active[index] = (kind, sent)
                outcome = self._one(client, kind, sent)
                with self._lock:
                    del self._active[index]
                    self._outcomes.append(outcome)
                if outcome.status == 0:
                    self._stop.wait(_REFUSED_PAUSE_S)

    def _one(self, client: httpx.Client, kind: Kind, sent: float) -> Outcome:
        body: dict[str, Any] = {"model": kind.model, "messages": [{"role": "user", "content": "hello"}]}
        if kind.stream:
            body["stream"] = True
        answered = False
        try:
            with client.stream("POST", CHAT, json=body) as response:
                answered = True
                target = response.headers.get("x-switchyard-target", "")
                if response.status_code != 200:
                    response.read()
                    return Outcome(kind, sent, time.monotonic(), response.status_code, False,
                                   error=f"{response.status_code} {response.text[:160]}", target=target)  # fmt: skip
                if kind.stream:
                    complete, model, problem = _stream_complete(response.iter_lines(), self.stream_chunks)
                else:
                    complete, model, problem = _answer_complete(response.read())
                return Outcome(kind, sent, time.monotonic(), 200, complete, error=problem, model=model, target=target)
        except httpx.ConnectError as error:
            return Outcome(kind, sent, time.monotonic(), 0, False, refused=True, error=f"refused: {error!r}")
        except httpx.HTTPError as error:
            if not answered:
                return Outcome(kind, sent, time.monotonic(), 0, False, unanswered=True, error=f"unanswered: {error!r}")
            return Outcome(kind, sent, time.monotonic(), 0, False, error=f"cut: {error!r}")


def _answer_complete(raw: bytes) -> tuple[bool, str, str]:
    try:
        document = json.loads(raw)
        content = document["choices"][0]["message"]["content"]
        model = str(document.get("model", ""))
    except (ValueError, KeyError, IndexError, TypeError) as error:
        return False, "", f"200 with an incomplete answer ({error!r}): {raw[:160]!r}"
    if not isinstance(content, str) or not content:
        return False, model, f"200 with no content: {raw[:160]!r}"
    return True, model, ""


def _stream_complete(lines: Iterable[str], expected_chunks: int | None) -> tuple[bool, str, str]:
    """A complete OpenAI stream: content chunks, no error event, and `[DONE]` last."""
    payloads = [line[len("data: ") :] for line in lines if line.startswith("data: ")]
    model, pieces = "", 0
    for payload in payloads:
        if payload == "[DONE]":
            continue
        try:
            event = json.loads(payload)
        except ValueError:
            return False, model, f"stream with a malformed event: {payload[:160]!r}"
        if "error" in event:
            return False, model, f"stream ended with an error event: {payload[:160]!r}"
        model = model or str(event.get("model", ""))
        for choice in event.get("choices") or []:
            if (choice.get("delta") or {}).get("content"):
                pieces += 1
    if not payloads or payloads[-1] != "[DONE]":
        return False, model, f"stream cut after {pieces} content chunk(s), no [DONE]"
    if pieces == 0 or (expected_chunks is not None and pieces != expected_chunks):
        return False, model, f"stream with {pieces} content chunk(s), expected {expected_chunks or 'some'}"
    return True, model, ""


def _matches(outcome: Outcome, ok_only: bool, sent_after: float, model: str | None) -> bool:
    return (
        (not ok_only or outcome.ok)
        and outcome.sent >= sent_after
        and (model is None or outcome.kind.model == model or outcome.model == model)
    )


# -- reading outcomes --------------------------------------------------------------------------------------------


def failed(outcomes: Iterable[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if not o.ok]


def in_flight_at(outcomes: Iterable[Outcome], moment: float) -> list[Outcome]:
    return [o for o in outcomes if o.sent <= moment < o.done]


def recovery_seconds(outcomes: Sequence[Outcome], fault: float) -> float | None:
    """From the fault until requests succeed again: the completion of the first success sent after the last failure
    (None if nothing failed after the fault, or nothing succeeded after the last failure)."""
    failures = [o for o in outcomes if not o.ok and o.done >= fault]
    if not failures:
        return None
    last = max(o.sent for o in failures)
    after = [o.done for o in outcomes if o.ok and o.sent > last and o.done >= fault]
    return (min(after) - fault) if after else None


def samples(outcomes: Iterable[Outcome], origin: float = 0.0, limit: int = 5) -> str:
    return "; ".join(o.describe(origin) for o in list(outcomes)[:limit])


# -- the session's table ------------------------------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    nodeid: str
    requests: int
    failures: int
    recover_s: float | None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


ROWS: list[Row] = []  # one per scenario that got as far as measuring; printed by conftest.pytest_terminal_summary


def table(rows: Sequence[Row], outcome_of: dict[str, tuple[str, float]]) -> Iterator[str]:
    """The lines of the session's table; `outcome_of` maps nodeid -> (passed/failed/…, seconds)."""
    header = ("scenario", "result", "time s", "requests", "failures", "recover s", "notes")
    body = []
    for row in rows:
        result, seconds = outcome_of.get(row.nodeid, ("?", 0.0))
        recover = "-" if row.recover_s is None else f"{row.recover_s:.2f}"
        body.append((row.scenario, result, f"{seconds:.1f}", str(row.requests), str(row.failures), recover, row.note))
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header) - 1)]
    for line in [header, *body]:
        yield "  ".join(cell.ljust(width) for cell, width in zip(line[:-1], widths, strict=True)) + "  " + line[-1]
