"""Checks before `up` or `node` starts anything: every address it will listen on is free, and warnings for
addresses that would expose provider API keys (a TCP admin or control plane)."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from dataclasses import replace
from pathlib import Path

from switchyard.addresses import AddressError, TcpAddress, UnixAddress, parse_address, parse_address_list
from switchyard.config import Config
from switchyard.supervisor.options import GatewayOptions, NodeOptions
from switchyard.tls import is_local


def busy_ports(options: GatewayOptions, config: Config) -> list[str]:
    assert options.admin is not None and options.xds is not None
    wanted = {
        f"{config.listen_host}:{config.listen_port}": "listen (from the YAML)",
        options.admin: "--admin",
        options.xds: "--xds",
        **({options.api: "--api"} if options.api else {}),
        **{address: "--extproc (one address per worker)" for address in options.extproc_addresses},
    }
    return unavailable(wanted)


def node_busy_ports(options: NodeOptions) -> list[str]:
    """What a node listens on: its listener (when it names it), Envoy's admin, the ext_procs. The control plane
    address is one it connects to."""
    assert options.admin is not None
    wanted = {
        **({options.listen: "--listen"} if options.listen else {}),
        options.admin: "--admin",
        **{address: "--extproc (one address per worker)" for address in options.extproc_addresses},
    }
    return unavailable(wanted)


def unavailable(wanted: dict[str, str]) -> list[str]:
    """`ADDRESS (flag): why` for each address that cannot be listened on now."""
    busy = []
    for address, what in wanted.items():
        try:
            parsed = parse_address(address)
        except AddressError as error:
            busy.append(f"{address} ({what}): {error}")
            continue
        problem = unix_path_problem(parsed.path) if isinstance(parsed, UnixAddress) else tcp_port_problem(parsed)
        if problem:
            busy.append(f"{address} ({what}): {problem}")
    return busy


def tcp_port_problem(address: TcpAddress) -> str | None:
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address.host, address.port))
        except OSError as error:
            return error.strerror or str(error)
    return None


def unix_path_problem(path: str) -> str | None:
    """None if the path is free to bind; a stale socket file (nobody answers on it) is removed."""
    if not Path(path).parent.is_dir():
        return f"the directory {Path(path).parent} does not exist"
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if not stat.S_ISSOCK(mode):
        return "exists and is not a socket"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        try:
            probe.connect(path)
        except ConnectionRefusedError:  # left behind by a process that is gone
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            return None
        except OSError as error:
            return error.strerror or str(error)
    return "something already answers on this socket"


def key_exposure_warnings(options: NodeOptions) -> list[str]:
    warnings = []
    for flag, address, how in (
        ("--admin", options.admin, "through Envoy's admin config_dump"),
        ("--xds", options.xds, "by subscribing to the control plane over ADS"),
    ):
        if address is not None and isinstance(parse_address(address), TcpAddress):
            warnings.append(
                f"WARNING: {flag} {address} is a TCP port: anyone who can reach it can read the provider API keys "
                f"{how}. Leave {flag} out for an owner-only Unix socket in the work dir."
            )
    return warnings


def node_warnings(options: NodeOptions) -> list[str]:
    warnings = key_exposure_warnings(replace(options, xds=None))  # the node does not serve the control plane
    if (
        options.xds is not None
        and options.tls is None
        and any(isinstance(a, TcpAddress) for a in parse_address_list(options.xds))
    ):
        warnings.append(
            f"WARNING: --controlplane {options.xds} is plain TCP: the provider API keys the control plane sends "
            "this node are not encrypted. Between hosts give --tls-cert/--tls-key/--tls-ca for mTLS."
        )
    return warnings


# The listener filter that checks client keys: a node tells from its Envoy's listener whether its control plane's
# config has clients.
from switchyard.contract import CLIENT_AUTH_FILTER as CLIENT_AUTH_FILTER  # noqa: E402


def open_gateway_warning(listen: str | None, has_clients: bool) -> str | None:
    """Said at start when anyone beyond this machine may call every route on the provider keys."""
    if listen is None or has_clients:
        return None
    try:
        address = parse_address(listen)
    except AddressError:
        return None
    if is_local(address):
        return None
    return (
        f"WARNING: the listener {listen} is reachable beyond this machine and the config defines no `clients:`: "
        "anyone who reaches it may call every route on your provider keys. Define clients with keys "
        "(docs/clients-and-limits.md), or listen on 127.0.0.1."
    )


def admin_line(admin: str) -> str:
    parsed = parse_address(admin)
    if isinstance(parsed, UnixAddress):
        return (
            f"  Envoy admin:  {parsed.path}  (Unix socket, owner-only; "
            f"curl --unix-socket {parsed.path} http://envoy/ready)\n"
        )
    return f"  Envoy admin:  http://{parsed}  (TCP: its config_dump shows provider API keys to anyone who reaches it)\n"
