"""Chaos under steady load: every request is counted, and each fault has a budget of failed requests.

Each scenario runs its own `switchyard up` on 127.0.0.1 with an OpenAI-shaped and an Anthropic-shaped mock, puts
steady load on it (tests/reliability/load.py: fast requests, slow requests, long SSE streams, on a same-API route
and on a translated one), injects one fault and checks what every request got:

- SIGTERM to `up` drains: nothing sent before the signal is lost; later requests succeed or are refused at connect.
- SIGKILL of one of two ext_procs: failures only among what was in flight at the kill.
- SIGKILL of the control plane: nothing fails (Envoy keeps its last config; `up` restarts it).
- 10 hot reloads: nothing fails, and the last config is the one in force.
- SIGKILL of Envoy: `up` restarts it and it serves again within a bound; the failures meanwhile are counted.

Every wait polls with a deadline; the load runs for bounded durations. The session ends with one table.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from switchyard.supervisor.processes import descendants, free_port
from tests.reliability.load import (
    ROWS,
    Kind,
    Load,
    Outcome,
    Row,
    failed,
    in_flight_at,
    recovery_seconds,
    samples,
)
from tests.support.harness import ACTIVE_LOGS, MockProvider, Stack, wait_for

pytestmark = pytest.mark.e2e

STREAM_CHUNKS = 20  # content deltas per mock stream…
CHUNK_DELAY_MS = 100  # …one every 100 ms: a stream lasts about 2 s
SLOW_MS = 1500  # the `slow` route's provider takes this long to answer

DIRECT, CROSS, SLOW = "direct", "cross", "slow"  # a same-API route, a translated one (OpenAI -> Anthropic), a slow one
STEADY = (Kind(DIRECT), Kind(DIRECT), Kind(CROSS), Kind(CROSS), Kind(DIRECT, stream=True), Kind(CROSS, stream=True))


def _config(port: int, oa: MockProvider, an: MockProvider, version: str = "v0") -> str:
    return f"""
listen: 127.0.0.1:{port}
providers:
  oa: {{kind: openai, base_url: "{oa.url}", api_key: sk-reliability}}
  an: {{kind: anthropic, base_url: "{an.url}", api_key: sk-ant-reliability}}
routes:
  - model: {DIRECT}
    targets: [{{name: oa, provider: oa, model: direct-{version}}}]
  - model: {CROSS}
    targets: [{{name: an, provider: an, model: claude-{version}}}]
  - model: {SLOW}
    targets: [{{name: slow, provider: oa, model: slow-model}}]
"""


def _mock_args(*extra: str) -> tuple[str, ...]:
    return (
        "--stream-chunks", str(STREAM_CHUNKS), "--chunk-delay-ms", str(CHUNK_DELAY_MS),
        "--rule", f"model=slow-model,latency_ms={SLOW_MS}", *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def oa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockProvider]:
    provider = MockProvider("oa", tmp_path_factory.mktemp("oa"), _mock_args())
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def an(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockProvider]:
    provider = MockProvider("an", tmp_path_factory.mktemp("an"), _mock_args("--api", "anthropic"))
    yield provider
    provider.stop()


@pytest.fixture(autouse=True)
def fresh_mocks(oa: MockProvider, an: MockProvider) -> None:
    oa.clear()
    an.clear()


Record = Callable[..., None]


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Record:
    """Adds this scenario's row to the session's table (before its assertions, so failing ones are shown too)."""

    def add(scenario: str, outcomes: list[Outcome], recover_s: float | None, note: str = "") -> None:
        ROWS.append(Row(scenario, request.node.nodeid, len(outcomes), len(failed(outcomes)), recover_s, note))

    return add


# -- processes of a stack -----------------------------------------------------------------------------------------


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _pids(stack: Stack, role: str) -> list[int]:
    """The live pids under `up` for a role: envoy, controlplane or extproc."""
    found = []
    for pid in descendants(stack.process.pid):
        argv = _cmdline(pid)
        if not argv:
            continue
        is_envoy = Path(argv[0]).name == "envoy"
        if (role == "envoy" and is_envoy) or (role != "envoy" and not is_envoy and role in argv):
            found.append(pid)
    return sorted(found)


def _one_pid(stack: Stack, role: str) -> int:
    pids: list[int] = wait_for(lambda: _pids(stack, role), 10, f"a {role} process under `up`")
    assert len(pids) == 1, f"expected one {role}, found {pids}"
    return pids[0]


def _replaced(stack: Stack, role: str, old: int, count: int = 1) -> Callable[[], bool]:
    def check() -> bool:
        pids = _pids(stack, role)
        return len(pids) == count and old not in pids

    return check


@pytest.fixture
def start_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Starts `switchyard up` for a scenario and stops it at teardown, after the test's report is made: a failing
    scenario shows every process's log (ACTIVE_LOGS), the ext_procs' of several workers included."""
    started: list[Stack] = []
    shown: list[tuple[str, Path]] = []

    def start(config: str, up_args: tuple[str, ...] = ()) -> Stack:
        log_dir = tmp_path / f"stack-{len(started)}"
        log_dir.mkdir()
        stack = Stack(config, log_dir, up_args=up_args)
        started.append(stack)
        for name in ("extproc-1", "extproc-2"):
            entry = (name, stack.log_dir / f"{name}.log")
            if entry not in ACTIVE_LOGS:
                ACTIVE_LOGS.append(entry)
                shown.append(entry)
        return stack

    yield start
    for stack in started:
        stack.stop()
    for entry in shown:
        if entry in ACTIVE_LOGS:
            ACTIVE_LOGS.remove(entry)


