"""What one gateway node (`switchyard node`) or one-host gateway (`switchyard up`) runs with, and where its
sockets go: the options the CLI builds, the supervisor runs and the preflight checks read.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Self

from switchyard.addresses import UNIX_PREFIX, AddressError, numbered, parse_address, parse_address_list
from switchyard.supervisor.processes import Child
from switchyard.tls import TlsFiles

ADMIN_SOCKET = "envoy-admin.sock"
XDS_SOCKET = "xds.sock"
EXTPROC_SOCKET = "extproc.sock"  # extproc-1.sock … extproc-N.sock with several workers


DEFAULT_NODE_ID = "switchyard-envoy"  # `up`'s Envoy; `switchyard node --name` defaults to the host name


@dataclass(kw_only=True)
class NodeOptions:
    """One gateway node: Envoy and its ext_procs, configured by a control plane. `switchyard node` runs one
    against a control plane elsewhere; `up` runs one next to a control plane of its own (GatewayOptions)."""

    # The control plane's gRPC address (ADS and the attempt log), or several replicas' separated by commas
    # (`node --controlplane A,B`: ADS to the first that answers, the attempt log to all). None: a Unix socket
    # in the work dir (`up`'s).
    xds: str | None = None
    # The xDS node id: how the control plane's /status names this node.
    name: str = DEFAULT_NODE_ID
    # This node's own listener address, HOST:PORT (several nodes on one host); None: the YAML's `listen`.
    listen: str | None = None
    # mTLS to the control plane (--tls-*); None: plain, which the CLI allows only on loopback or with --insecure.
    tls: TlsFiles | None = None
    # --insecure: plain TCP to (or, for `up`, on) a non-loopback control plane address, knowingly.
    insecure: bool = False
    # None: a Unix socket in the work dir (ADMIN_SOCKET, EXTPROC_SOCKET). Else HOST:PORT or unix:/path.
    admin: str | None = None
    extproc: str | None = None
    # None: a fresh private temp dir, removed on exit. Holds the sockets, Envoy's bootstrap and the control
    # plane's last good config.
    work_dir: Path | None = None
    # Set by resolved() when the work dir is a temp dir of ours, which then goes when Switchyard stops.
    owns_work_dir: bool = False
    # Each ext_proc is one Python process (one core at most); Envoy spreads attempts over all of them.
    # Two, so that an ext_proc crash costs only the attempts it held: Envoy moves the next ones to the other.
    extproc_workers: int = 2
    envoy_concurrency: int = 2
    envoy_log_level: str = "warning"
    log_level: str = "info"
    log_dir: Path | None = None
    ready_timeout: float = 30.0
    # The planned stop: how long requests in flight get at most, and how long the listener keeps accepting
    # after /healthz turned 503 (for load balancers to notice).
    drain_timeout: float = 60.0
    drain_notice: float = 5.0
    extra_children: list[Child] = field(default_factory=list)

    def resolved(self) -> Self:
        """A copy with the work dir created (mode 0700 when we create it) and every address set."""
        if self.work_dir is None:
            work_dir = Path(tempfile.mkdtemp(prefix="switchyard-"))  # mode 0700
            owned = True
        else:
            work_dir = self.work_dir.absolute()
            work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            owned = self.owns_work_dir
        admin = self.admin or f"{UNIX_PREFIX}{work_dir / ADMIN_SOCKET}"
        xds = self.xds or f"{UNIX_PREFIX}{work_dir / XDS_SOCKET}"
        extproc = self.extproc or f"{UNIX_PREFIX}{work_dir / EXTPROC_SOCKET}"
        resolved = replace(self, work_dir=work_dir, admin=admin, xds=xds, extproc=extproc, owns_work_dir=owned)
        # A work dir too deep for a socket path (sun_path: 107 bytes) is refused here, before anything starts.
        try:
            for address in (admin, *resolved.extproc_addresses):
                parse_address(address)
            parse_address_list(xds)
        except AddressError:
            remove_owned_work_dir(resolved)
            raise
        return resolved

    @property
    def extproc_addresses(self) -> tuple[str, ...]:
        """One address per worker, so Envoy balances across them: for HOST:PORT the port + i, for a Unix socket
        NAME-1.sock … NAME-N.sock (NAME.sock itself with one worker)."""
        assert self.extproc is not None, "resolved() sets every address"
        return numbered(self.extproc, self.extproc_workers)

    @property
    def extproc_names(self) -> tuple[str, ...]:
        if self.extproc_workers == 1:
            return ("extproc",)
        return tuple(f"extproc-{i + 1}" for i in range(self.extproc_workers))


@dataclass
class GatewayOptions(NodeOptions):
    """`switchyard up`: one node plus its own control plane, on one host."""

    config_path: Path
    api: str | None = "127.0.0.1:18002"
    tls_ca_file: str | None = None
    usage_db: str | None = None  # None: usage.sqlite3 in the work dir
    rewrite_attempts: bool = True


def remove_owned_work_dir(options: NodeOptions) -> None:
    if options.owns_work_dir and options.work_dir is not None:
        shutil.rmtree(options.work_dir, ignore_errors=True)
