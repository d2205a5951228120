"""`switchyard up` and `switchyard node`: the gateway's processes, supervised.

A node (`switchyard node`, class Node) is Envoy and its ext_procs, configured over ADS by a control plane
elsewhere. `up` (class Gateway) is the one-host bundle: a node plus its own control plane. Both share one
Supervisor: start, readiness, restarts, the drain and the stop are the same code.

Start order follows the data path backwards: the control plane (it refuses bad config) and the ext_procs
first, then Envoy once their sockets answer, so Envoy's first ADS stream finds the control plane (started
together, Envoy warned about a missing socket until the control plane had bound it). Envoy's listener only
appears once the control plane has configured it. A child that dies
is restarted with back-off; too many deaths in a minute stop everything rather than limp along.

A planned stop (Ctrl-C/SIGTERM) drains first (switchyard/supervisor/drain.py): /healthz turns 503, the listener closes
after the notice, requests and streams in flight finish (up to the drain timeout); then Envoy, the ext_procs
and (for `up`) the control plane stop, in that order. A second signal stops everything at once.

Provider API keys are in Envoy's configuration (pushed over ADS): Envoy's admin (config_dump) and the control
plane's gRPC port can show them. So by default nothing of ours listens on TCP except the gateway listener and
the status API: the admin, xDS and ext_proc addresses are Unix sockets, owner-only, in a private work dir.
"""

from __future__ import annotations

import json
import logging
import shutil
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from controlplane.serving_groups import can_serve
from controlplane.suffix_check import suffix_warnings
from switchyard.addresses import AddressError, TcpAddress, parse_address
from switchyard.config import ClientEndpoint, Config, ConfigError, load_config
from switchyard.supervisor.bootstrap import BootstrapParams, render_bootstrap
from switchyard.supervisor.controlplane_api import fetch_status
from switchyard.supervisor.drain import DrainSettings, drain_envoy
from switchyard.supervisor.envoy_admin import AdminError, EnvoyAdmin
from switchyard.supervisor.options import (
    GatewayOptions,
    NodeOptions,
    remove_owned_work_dir,
)
from switchyard.supervisor.preflight import (
    CLIENT_AUTH_FILTER,
    admin_line,
    busy_ports,
    key_exposure_warnings,
    node_busy_ports,
    node_warnings,
    open_gateway_warning,
)
from switchyard.supervisor.processes import Child, envoy_binary, switchyard_command, wait_until
from switchyard.tls import EnvoyTls, write_sds_files

log = logging.getLogger("switchyard.up")

_RESTARTS_PER_MINUTE = 5


_Options = TypeVar("_Options", bound=NodeOptions)


