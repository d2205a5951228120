"""The Docker engine and the Switchyard image for the container tier, or the one-line reason there is none.

Where no engine answers, the tier skips with that reason; with SWITCHYARD_CONTAINER_TESTS=required (set by
.ci/run once it started an engine) the same reason fails instead, so CI cannot go green by skipping.

The image is built once per session from the Dockerfile with the classic builder (Debian's Docker 20.10 has
no BuildKit), on the base image SWITCHYARD_BASE_IMAGE names, else local/debian:CODENAME when the engine has it
(.ci/docker-engine base-image makes it where no registry is reachable), else the Dockerfile's default.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "switchyard:local"
REQUIRED = os.environ.get("SWITCHYARD_CONTAINER_TESTS") == "required"


class NoEngineError(Exception):
    """No Docker engine, or no image, for the container tier; the message is the one-line reason."""


def engine() -> Any:
    """A docker SDK client whose engine answered a ping, in well under a second where there is none."""
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
    except Exception as error:
        raise NoEngineError(f"no Docker engine answers ({type(error).__name__}: {str(error)[:160]})") from error
    return client


def _codename() -> str:
    try:
        return platform.freedesktop_os_release().get("VERSION_CODENAME", "bookworm")
    except OSError:
        return "bookworm"


def base_image(client: Any) -> str | None:
    """The base to build on; None: the Dockerfile's default."""
    if chosen := os.environ.get("SWITCHYARD_BASE_IMAGE"):
        return chosen
    local = f"local/debian:{_codename()}"
    try:
        client.images.get(local)
    except Exception:
        return None
    return local


def build_image(client: Any) -> tuple[str, float]:
    """Build IMAGE from the Dockerfile; the tag and the seconds it took (a few when every layer is cached)."""
    import docker.errors

    base = base_image(client)
    started = time.monotonic()
    try:
        client.images.build(
            path=str(ROOT),
            tag=IMAGE,
            buildargs={"BASE_IMAGE": base} if base else {},
            rm=True,
            forcerm=True,
            timeout=900,
        )
    except docker.errors.BuildError as error:
        lines = [str(step.get("stream") or step.get("error") or "").rstrip() for step in error.build_log]
        log = "\n".join(line for line in lines if line)[-4000:]
        reason = f"the image does not build on {base or 'the Dockerfile default base'}: {error.msg}"
        if base is None and not REQUIRED:
            # No base of our own and none pullable: an environment without a registry, not a broken Dockerfile.
            raise NoEngineError(f"{reason} (.ci/docker-engine base-image makes a local base)") from error
        raise AssertionError(f"{reason}\n{log}") from error
    return IMAGE, time.monotonic() - started
