"""Real processes for end-to-end tests: mock providers and a whole `switchyard up` stack on loopback.

The gateway listener, the status API and the mocks listen on 127.0.0.1 with free ports; Envoy's admin, the
control plane and the ext_proc on their default Unix sockets in the stack's work dir. Everything waits by
polling with deadlines and keeps every process's log so a failing test can show them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchyard.mock_provider.bedrock_responses import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY
from switchyard.supervisor.processes import free_port

PYTHON = sys.executable
ACTIVE_LOGS: list[tuple[str, Path]] = []  # (label, log file) of every process alive in the current test
# The log files `switchyard up --log-dir` writes: one per process (two ext_procs by default, one with
# --extproc-workers 1).
PROCESS_LOGS = (
    "up",
    "controlplane",
    "extproc",
    "extproc-1",
    "extproc-2",
    "envoy",
)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except Exception as error:
            last_error = error
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_error})" if last_error else "")
    )


def stop_process(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it is still there after `grace` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(grace)


class MockProvider:
    """A `switchyard mock-provider` process."""

    def __init__(
        self, name: str, log_dir: Path, extra_args: tuple[str, ...] = (), prefix: tuple[str, ...] = ()
    ) -> None:
        """`prefix` runs it under another command, e.g. `ip netns exec HOST` (tests/fleet/test_multihost.py)."""
        self.name = name
        self.log_path = log_dir / f"mock-{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [*prefix, PYTHON, "-m", "switchyard", "mock-provider", "--port", "0", "--name", name, *extra_args],
            stdout=subprocess.PIPE,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()  # the mock prints exactly one line once listening
        if "listening on" not in line:
            self.stop()
            raise AssertionError(f"mock provider {name} did not start: {line!r}\n{self.log_path.read_text()}")
        self.url = line.strip().rsplit(" ", 1)[-1]
        self.port = int(self.url.rsplit(":", 1)[-1])
        ACTIVE_LOGS.append((f"mock {name}", self.log_path))
        self.client = httpx.Client(base_url=self.url, timeout=10, verify=False)  # may be a TLS mock

    def set_rules(self, rules: list[dict[str, Any]]) -> None:
        self.client.put("/_mock/rules", json=rules).raise_for_status()

    def requests(self, model: str | None = None) -> list[dict[str, Any]]:
        recorded: list[dict[str, Any]] = self.client.get("/_mock/requests").json()["requests"]
        if model is None:
            return recorded
        return [r for r in recorded if isinstance(r["body"], dict) and r["body"].get("model") == model]

    def clear(self) -> None:
        self.client.delete("/_mock/requests").raise_for_status()

    def stop(self) -> None:
        stop_process(self.process)
        self._log.close()
        if (f"mock {self.name}", self.log_path) in ACTIVE_LOGS:
            ACTIVE_LOGS.remove((f"mock {self.name}", self.log_path))


def mock_provider_fixture(name: str, *args: str) -> Any:
    """A module-scoped fixture named `name`: one `switchyard mock-provider` of that name for the module's tests
    (`args`: its extra flags, e.g. `--api`, `anthropic`). Usage: `oa = mock_provider_fixture("oa")`."""

    @pytest.fixture(scope="module", name=name)
    def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockProvider]:
        mock = MockProvider(name, tmp_path_factory.mktemp(name), args)
        yield mock
        mock.stop()

    return provider


class Stack:
    """`switchyard up CONFIG` with free TCP ports, its sockets in `log_dir/work`, its processes' logs in `log_dir`."""

    def __init__(
        self, config_text: str, log_dir: Path, env: dict[str, str] | None = None, up_args: tuple[str, ...] = ()
    ) -> None:
        self.log_dir = log_dir
        self.config_path = log_dir / "switchyard.yaml"
        self.config_path.write_text(config_text)
        # `up` puts Envoy's admin, the control plane and the ext_proc on Unix sockets in its work dir.
        self.work_dir = log_dir / "work"
        self.admin_socket = self.work_dir / "envoy-admin.sock"
        self.xds_socket = self.work_dir / "xds.sock"
        self.xds = f"unix:{self.xds_socket}"
        self.extproc = f"unix:{self.work_dir / 'extproc.sock'}"
        self.api = f"127.0.0.1:{free_port()}"
        self.up_log = log_dir / "up.log"
        self._up_log_file = open(self.up_log, "wb")  # noqa: SIM115
        self.env = {**os.environ, **(env or {})}
        self.process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "switchyard",
                "--log-level",
                "debug",
                "up",
                str(self.config_path),
                "--work-dir",
                str(self.work_dir),
                "--api",
                self.api,
                "--log-dir",
                str(log_dir),
                "--envoy-log-level",
                "info",
                # No load balancer watches /healthz here: stop without the notice (drain tests pass their own).
                "--drain-notice",
                "0",
                *up_args,
            ],
            stdout=self._up_log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
        )
        for name in PROCESS_LOGS:
            ACTIVE_LOGS.append((name, log_dir / f"{name}.log"))
        wait_for(lambda: self._up_or_dead(), 40, "`switchyard up` to report the gateway is up")
        if self.process.poll() is not None:
            raise AssertionError(f"`switchyard up` exited with {self.process.returncode}:\n{self.up_log.read_text()}")
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def _up_or_dead(self) -> bool:
        return self.process.poll() is not None or "Switchyard is up" in self.up_log.read_text(errors="replace")

    @property
    def url(self) -> str:
        for line in self.config_path.read_text().splitlines():
            if line.startswith("listen:"):
                return "http://" + line.split(":", 1)[1].strip()
        raise AssertionError("test configs must set listen:")

    def chat(self, model: str, headers: dict[str, str] | None = None, **extra: Any) -> httpx.Response:
        body = {"model": model, "messages": [{"role": "user", "content": "hello"}], **extra}
        return self.client.post("/v1/chat/completions", json=body, headers=headers)

    def write_config(self, text: str) -> None:
        """Replace the file the way editors do (write elsewhere, rename over it)."""
        temporary = self.config_path.with_suffix(".tmp")
        temporary.write_text(text)
        temporary.replace(self.config_path)

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def status(self) -> dict[str, Any]:
        document: dict[str, Any] = httpx.get(f"http://{self.api}/status", timeout=10).json()
        return document

    def target_status(self, route: str, target: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = [
            t for r in self.status()["routes"] if r["model"] == route for t in r["targets"] if t["name"] == target
        ]
        (one,) = found
        return one

    def admin_get(self, path: str) -> str:
        """GET on Envoy's admin, over its Unix socket."""
        transport = httpx.HTTPTransport(uds=str(self.admin_socket))
        with httpx.Client(transport=transport, base_url="http://envoy", timeout=10) as admin:
            return admin.get(path).text

    def signal(self, sig: int = signal.SIGHUP) -> None:
        self.process.send_signal(sig)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._up_log_file.close()
        for name in PROCESS_LOGS:
            entry = (name, self.log_dir / f"{name}.log")
            if entry in ACTIVE_LOGS:
                ACTIVE_LOGS.remove(entry)
        return self.process.returncode


@contextmanager
def running_stack(
    config_text: str, log_dir: Path, env: dict[str, str] | None = None, up_args: tuple[str, ...] = ()
) -> Iterator[Stack]:
    stack = Stack(config_text, log_dir, env, up_args)
    try:
        yield stack
    finally:
        stack.stop()


def sse_events(response: httpx.Response) -> Iterator[dict[str, Any] | str]:
    for line in response.iter_lines():
        if line.startswith("data: "):
            payload = line[len("data: ") :]
            yield payload if payload == "[DONE]" else json.loads(payload)


class SwitchyardProcess:
    """Any `switchyard ARGS` process (`controlplane`, `node`, …), its output in `log_dir/NAME.log`, which is shown
    when the test fails, as are the logs of `extra_logs` (e.g. a node's Envoy). `prefix` runs it under another
    command, e.g. `ip netns exec HOST` (tests/fleet/test_multihost.py)."""

    def __init__(
        self,
        name: str,
        args: list[str],
        log_dir: Path,
        extra_logs: tuple[tuple[str, Path], ...] = (),
        prefix: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [*prefix, PYTHON, "-m", "switchyard", "--log-level", "debug", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self._logs = [(name, self.log_path), *extra_logs]
        ACTIVE_LOGS.extend(self._logs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float) -> None:
        """Until `text` is in the log; fails at once if the process exits first."""

        def seen() -> bool:
            if text in self.log():
                return True
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            return False

        deadline = time.monotonic() + timeout
        while not seen():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {text!r} in the log of {self.name}")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        for entry in self._logs:
            if entry in ACTIVE_LOGS:
                ACTIVE_LOGS.remove(entry)
        return self.process.returncode


def controlplane_process(name: str, config: Path, listen: str, api: str, log_dir: Path) -> SwitchyardProcess:
    """`switchyard controlplane CONFIG --listen LISTEN --api API`, serving once this returns."""
    process = SwitchyardProcess(name, ["controlplane", str(config), "--listen", listen, "--api", api], log_dir)
    process.wait_for_log("control plane serving ADS", 20)
    return process


def node_process(name: str, controlplanes: str, port: int, tmp_path: Path) -> SwitchyardProcess:
    """`switchyard node --name NAME --controlplane CONTROLPLANES --listen 127.0.0.1:PORT`, one ext_proc, its work
    dir (Envoy's admin socket: `tmp_path/NAME/envoy-admin.sock`) and logs under `tmp_path`. Not waited for:
    wait for `Switchyard node NAME is up` in its log."""
    log_dir = tmp_path / f"{name}-logs"
    log_dir.mkdir()
    return SwitchyardProcess(
        name,
        [
            "node",
            "--controlplane",
            controlplanes,
            "--name",
            name,
            "--listen",
            f"127.0.0.1:{port}",
            "--work-dir",
            str(tmp_path / name),
            "--log-dir",
            str(log_dir),
            "--extproc-workers",
            "1",
            "--envoy-log-level",
            "info",
            "--drain-notice",
            "0",
            "--drain-timeout",
            "5",
        ],
        tmp_path,
        extra_logs=((f"{name} envoy", log_dir / "envoy.log"), (f"{name} extproc", log_dir / "extproc.log")),
    )


class RequestLoop:
    """A bounded background loop of requests, one after another over `urls` in turn, recording every status
    and serving target."""

    def __init__(
        self, url: str | list[str], model: str = "live", max_seconds: float = 60, max_requests: int = 20_000
    ) -> None:
        self.results: list[tuple[int, str]] = []
        self._stop = threading.Event()
        urls = [url] if isinstance(url, str) else url
        self._thread = threading.Thread(target=self._run, args=(urls, model, max_seconds, max_requests), daemon=True)
        self._thread.start()

    def _run(self, urls: list[str], model: str, max_seconds: float, max_requests: int) -> None:
        deadline = time.monotonic() + max_seconds
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set() and time.monotonic() < deadline and len(self.results) < max_requests:
                url = urls[len(self.results) % len(urls)]
                try:
                    response = client.post(f"{url}/v1/chat/completions", json=body)
                    self.results.append((response.status_code, response.headers.get("x-switchyard-target", "")))
                except httpx.HTTPError as error:
                    self.results.append((0, repr(error)))

    def stop(self) -> list[tuple[int, str]]:
        self._stop.set()
        self._thread.join(15)
        return self.results


# The Bedrock mock verifies SigV4 signatures made with these test credentials; a stack reads them from its
# environment (`running_stack(..., env=BEDROCK_ENV)`), as a real deployment reads its own: never in the YAML.
BEDROCK_ENV = {"E2E_AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID, "E2E_AWS_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY}


def bedrock_provider(name: str, mock: MockProvider) -> str:
    """The YAML of a Bedrock provider `name` (under `providers:`) whose endpoint is `mock`, credentials from
    BEDROCK_ENV."""
    return (
        f"  {name}:\n"
        "    kind: bedrock\n"
        "    region: us-east-1\n"
        f'    base_url: "{mock.url}"\n'
        "    access_key_id: ${E2E_AWS_ACCESS_KEY_ID}\n"
        "    secret_access_key: ${E2E_AWS_SECRET_ACCESS_KEY}"
    )