class Supervisor(Generic[_Options]):
    """Starts the children, waits until the listener answers, restarts what dies, drains and stops: the same
    for `up` (Gateway) and `node` (Node). Subclasses say which children there are and where the listener is."""

    READY_PATH = "/healthz"

    def __init__(self, options: _Options) -> None:
        self.options: _Options = options.resolved()
        assert self.options.work_dir is not None
        self._workdir = self.options.work_dir
        self._stop_signals = 0  # Ctrl-C/SIGTERM received: the first drains, a second stops at once
        self._stop_reason = ""
        self._drain_exits: set[str] = set()  # children seen dead during the drain (logged once, not restarted)
        self.children = [*options.extra_children, *self._core_children()]

    def _log_path(self, name: str) -> Path | None:
        return None if self.options.log_dir is None else self.options.log_dir / f"{name}.log"

    def _core_children(self) -> list[Child]:
        return self._node_children()

    def _node_children(self) -> list[Child]:
        """The ext_procs and Envoy, in start order."""
        o = self.options
        assert o.admin is not None and o.xds is not None
        bootstrap = self._workdir / "envoy-bootstrap.yaml"
        tls = None if o.tls is None else EnvoyTls(o.tls, self._workdir)
        if tls is not None:
            write_sds_files(tls)
        bootstrap.write_text(
            render_bootstrap(
                BootstrapParams(
                    node_id=o.name, admin=o.admin, xds=o.xds, extprocs=o.extproc_addresses, listen=o.listen, tls=tls
                )
            )
        )
        level = ["--log-level", o.log_level]
        return [
            *(
                Child(
                    name,
                    switchyard_command(*level, "extproc", "--listen", address, "--instance", name),
                    self._log_path(name),
                    listens_at=(address,),
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
                    # Listener updates over LDS give the connections of the old listener this long; the planned
                    # stop does not use Envoy's drain timer (the supervisor closes the listener itself).
                    "--drain-time-s",
                    "5",
                    # Once the drain starts, connections are told to go at once, not spread over the drain time
                    # (after healthcheck/fail every response carries `connection: close` anyway).
                    "--drain-strategy",
                    "immediate",
                ],
                self._log_path("envoy"),
                waits_for_earlier=True,
            ),
        ]

    def listener_address(self) -> str | None:
        """HOST:PORT of the client listener; None while it is not known yet."""
        return self.options.listen

    @property
    def base_url(self) -> str:
        address = self.listener_address()
        if address is None:
            raise RuntimeError("the listener's address is not known yet")
        parsed = parse_address(address)
        assert isinstance(parsed, TcpAddress)
        host = "127.0.0.1" if parsed.host in ("0.0.0.0", "::", "") else parsed.host
        return f"http://{TcpAddress(host, parsed.port)}"

    def _listener_answers(self) -> bool:
        if self.listener_address() is None:
            return False
        try:
            with urllib.request.urlopen(f"{self.base_url}{self.READY_PATH}", timeout=1) as response:
                return bool(response.status == 200)
        except urllib.error.HTTPError as error:
            # With `clients:` the model list wants a key: the routes' own 401 says they are in just as well.
            return self.READY_PATH != "/healthz" and error.code == 401
        except (urllib.error.URLError, OSError):
            return False

    def _not_ready_hint(self) -> str:
        return ""

    def start(self) -> bool:
        dead: list[Child] = []
        started: list[Child] = []

        def note_dead() -> bool:
            dead.extend(c for c in started if not c.running and c not in dead)
            return bool(dead)

        deadline = time.monotonic() + self.options.ready_timeout
        for child in self.children:
            if child.waits_for_earlier:
                wait_until(lambda: note_dead() or all(c.ready() for c in started), deadline - time.monotonic(), 0.05)
                if dead:
                    break
            child.start()
            started.append(child)

        def ready_or_dead() -> bool:
            return note_dead() or self._listener_answers()

        if dead or not wait_until(ready_or_dead, deadline - time.monotonic(), 0.1) or dead:
            if not dead and (hint := self._not_ready_hint()):
                log.error("%s", hint)
            for child in dead or started:
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
        """Restart dead children until SIGINT/SIGTERM, then drain and stop; SIGHUP asks for a reload."""
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGHUP, self._forward_reload)
        while not self._stop_signals:
            for child in self.children:
                if not child.running and not self._stop_signals and not self._restart(child):
                    self.stop()
                    return 1
            time.sleep(0.2)
        if self._stop_signals == 1:
            self.drain()
        self.stop()
        return 0

    def drain(self) -> None:
        """Let what is in flight finish (supervisor/drain.py); children that exit meanwhile are not restarted."""
        o = self.options
        assert o.admin is not None
        drain_envoy(
            EnvoyAdmin(o.admin),
            DrainSettings(timeout=o.drain_timeout, notice=o.drain_notice),
            envoy_running=self._envoy_running_during_drain,
            interrupted=lambda: self._stop_signals > 1,
            reason=self._stop_reason,
        )

    def _envoy_running_during_drain(self) -> bool:
        for child in self.children:
            if not child.running and child.name not in self._drain_exits:
                self._drain_exits.add(child.name)
                log.warning("%s exited with %s during the drain; not restarted", child.name, child.exit_code)
        return self._child("envoy").running

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
        log.info("SIGHUP: this node has no YAML; its config comes from the control plane at %s", self.options.xds)

    def _child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    def _request_stop(self, signum: int, _frame: object) -> None:
        self._stop_signals += 1
        name = signal.Signals(signum).name
        if self._stop_signals == 1:
            self._stop_reason = name
        elif self._stop_signals == 2:
            log.warning("%s again: stopping everything now", name)

    def stop(self) -> None:
        for child in reversed(self.children):  # Envoy first: stop taking requests before the rest goes
            child.stop()
        if self.options.owns_work_dir:
            shutil.rmtree(self._workdir, ignore_errors=True)


