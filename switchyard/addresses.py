"""Where a Switchyard process listens or connects: `HOST:PORT` (TCP) or `unix:/absolute/path` (a Unix socket).

One parser for every flag that takes an address (`up --admin/--xds/--extproc`, `controlplane --listen`,
`extproc --listen`, `envoy-bootstrap`). gRPC takes both spellings as they are, for servers and channels;
Envoy wants a `socket_address` or a `pipe`, and only a STATIC cluster may hold pipe endpoints.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

UNIX_PREFIX = "unix:"
# sockaddr_un.sun_path is 108 bytes on Linux, the terminating NUL included.
MAX_UNIX_PATH_BYTES = 107
# Envoy's admin pipe: owner read/write only (0600). Envoy chmods the socket right after binding it.
OWNER_ONLY = 0o600


class AddressError(ValueError):
    """An address that is neither HOST:PORT nor unix:/absolute/path."""


@dataclass(frozen=True)
class TcpAddress:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    def envoy(self) -> dict[str, Any]:
        return {"socket_address": {"address": self.host, "port_value": self.port}}


@dataclass(frozen=True)
class UnixAddress:
    path: str

    def __str__(self) -> str:
        return f"{UNIX_PREFIX}{self.path}"

    def envoy(self, mode: int | None = None) -> dict[str, Any]:
        """A pipe; `mode` is for sockets Envoy listens on (its admin), not for endpoints it connects to."""
        return {"pipe": {"path": self.path, **({"mode": mode} if mode is not None else {})}}


Address = TcpAddress | UnixAddress


def parse_address(text: str) -> Address:
    text = text.strip()
    if text.startswith(UNIX_PREFIX):
        return _parse_unix(text[len(UNIX_PREFIX) :], text)
    return _parse_tcp(text)


def _parse_unix(path: str, text: str) -> UnixAddress:
    if path.startswith("///"):  # the URI spelling unix:///path, which gRPC also takes
        path = path[2:]
    if not path.startswith("/") or path.startswith("//"):
        raise AddressError(f"{text!r}: a Unix socket address is unix:/absolute/path")
    if "\0" in path:
        raise AddressError(f"{text!r}: a Unix socket path cannot contain NUL")
    if path.endswith("/"):
        raise AddressError(f"{text!r}: a Unix socket path names a file, not a directory")
    size = len(path.encode())
    if size > MAX_UNIX_PATH_BYTES:
        raise AddressError(
            f"{text!r}: a Unix socket path is at most {MAX_UNIX_PATH_BYTES} bytes (this one has {size}); "
            "pick a shorter directory"
        )
    return UnixAddress(path)


def _parse_tcp(text: str) -> TcpAddress:
    host, colon, port_text = text.rpartition(":")
    if not colon or not host:
        raise AddressError(f"{text!r}: expected HOST:PORT or unix:/absolute/path")
    if host.startswith("["):
        if not host.endswith("]"):
            raise AddressError(f"{text!r}: an IPv6 host is written in brackets, e.g. [::1]:9901")
        host = host[1:-1]
    elif ":" in host:
        raise AddressError(f"{text!r}: write an IPv6 host in brackets, e.g. [::1]:9901")
    if not host:
        raise AddressError(f"{text!r}: the host is missing")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise AddressError(f"{text!r}: the port must be a number from 1 to 65535")
    return TcpAddress(host, int(port_text))


def address_arg(text: str) -> str:
    """An argparse `type=`: rejects a bad address at parse time, keeps the flag's value a (normalized) string."""
    try:
        return str(parse_address(text))
    except AddressError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_address_list(text: str) -> tuple[Address, ...]:
    """`ADDRESS[,ADDRESS...]`: several control-plane replicas, in order of preference."""
    parts = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not part for part in parts):
        raise AddressError(f"{text!r}: expected one address or several separated by commas, e.g. cp1:18000,cp2:18000")
    addresses = tuple(parse_address(part) for part in parts)
    if len(set(addresses)) != len(addresses):
        raise AddressError(f"{text!r}: an address is listed twice")
    return addresses


def address_list_arg(text: str) -> str:
    """An argparse `type=` for `ADDRESS[,ADDRESS...]`; the value stays one string, each address normalized."""
    try:
        return ",".join(str(address) for address in parse_address_list(text))
    except AddressError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def split_address(address: str) -> tuple[str, int]:
    """(host, port) of a TCP HOST:PORT, for the places that only ever listen on TCP (the status API)."""
    parsed = parse_address(address)
    if not isinstance(parsed, TcpAddress):
        raise AddressError(f"{address!r}: expected HOST:PORT (a Unix socket is not supported here)")
    return parsed.host, parsed.port


def numbered(address: str, count: int) -> tuple[str, ...]:
    """`count` distinct addresses from one, one per worker process.

    TCP: the port and the ones after it. Unix: the path itself for one worker, else NAME-1.sock … NAME-N.sock.
    """
    if count < 1:
        raise ValueError(f"at least one worker is needed, not {count}")
    parsed = parse_address(address)
    if count == 1:
        return (str(parsed),)
    if isinstance(parsed, TcpAddress):
        if parsed.port + count - 1 > 65535:
            raise AddressError(f"{address!r}: {count} workers need the ports up to {parsed.port + count - 1}")
        return tuple(str(TcpAddress(parsed.host, parsed.port + i)) for i in range(count))
    path = PurePosixPath(parsed.path)
    # Each name is parsed again: "-N" makes the path longer, and it must still fit sun_path.
    return tuple(
        str(parse_address(f"{UNIX_PREFIX}{path.with_name(f'{path.stem}-{i + 1}{path.suffix}')}")) for i in range(count)
    )


def envoy_cluster_type(addresses: list[Address] | tuple[Address, ...]) -> str:
    """STATIC for pipe endpoints (DNS cannot resolve them), STRICT_DNS for host names as before."""
    if not any(isinstance(a, UnixAddress) for a in addresses):
        return "STRICT_DNS"
    names = [str(a) for a in addresses if isinstance(a, TcpAddress) and not a.is_ip]
    if names:
        raise AddressError(f"cannot mix Unix sockets with host names in one cluster: {', '.join(names)}")
    return "STATIC"


def bind_grpc(server: Any, listen: str, credentials: Any = None) -> bool:
    """Bind a grpc.aio server to `listen` (with TLS when `credentials` are given); False (and nothing bound)
    when the address cannot be had.

    grpcio raises rather than return 0 on most bind failures. A Unix socket is made owner read/write only:
    what runs behind it (ADS, the ext_proc) carries provider keys."""
    try:
        if credentials is None:
            bound = bool(server.add_insecure_port(listen) != 0)
        else:
            bound = bool(server.add_secure_port(listen, credentials) != 0)
    except RuntimeError:
        return False
    address = parse_address(listen)
    if bound and isinstance(address, UnixAddress):
        os.chmod(address.path, OWNER_ONLY)
    return bound
