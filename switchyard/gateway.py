"""`switchyard up`: the control plane, the ext_proc and Envoy as supervised processes.

Start order follows the data path backwards: the control plane first (it refuses bad config), then the
ext_proc (it subscribes to the rewrite table), then Envoy, whose listener therefore only appears once a
request through it can be rewritten. A child that dies is restarted with back-off; too many deaths in a
minute stop everything rather than limp along.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from switchyard.bootstrap import BootstrapParams, render_bootstrap, split_address
from switchyard.config import Config, ConfigError, load_config
from switchyard.processes import Child, envoy_binary, switchyard_command, wait_until

log = logging.getLogger("switchyard.up")

_RESTARTS_PER_MINUTE = 5


@dataclass
class GatewayOptions:
    config_path: Path
    admin: str = "127.0.0.1:9901"
    xds: str = "127.0.0.1:18000"
    extproc: str = "127.0.0.1:18001"
    # Each ext_proc is one Python process (one core at most); Envoy spreads attempts over all of them.
    extproc_workers: int = 1
    api: str | None = "127.0.0.1:18002"
    envoy_concurrency: int = 2
    envoy_log_level: str = "warning"
    log_level: str = "info"
    log_dir: Path | None = None
    tls_ca_file: str | None = None
    rewrite_attempts: bool = True
    ready_timeout: float = 30.0
    extra_children: list[Child] = field(default_factory=list)

    @property
    def extproc_addresses(self) -> tuple[str, ...]:
        """Worker i listens on the --extproc port + i: distinct endpoints, so Envoy balances across them."""
        host, port = split_address(self.extproc)
        return tuple(f"{host}:{port + i}" for i in range(self.extproc_workers))

    @property
    def extproc_names(self) -> tuple[str, ...]:
        if self.extproc_workers == 1:
            return ("extproc",)
        return tuple(f"extproc-{i + 1}" for i in range(self.extproc_workers))


class Gateway:
    def __init__(self, options: GatewayOptions, config: Config) -> None:
        self.options = options
        self.config = config
        self._workdir = Path(tempfile.mkdtemp(prefix="switchyard-"))
        self._stopping = False
        self.children = [*options.extra_children, *self._core_children()]

    def _log_path(self, name: str) -> Path | None:
        return None if self.options.log_dir is None else self.options.log_dir / f"{name}.log"

    def _core_children(self) -> list[Child]:
        o = self.options
        bootstrap = self._workdir / "envoy-bootstrap.yaml"
        bootstrap.write_text(
            render_bootstrap(
                BootstrapParams(node_id="switchyard-envoy", admin=o.admin, xds=o.xds, extprocs=o.extproc_addresses)
            )
        )
        level = ["--log-level", o.log_level]
        return [
            Child(
                "controlplane",
                switchyard_command(
                    *level,
                    "controlplane",
                    str(o.config_path),
                    "--listen",
                    o.xds,
                    "--state-dir",
                    str(self._workdir),
                    *(["--tls-ca-file", o.tls_ca_file] if o.tls_ca_file else []),
                    *([] if o.rewrite_attempts else ["--no-rewrite"]),
                    *(["--api", o.api] if o.api else []),
                ),
                self._log_path("controlplane"),
            ),
            *(
                Child(
                    name,
                    switchyard_command(
                        *level, "extproc", "--listen", address, "--controlplane", o.xds, "--instance", name
                    ),
                    self._log_path(name),
                )
                for name, address in zip(o.extproc_names, o.extproc_addresses, strict=True)
            ),
            Child(
                "envoy",
                [
                    envoy_binary(),
                    "-c",
                    str(bootstrap),
                    "--disable-hot-restart",
                    "--concurrency",
                    str(o.envoy_concurrency),
                    "--log-level",
                    o.envoy_log_level,
                    "--drain-time-s",
                    "5",
                ],
                self._log_path("envoy"),
            ),
        ]

    @property
    def base_url(self) -> str:
        host = self.config.listen_host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"http://{host}:{self.config.listen_port}"

    def _listener_answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/v1/models", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def start(self) -> bool:
        for child in self.children:
            child.start()
        dead: list[Child] = []

        def ready_or_dead() -> bool:
            dead.extend(c for c in self.children if not c.running and c not in dead)
            return bool(dead) or self._listener_answers()

        if not wait_until(ready_or_dead, self.options.ready_timeout, 0.1) or dead:
            for child in dead or self.children:
                log.error(
                    "%s %s; last output:\n%s",
                    child.name,
                    f"exited with {child.exit_code}" if dead else "not ready in time",
                    child.log_tail(),
                )
            self.stop()
            return False
        return True

    def supervise(self) -> int:
        """Block until SIGINT/SIGTERM; forward SIGHUP to the control plane (reload)."""
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGHUP, self._forward_reload)
        code = 0
        while not self._stopping:
            for child in self.children:
                if not child.running and not self._stopping and not self._restart(child):
                    code = 1
                    self._stopping = True
                    break
            time.sleep(0.2)
        self.stop()
        return code

    def _restart(self, child: Child) -> bool:
        now = time.monotonic()
        child.restarts = [t for t in child.restarts if now - t < 60] + [now]
        if len(child.restarts) > _RESTARTS_PER_MINUTE:
            log.error(
                "%s keeps dying (exit %s); stopping Switchyard.\n%s",
                child.name,
                child.exit_code,
                child.log_tail(),
            )
            return False
        log.warning("%s exited with %s; restarting", child.name, child.exit_code)
        child.stop()
        time.sleep(min(0.1 * 2 ** len(child.restarts), 2.0))
        child.start()
        return True

    def _forward_reload(self, *_: object) -> None:
        log.info("SIGHUP: asking the control plane to reload %s", self.options.config_path)
        self._child("controlplane").signal(signal.SIGHUP)

    def _child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    def _request_stop(self, *_: object) -> None:
        self._stopping = True

    def stop(self) -> None:
        self._stopping = True
        for child in reversed(self.children):  # Envoy first: stop taking requests before the rest goes
            child.stop()


def _busy_ports(options: GatewayOptions, config: Config) -> list[str]:
    wanted = {
        f"{config.listen_host}:{config.listen_port}": "listen (from the YAML)",
        options.admin: "--admin",
        options.xds: "--xds",
        **({options.api: "--api"} if options.api else {}),
        **{address: "--extproc (and the ports after it, one per worker)" for address in options.extproc_addresses},
    }
    busy = []
    for address, what in wanted.items():
        host, port = split_address(address)
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as error:
                busy.append(f"{address} ({what}): {error.strerror}")
    return busy


def run_up(options: GatewayOptions, banner: str = "") -> int:
    try:
        config = load_config(options.config_path)
    except ConfigError as error:
        print(error.render(), file=sys.stderr)
        print("Nothing was started.", file=sys.stderr)
        return 2
    if busy := _busy_ports(options, config):
        print("Cannot start: these addresses are not available:\n  " + "\n  ".join(busy), file=sys.stderr)
        print("Nothing was started.", file=sys.stderr)
        return 2
    gateway = Gateway(options, config)
    if not gateway.start():
        return 1
    model = config.routes[0].model
    status_line = f"  Status:       switchyard status --api {options.api}\n" if options.api else ""
    print(
        f"Switchyard is up: {len(config.routes)} route(s) from {options.config_path}\n"
        f"  OpenAI API:   {gateway.base_url}/v1  (POST /chat/completions, /completions, /embeddings; GET /models)\n"
        f"  Anthropic:    {gateway.base_url}/v1/messages  (POST; for the anthropic SDK, base_url={gateway.base_url})\n"
        f"  Envoy admin:  http://{options.admin}  (loopback only)\n"
        f"{status_line}"
        f"  Try:  curl -s {gateway.base_url}/v1/chat/completions -H 'content-type: application/json' "
        f'-d \'{{"model": "{model}", "messages": [{{"role": "user", "content": "hi"}}]}}\' -i\n'
        f"{banner}"
        "Edit the YAML (or send SIGHUP) to reload; Ctrl-C stops everything.",
        flush=True,
    )
    return gateway.supervise()
