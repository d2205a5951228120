"""One `switchyard` gRPC process (control plane or ext_proc) on a Unix socket, for tests of how it stops."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc

GrpcProcess = tuple[subprocess.Popen[bytes], grpc.Channel, Path]


@contextmanager
def switchyard_grpc_process(args: list[str], socket_path: Path, log: Path) -> Iterator[GrpcProcess]:
    """Start `switchyard ARGS` (which must listen on `socket_path`), yield it once its gRPC port is ready, and
    kill it at the end if the test left it running. Its output goes to `log`."""
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "switchyard", *args], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    channel = grpc.insecure_channel(f"unix:{socket_path}")
    try:
        grpc.channel_ready_future(channel).result(timeout=20)
        yield process, channel, log
    finally:
        channel.close()
        if process.poll() is None:
            process.kill()
        process.wait()