class Node(Supervisor[NodeOptions]):
    """`switchyard node`: Envoy and its ext_procs, configured by a control plane elsewhere."""

    def __init__(self, options: NodeOptions) -> None:
        self._discovered: str | None = None
        super().__init__(options)

    def listener_address(self) -> str | None:
        """`--listen`, or else the address the control plane gave Envoy's listener (from Envoy's admin)."""
        if self.options.listen is not None:
            return self.options.listen
        if self._discovered is None:
            assert self.options.admin is not None
            try:
                self._discovered = listener_address_of(EnvoyAdmin(self.options.admin).get("/listeners?format=json"))
            except AdminError:
                return None
        return self._discovered

    def _not_ready_hint(self) -> str:
        if self.listener_address() is None:
            return (
                f"Envoy has no listener after {self.options.ready_timeout:g}s: is the control plane at "
                f"{self.options.xds} running, and its config valid? "
                + (
                    "Does it accept this node's certificate (signed by the CA it was given as --tls-ca), and does "
                    "its own certificate name that address?"
                    if self.options.tls is not None
                    else "Does it require TLS (then give --tls-cert/--tls-key/--tls-ca)?"
                )
            )
        return f"the listener {self.listener_address()} does not answer {self.READY_PATH} with 200"


def listener_address_of(listeners_json: str) -> str | None:
    """HOST:PORT of the first listener in Envoy's `GET /listeners?format=json`; None when there is none yet."""
    try:
        statuses = json.loads(listeners_json).get("listener_statuses") or []
    except (ValueError, AttributeError):
        return None
    for status in statuses:
        socket_address = (status.get("local_address") or {}).get("socket_address")
        if socket_address and "port_value" in socket_address:
            return str(TcpAddress(socket_address.get("address", ""), int(socket_address["port_value"])))
    return None


class Gateway(Supervisor[GatewayOptions]):
    """`switchyard up`: a node plus its own control plane, which starts first (it refuses bad config)."""

    READY_PATH = "/v1/models"  # answered once the routes are in

    def __init__(self, options: GatewayOptions, config: Config) -> None:
        self.config = config
        super().__init__(options)

    def _core_children(self) -> list[Child]:
        o = self.options
        assert o.xds is not None
        controlplane = Child(
            "controlplane",
            switchyard_command(
                "--log-level",
                o.log_level,
                "controlplane",
                str(o.config_path),
                "--listen",
                o.xds,
                "--state-dir",
                str(self._workdir),
                *(["--tls-ca-file", o.tls_ca_file] if o.tls_ca_file else []),
                *(["--usage-db", o.usage_db] if o.usage_db else []),
                *(["--insecure"] if o.insecure else []),
                *([] if o.rewrite_attempts else ["--no-rewrite"]),
                *(["--api", o.api] if o.api else []),
            ),
            self._log_path("controlplane"),
            listens_at=(o.xds,),
        )
        return [controlplane, *self._node_children()]

    def listener_address(self) -> str | None:
        return self.options.listen or str(TcpAddress(self.config.listen_host, self.config.listen_port))

    def _not_ready_hint(self) -> str:
        """What Envoy rejected, as the control plane's `/status` says: otherwise "not ready in time" was all a
        config that passed validation but that Envoy refused would show."""
        if not self.options.api:
            return ""
        try:
            nodes = fetch_status(self.options.api, timeout=2).get("nodes") or []
        except (OSError, ValueError, AttributeError):  # no answer, or not a status document
            return ""
        rejected = [node["rejected"] for node in nodes if isinstance(node, dict) and node.get("rejected")]
        return f"Envoy rejected the config the control plane sent it: {rejected[0]}" if rejected else ""

    def _forward_reload(self, *_: object) -> None:
        log.info("SIGHUP: asking the control plane to reload %s", self.options.config_path)
        self._child("controlplane").signal(signal.SIGHUP)