def _ok_since(load: Load, moment: float, count: int, model: str | None = None) -> Callable[[], bool]:
    return lambda: load.count(ok_only=True, sent_after=moment, model=model) >= count


def _streams_mid_way(load: Load) -> bool:
    ages = [time.monotonic() - sent for _, sent in load.in_flight(stream=True)]
    return len(ages) == 4 and len([age for age in ages if age > 0.3]) >= 3


def _healthz(url: str) -> int:
    """GET /healthz on a fresh connection: the status, or 0 if the listener is gone."""
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code
    except httpx.HTTPError:
        return 0


# -- the scenarios ------------------------------------------------------------------------------------------------


def test_sigterm_drains_long_streams_in_flight_and_loses_nothing(
    start_stack: Callable[..., Stack], oa: MockProvider, an: MockProvider, record: Record
) -> None:
    kinds = (
        Kind(DIRECT), Kind(CROSS), Kind(SLOW), Kind(SLOW),
        Kind(DIRECT, stream=True), Kind(DIRECT, stream=True), Kind(CROSS, stream=True), Kind(CROSS, stream=True),
    )  # fmt: skip
    # A 2 s notice: /healthz answers 503 on new connections too before the listener closes (the harness's default
    # is none).
    stack = start_stack(_config(free_port(), oa, an), up_args=("--drain-timeout", "20", "--drain-notice", "2"))
    healthz_before = _healthz(stack.url)
    with Load(stack.url, kinds, max_seconds=60, stream_chunks=STREAM_CHUNKS) as load:
        wait_for(_ok_since(load, 0, 2, model=SLOW), 15, "slow requests to be served")
        # Signal when the long streams are mid-way: all four in flight, three of them for 0.3 s at least.
        wait_for(lambda: _streams_mid_way(load), 10, "four streams in flight, mid-way")
        signalled = time.monotonic()
        stack.signal(signal.SIGTERM)
        # The drain must show at once on /healthz, while those streams are still running.
        healthz_during, healthz_at = 0, 0.0
        deadline = signalled + 3
        while time.monotonic() < deadline and stack.process.poll() is None:
            healthz_during, healthz_at = _healthz(stack.url), time.monotonic() - signalled
            if healthz_during == 503:
                break
        wait_for(lambda: stack.process.poll() is not None, 40, "`up` to drain and exit")
        drained_in = time.monotonic() - signalled
        outcomes = load.stop()
    exit_code = stack.process.returncode

    before = [o for o in outcomes if o.sent < signalled]
    lost = failed(before)
    in_flight = in_flight_at(outcomes, signalled)
    after = [o for o in outcomes if o.sent >= signalled]
    # Sent after the signal: served, refused at connect, or reset before any answer on a connection the kernel
    # accepted just as the listener closed (Envoy never read it). Never cut once answering has begun.
    refused = [o for o in after if o.refused or o.unanswered]
    cut = [o for o in after if not o.ok and not (o.refused or o.unanswered)]
    streams_in_flight = [o for o in in_flight if o.kind.stream]
    record(
        "SIGTERM drain, streams in flight",
        outcomes,
        None,
        f"{len(in_flight)} in flight at SIGTERM ({len(streams_in_flight)} streams); lost {len(lost)} of the "
        f"{len(before)} sent before; sent after: {len(after) - len(failed(after))} ok, {len(refused)} refused "
        f"(at connect or unanswered), {len(cut)} cut; /healthz {healthz_before} -> {healthz_during or 'nothing'} after "
        f"{healthz_at:.2f}s; `up` exit {exit_code} after {drained_in:.1f}s",
    )
    assert healthz_before == 200, f"GET /healthz answered {healthz_before} before the drain"
    assert len(streams_in_flight) >= 3, "the scenario needs long streams in flight at the signal"
    assert lost == [], f"{len(lost)} of {len(before)} sent before SIGTERM were lost: {samples(lost, signalled)}"
    assert cut == [], f"{len(cut)} requests sent during the drain were cut, not refused: {samples(cut, signalled)}"
    assert healthz_during == 503, f"GET /healthz answered {healthz_during or 'nothing'} during the drain"
    assert exit_code == 0, f"`up` exited with {exit_code} after SIGTERM"


