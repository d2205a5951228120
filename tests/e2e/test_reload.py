"""Live reconfiguration: edits and SIGHUP change routing with no failed request; a bad edit changes nothing."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchyard.supervisor.processes import free_port
from tests.support.harness import MockProvider, RequestLoop, Stack, running_stack, wait_for

pytestmark = pytest.mark.e2e


def versions_in_force(log: str) -> list[str]:
    """The config versions the control plane put in force, in order (content hashes, not counts)."""
    return re.findall(r"config version (\S+) in force", log)


def _config(port: int, mock: MockProvider, first: str, second: str, extra: str = "") -> str:
    return f"""
listen: 127.0.0.1:{port}
providers:
  openai: {{kind: openai, base_url: "{mock.url}", api_key: sk-reload-test}}
routes:
  - model: live
    targets:
      - {{name: {first}, provider: openai, model: {first}-model, priority: 0}}
      - {{name: {second}, provider: openai, model: {second}-model, priority: 1}}
{extra}"""


@pytest.fixture
def mock(tmp_path: Path) -> Iterator[MockProvider]:
    provider = MockProvider("reload", tmp_path)
    yield provider
    provider.stop()


def test_edit_changes_routing_live_with_zero_failed_requests(tmp_path: Path, mock: MockProvider) -> None:
    port = free_port()
    with running_stack(_config(port, mock, "alpha", "beta"), tmp_path) as stack:
        loop = RequestLoop(stack.url)
        wait_for(lambda: len(loop.results) >= 50, 20, "the request loop to get going")

        stack.write_config(_config(port, mock, "beta", "alpha"))  # swap priorities
        wait_for(lambda: loop.results[-1][1] == "beta", 15, "routing to follow the edited priorities")
        served_after = len(loop.results)
        wait_for(lambda: len(loop.results) >= served_after + 50, 20, "more requests after the reload")
        results = loop.stop()

    failures = [r for r in results if r[0] != 200]
    assert failures == [], f"{len(failures)} of {len(results)} requests failed during the reload: {failures[:5]}"
    first_beta = next(i for i, r in enumerate(results) if r[1] == "beta")
    assert all(target == "alpha" for _, target in results[:first_beta])
    assert all(target == "beta" for _, target in results[first_beta:]), "routing flapped after the reload"
    assert len(versions_in_force(stack.log("controlplane"))) == 2, "one version at start, one after the reload"


def test_invalid_edit_is_reported_and_keeps_the_old_config(tmp_path: Path, mock: MockProvider) -> None:
    port = free_port()
    with running_stack(_config(port, mock, "alpha", "beta"), tmp_path) as stack:
        assert stack.chat("live").headers["x-switchyard-target"] == "alpha"

        broken = _config(port, mock, "beta", "alpha").replace(
            "provider: openai, model: beta", "provider: nope, model: beta"
        )
        stack.write_config(broken)
        wait_for(lambda: "rejected" in stack.log("controlplane"), 15, "the control plane to reject the edit")

        log = stack.log("controlplane")
        (first,) = versions_in_force(log)
        assert f"version {first} stays in force" in log
        assert "switchyard.yaml:8: routes[0].targets[0].provider: unknown provider 'nope'" in log
        for _ in range(10):
            response = stack.chat("live")
            assert response.status_code == 200
            assert response.headers["x-switchyard-target"] == "alpha"


def test_sighup_reloads_after_a_change_the_watch_cannot_see(tmp_path: Path, mock: MockProvider) -> None:
    port = free_port()
    with running_stack(_config(port, mock, "alpha", "beta"), tmp_path) as stack:
        assert stack.chat("live").status_code == 200
        # A route that only exists after the reload; SIGHUP must bring it in even if the watch already did.
        stack.write_config(
            _config(
                port, mock, "alpha", "beta", extra="  - {model: added, targets: [{provider: openai, model: added}]}\n"
            )
        )
        stack.signal(signal.SIGHUP)
        wait_for(lambda: "config reload (SIGHUP)" in stack.log("controlplane"), 15, "the SIGHUP reload")
        wait_for(lambda: stack.chat("added").status_code == 200, 15, "the added route to serve")
        assert stack.chat("added").json()["model"] == "added"


def test_extproc_crash_is_restarted_and_traffic_recovers(tmp_path: Path, mock: MockProvider) -> None:
    import os

    port = free_port()
    with running_stack(_config(port, mock, "alpha", "beta"), tmp_path) as stack:
        assert stack.chat("live").status_code == 200
        pid = int(_pid_of(stack, "extproc"))
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: re.search(r"extproc(-\d+)? exited", stack.log("up")), 10, "the supervisor to notice")
        wait_for(lambda: stack.chat("live").status_code == 200, 20, "traffic to recover after the restart")


def _pid_of(stack: Stack, name: str) -> str:
    import subprocess

    # The first ext_proc (extproc-1.sock with the default two workers), or the control plane.
    address = f"unix:{stack.work_dir}/extproc" if name == "extproc" else stack.xds
    out = subprocess.run(["pgrep", "-f", f"switchyard.* {name} .*--listen {address}"], capture_output=True, text=True)
    pids = out.stdout.split()
    assert pids, f"no {name} process found"
    return pids[0]


def test_controlplane_crash_during_invalid_edit_serves_last_good_config(tmp_path: Path, mock: MockProvider) -> None:
    import os

    port = free_port()
    with running_stack(_config(port, mock, "alpha", "beta"), tmp_path) as stack:
        stack.write_config("routes: [this is not: valid")
        wait_for(lambda: "rejected" in stack.log("controlplane"), 15, "the edit to be rejected")
        pid = int(_pid_of(stack, "controlplane"))
        os.kill(pid, signal.SIGKILL)

        wait_for(lambda: "serving the last good config" in stack.log("controlplane"), 20, "a restart on the last good")
        assert stack.process.poll() is None, "switchyard up must keep running"
        # The status API says so: health and latency since then are rebuilt from traffic.
        restarted = wait_for(lambda: stack.status()["control_plane"], 10, "the restarted control plane's status")
        assert restarted["restarted"] is True and restarted["uptime_s"] < 60
        for _ in range(5):
            assert stack.chat("live").headers["x-switchyard-target"] == "alpha"

        stack.write_config(_config(port, mock, "beta", "alpha"))  # fixing the file is picked up again
        wait_for(lambda: stack.chat("live").headers["x-switchyard-target"] == "beta", 15, "the fixed file to apply")


def test_stream_in_flight_survives_a_reload_of_its_route(tmp_path: Path) -> None:
    slow = MockProvider("slow-stream", tmp_path, ("--chunk-delay-ms", "300", "--stream-chunks", "6"))
    try:
        port = free_port()
        with running_stack(_config(port, slow, "alpha", "beta"), tmp_path) as stack:
            body = {"model": "live", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
            with stack.client.stream("POST", "/v1/chat/completions", json=body) as response:
                lines = response.iter_lines()
                first = next(line for line in lines if line.startswith("data: "))
                stack.write_config(_config(port, slow, "beta", "alpha"))  # rebuilds the route's cluster
                wait_for(lambda: len(versions_in_force(stack.log("controlplane"))) == 2, 15, "the reload")
                rest = [line for line in lines if line.startswith("data: ")]
            assert '"model":"alpha-model"' in first.replace(" ", "")
            assert rest[-1] == "data: [DONE]", f"the stream was cut by the reload: {rest[-2:]}"
    finally:
        slow.stop()