def run_up(options: GatewayOptions, banner: str = "") -> int:
    try:
        config = load_config(options.config_path)
    except ConfigError as error:
        print(error.render(), file=sys.stderr)
        print("Nothing was started.", file=sys.stderr)
        return 2
    for warning in suffix_warnings(config, options.config_path.read_text(encoding="utf-8"), str(options.config_path)):
        _say_warning(warning)
    resolved = _preflight(options, lambda o: busy_ports(o, config), key_exposure_warnings)
    if resolved is None:
        return 2
    options = resolved
    gateway = Gateway(options, config)
    if not gateway.start():
        return 1
    assert options.admin is not None
    _say_warning(open_gateway_warning(gateway.listener_address(), bool(config.clients)))
    model = config.routes[0].model
    status_line = (
        f"  Status:       http://{options.api}/ (live page), or {cli_command()} status --api {options.api}\n"
        if options.api
        else ""
    )
    print(
        f"Switchyard is up: {len(config.routes)} route(s) from {options.config_path}\n"
        f"{route_lines(config)}"
        f"  OpenAI API:   {gateway.base_url}/v1  (POST /chat/completions, /completions, /embeddings; GET /models)\n"
        f"  Anthropic:    {gateway.base_url}/v1/messages  (POST; for the anthropic SDK, base_url={gateway.base_url})\n"
        f"{admin_line(options.admin)}"
        f"{status_line}"
        f"  Work dir:     {options.work_dir}\n"
        f"  Try:  curl -s {gateway.base_url}/v1/chat/completions -H 'content-type: application/json' "
        f'-d \'{{"model": "{model}", "messages": [{{"role": "user", "content": "hi"}}]}}\' -i\n'
        f"{banner}"
        "Edit the YAML (or send SIGHUP) to reload; Ctrl-C stops everything.",
        flush=True,
    )
    return gateway.supervise()


def cli_command() -> str:
    """How to run `switchyard` from the shell that started this one: the venv's bin is often not on PATH
    (`make demo` runs .venv/bin/switchyard), so name the script by its path unless PATH finds this one."""
    script = Path(sys.executable).parent / "switchyard"
    if shutil.which("switchyard") == str(script) or not script.is_file():
        return "switchyard"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def route_lines(config: Config) -> str:
    """Each route (model) with the endpoints its targets serve: what a client may call it with."""
    lines = []
    for route in config.routes:
        served = [e.path for e in ClientEndpoint if any(can_serve(config, t, e) for t in route.targets)]
        lines.append(f"  Model {route.model}: POST {', '.join(served)}\n")
    return "".join(lines)


def _preflight(
    options: _Options,
    busy_ports: Callable[[_Options], list[str]],
    warnings: Callable[[_Options], list[str]],
) -> _Options | None:
    """The options resolved, or None (after saying why) when an address cannot be had: then nothing starts."""
    try:
        options = options.resolved()
    except (AddressError, OSError) as error:
        print(f"Cannot start: {error}", file=sys.stderr)
        print("Nothing was started.", file=sys.stderr)
        return None
    if busy := busy_ports(options):
        print("Cannot start: these addresses are not available:\n  " + "\n  ".join(busy), file=sys.stderr)
        print("Nothing was started.", file=sys.stderr)
        remove_owned_work_dir(options)
        return None
    for warning in warnings(options):
        _say_warning(warning)
    return options


def _say_warning(warning: str | None) -> None:
    """Logged (to stderr) so it also lands wherever the log is collected; printed if the log level hides it."""
    if warning is None:
        return
    if log.isEnabledFor(logging.WARNING):
        log.warning("%s", warning)
    else:
        print(warning, file=sys.stderr, flush=True)


def _node_has_clients(admin: str) -> bool:
    """Whether the control plane gave this node's listener the client-key check (a YAML with `clients:`)."""
    try:
        return CLIENT_AUTH_FILTER in EnvoyAdmin(admin).get("/config_dump?resource=dynamic_listeners")
    except AdminError:
        return True  # cannot tell: say nothing rather than something wrong


def run_node(options: NodeOptions) -> int:
    """`switchyard node`: one gateway node against a control plane elsewhere (it has no YAML to check)."""
    resolved = _preflight(options, node_busy_ports, node_warnings)
    if resolved is None:
        return 2
    options = resolved
    node = Node(options)
    if not node.start():
        return 1
    assert options.admin is not None and options.xds is not None
    _say_warning(open_gateway_warning(node.listener_address(), _node_has_clients(options.admin)))
    replicas = options.xds.split(",")
    source = (
        f"the control plane at {options.xds}"
        if len(replicas) == 1
        else f"the first of the control planes {', '.join(replicas)} that answers (attempt log to all)"
    )
    print(
        f"Switchyard node {options.name} is up, configured by {source}"
        f"{' over mTLS' if options.tls is not None else ''}\n"
        f"  Listener:     {node.base_url}  (OpenAI API under /v1, Anthropic at /v1/messages; "
        f"GET /healthz for load balancers)\n"
        f"{admin_line(options.admin)}"
        f"  Work dir:     {options.work_dir}\n"
        "Config changes come from the control plane; Ctrl-C/SIGTERM drains, then stops.",
        flush=True,
    )
    return node.supervise()