def test_extproc_sigkill_on_a_translated_route_fails_only_what_was_in_flight(
    start_stack: Callable[..., Stack], oa: MockProvider, an: MockProvider, record: Record
) -> None:
    kinds = (Kind(DIRECT), Kind(CROSS), Kind(CROSS), Kind(CROSS), Kind(CROSS, stream=True))
    stack = start_stack(_config(free_port(), oa, an), up_args=("--extproc-workers", "2"))
    extprocs: list[int] = wait_for(lambda: len(_pids(stack, "extproc")) == 2 and _pids(stack, "extproc"), 10,
                                   "two ext_procs")  # fmt: skip
    with Load(stack.url, kinds, max_seconds=60, stream_chunks=STREAM_CHUNKS) as load:
        wait_for(_ok_since(load, 0, 100, model=CROSS), 20, "translated requests to be served")
        victim = extprocs[0]
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        wait_for(_replaced(stack, "extproc", victim, count=2), 15, "`up` to restart the killed ext_proc")
        restarted_in = time.monotonic() - killed
        # Steady load for 3 s past the kill, with translated traffic after the first second.
        wait_for(lambda: time.monotonic() - killed > 3, 10, "three seconds of load past the kill")
        wait_for(_ok_since(load, killed + 1, 100, model=CROSS), 20, "translated requests after the kill")
        outcomes = load.stop()
    # The provider behind the translated route was fine all along: the gateway's own failure is not held
    # against it (an ejection would send its traffic to a backup for ejection_time).
    provider = stack.target_status(CROSS, "an")
    assert provider["state"] == "healthy", provider

    failures = failed(outcomes)
    in_flight = in_flight_at(outcomes, killed)
    early = [o for o in failures if o.done < killed]
    after = [o for o in failures if o.sent >= killed]
    last = max((o.done - killed for o in failures), default=0.0)
    record(
        "ext_proc SIGKILL (1 of 2), translated",
        outcomes,
        recovery_seconds(outcomes, killed),
        f"{len(in_flight)} in flight at the kill; failures until {last:.2f}s after it, {len(after)} sent "
        f"after it; ext_proc restarted in {restarted_in:.2f}s",
    )
    assert early == [], f"failures before the kill: {samples(early, killed)}"
    # The bound: a crash fails at most what the dead process held. Every failure must have been in
    # flight at the kill; a request sent after it goes to the live ext_proc (or waits for the restart) even in
    # the tenths of a second when Envoy's load balancer still picks the dead one (the ext_proc stream's retries).
    assert after == [], f"{len(after)} requests sent after the kill failed: {samples(after, killed)}"


def test_controlplane_sigkill_fails_nothing(
    start_stack: Callable[..., Stack], oa: MockProvider, an: MockProvider, record: Record
) -> None:
    stack = start_stack(_config(free_port(), oa, an))
    with Load(stack.url, STEADY, max_seconds=60, stream_chunks=STREAM_CHUNKS) as load:
        wait_for(_ok_since(load, 0, 50), 20, "the load to get going")
        victim = _one_pid(stack, "controlplane")
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        wait_for(_replaced(stack, "controlplane", victim), 15, "`up` to restart the control plane")
        wait_for(lambda: stack.status()["routes"], 15, "the restarted control plane's API")
        back_in = time.monotonic() - killed
        # Envoy reconnects to the new control plane and gets its config again: traffic must not notice.
        wait_for(lambda: time.monotonic() - killed > back_in + 1.5, 10, "load past the restart")
        wait_for(_ok_since(load, killed + back_in, 50), 20, "requests after the restart")
        outcomes = load.stop()

    failures = failed(outcomes)
    record(
        "control plane SIGKILL",
        outcomes,
        recovery_seconds(outcomes, killed),
        f"{len(in_flight_at(outcomes, killed))} in flight at the kill; control plane back (API answering) in "
        f"{back_in:.2f}s",
    )
    assert failures == [], f"{len(failures)} of {len(outcomes)} requests failed: {samples(failures, killed)}"


