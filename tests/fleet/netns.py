"""Test hosts made of Linux network namespaces: each host a namespace with one interface on a shared bridge.

The bridge lives in a namespace of its own, so the test network touches nothing outside: no address, route
or interface is added to the machine's own namespace, and 10.213.0.0/24 exists only between these hosts.
Names carry the test process's pid (and a counter), so parallel runs cannot collide. Everything is removed
on exit, also when the test fails; a namespace that cannot be made (not root, no CAP_NET_ADMIN, no `ip`)
raises NamespacesUnavailableError, which the tests turn into a skip that says why.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

SUBNET = "10.213.0"
_runs = itertools.count(1)


class NamespacesUnavailableError(RuntimeError):
    """This machine does not let the test make network namespaces."""


@dataclass(frozen=True)
class Host:
    name: str  # the role, e.g. "controlplane"
    namespace: str
    address: str

    @property
    def exec_prefix(self) -> tuple[str, ...]:
        """Run a command on this host: `ip netns exec` enters the namespace, then execs the command."""
        return ("ip", "netns", "exec", self.namespace)


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def _delete(namespace: str) -> None:
    subprocess.run(["ip", "netns", "delete", namespace], capture_output=True, timeout=30)


@contextmanager
def namespace_hosts(*roles: str) -> Iterator[dict[str, Host]]:
    """One host per role on one bridge, at SUBNET.1, .2, … in the order given."""
    if shutil.which("ip") is None:
        raise NamespacesUnavailableError("the `ip` command (iproute2) is not installed")
    prefix = f"sy{os.getpid()}-{next(_runs)}"
    switch = f"{prefix}-switch"
    made: list[str] = []
    try:
        try:
            _ip("netns", "add", switch)
        except RuntimeError as error:
            raise NamespacesUnavailableError(
                f"cannot make a network namespace ({error}); needs root or CAP_NET_ADMIN"
            ) from None
        made.append(switch)
        try:
            hosts = _wire(switch, prefix, roles, made)
        except RuntimeError as error:  # e.g. a kernel without bridge or veth support
            raise NamespacesUnavailableError(f"cannot wire the test network: {error}") from None
        yield hosts
    finally:
        for namespace in reversed(made):  # the veth pairs go with their namespaces
            _delete(namespace)


def _wire(switch: str, prefix: str, roles: tuple[str, ...], made: list[str]) -> dict[str, Host]:
    """A bridge in the switch namespace, and per role a namespace linked to it by a veth pair."""
    _ip("-n", switch, "link", "add", "br0", "type", "bridge")
    _ip("-n", switch, "link", "set", "br0", "up")
    hosts = {}
    for number, role in enumerate(roles, start=1):
        namespace = f"{prefix}-{role}"
        _ip("netns", "add", namespace)
        made.append(namespace)
        _ip("-n", namespace, "link", "set", "lo", "up")
        # Interface names are per namespace: the same short names in every run.
        port = f"port{number}"
        _ip("-n", switch, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", namespace)
        _ip("-n", switch, "link", "set", port, "master", "br0", "up")
        address = f"{SUBNET}.{number}"
        _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", namespace, "link", "set", "eth0", "up")
        hosts[role] = Host(role, namespace, address)
    return hosts
