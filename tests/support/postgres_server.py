"""A real PostgreSQL server for tests: Debian's `postgresql` package, a cluster made with initdb in a temp dir
and started with pg_ctl on a free loopback port (no Unix socket outside the temp dir, trust auth on loopback).

PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user the package creates. Tests
that need it skip, with the reason, where the binaries or that user are missing.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from switchyard.supervisor.processes import free_port

BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def _binary(name: str) -> str | None:
    for directory in BIN_DIRS:
        if (directory / name).is_file():
            return str(directory / name)
    return shutil.which(name)


def _as_user() -> tuple[list[str], str | None]:
    """The command prefix that runs a PostgreSQL binary, and the user to own its files (None: ourselves)."""
    if os.geteuid() != 0:
        return [], None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no `postgres` user to run PostgreSQL as (apt-get install postgresql)")
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("running as root without runuser to run PostgreSQL as the postgres user")
    return [runuser, "-u", "postgres", "--"], "postgres"


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yields a postgresql:// URL of a fresh, running server; stops it and removes its files afterwards."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL is not installed (initdb, pg_ctl): apt-get install postgresql")
    prefix, user = _as_user()
    root = Path(tempfile.mkdtemp(prefix="switchyard-pg-"))
    data, port = root / "data", free_port()
    if user is not None:
        os.chmod(root, 0o755)
        shutil.chown(root, user)
    try:
        subprocess.run(
            [*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"],
            check=True,
            capture_output=True,
        )
        options = f"-p {port} -h 127.0.0.1 -k {root} -c fsync=off"
        started = subprocess.run(
            [
                *prefix,
                pg_ctl,
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(root / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ],
            capture_output=True,
        )
        if started.returncode != 0:
            log = (root / "server.log").read_text(errors="replace") if (root / "server.log").exists() else ""
            raise AssertionError(f"PostgreSQL did not start: {started.stderr.decode()}\n{log}")
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