def test_ten_hot_reloads_under_load_fail_nothing_and_the_last_config_wins(
    start_stack: Callable[..., Stack], oa: MockProvider, an: MockProvider, record: Record
) -> None:
    port = free_port()
    reloads = 10
    took: list[float] = []
    stack = start_stack(_config(port, oa, an))
    with Load(stack.url, STEADY, max_seconds=90, stream_chunks=STREAM_CHUNKS) as load:
        wait_for(_ok_since(load, 0, 50), 20, "the load to get going")
        for i in range(1, reloads + 1):
            written = time.monotonic()
            stack.write_config(_config(port, oa, an, version=f"v{i}"))
            # The same-API route's mock echoes the model it received: the new one shows in the answers.
            wait_for(_ok_since(load, written, 1, model=f"direct-v{i}"), 15, f"reload {i} to be in force")
            took.append(time.monotonic() - written)
        wait_for(_ok_since(load, time.monotonic(), 100), 20, "requests after the last reload")
        outcomes = load.stop()
    # What the providers receive now, with nothing else in flight: the last config's models only.
    oa.clear()
    an.clear()
    for model in (DIRECT, CROSS):
        assert stack.chat(model).status_code == 200
    received = {r["body"]["model"] for r in oa.requests() + an.requests()}

    failures = failed(outcomes)
    first_last = min(o.sent for o in outcomes if o.model == f"direct-v{reloads}")
    # Envoy's workers apply an update within moments of each other; after that, no answer from an older config.
    stale = [o for o in outcomes if o.kind == Kind(DIRECT) and o.ok and o.sent > first_last + 0.1
             and o.model != f"direct-v{reloads}"]  # fmt: skip
    record(
        f"{reloads} hot reloads",
        outcomes,
        None,
        f"each in force after {min(took):.2f}..{max(took):.2f}s; providers then received {sorted(received)}",
    )
    assert failures == [], f"{len(failures)} of {len(outcomes)} requests failed: {samples(failures, outcomes[0].sent)}"
    assert stale == [], f"answers from an older config after the last one was in force: {samples(stale, first_last)}"
    assert received == {f"direct-v{reloads}", f"claude-v{reloads}"}


def test_envoy_sigkill_is_restarted_and_serves_again_quickly(
    start_stack: Callable[..., Stack], oa: MockProvider, an: MockProvider, record: Record
) -> None:
    stack = start_stack(_config(free_port(), oa, an))
    with Load(stack.url, STEADY, max_seconds=60, stream_chunks=STREAM_CHUNKS) as load:
        wait_for(_ok_since(load, 0, 50), 20, "the load to get going")
        victim = _one_pid(stack, "envoy")
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        wait_for(_replaced(stack, "envoy", victim), 15, "`up` to restart Envoy")
        restarted_in = time.monotonic() - killed
        wait_for(_ok_since(load, killed, 1), 20, "a request sent after the kill to be served")
        served_in = min(o.done for o in load.outcomes if o.ok and o.sent >= killed) - killed
        wait_for(_ok_since(load, killed + served_in + 1, 100), 20, "steady load after the restart")
        outcomes = load.stop()

    failures = failed(outcomes)
    in_flight = in_flight_at(outcomes, killed)
    late = [o for o in failures if o.sent >= killed + served_in + 1]
    refused = [o for o in failures if o.refused]
    record(
        "Envoy SIGKILL",
        outcomes,
        served_in,
        f"{len(in_flight)} in flight at the kill; Envoy restarted in {restarted_in:.2f}s, first 200 after "
        f"{served_in:.2f}s; failed: {len(failures) - len(refused)} cut, {len(refused)} refused at connect "
        f"(clients retry every 20 ms), {len(late)} after it served again",
    )
    assert served_in <= 10, f"serving again only {served_in:.1f}s after Envoy was killed"
    assert late == [], f"{len(late)} requests failed more than 1s after Envoy served again: {samples(late, killed)}"
