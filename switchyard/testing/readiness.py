"""Waiting for a test gateway or mock to answer, and saying why when it does not."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable


class SwitchyardStartError(RuntimeError):
    """A test gateway or mock provider did not become ready; the message carries its last log lines."""


def answers(url: str, accept: tuple[int, ...] = (200,)) -> bool:
    """Whether GET `url` answers with one of `accept` now."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status) in accept
    except urllib.error.HTTPError as error:
        return error.code in accept
    except (urllib.error.URLError, OSError):
        return False


def wait_until_answers(
    what: str,
    url: Callable[[], str | None],
    running: Callable[[], bool],
    logs: Callable[[], str],
    timeout: float,
    accept: tuple[int, ...] = (200,),
) -> None:
    """Poll until GET `url()` answers (None: its address is not known yet); fail at once if it stopped running."""
    deadline = time.monotonic() + timeout
    while True:
        if not running():
            raise SwitchyardStartError(f"{what} stopped before it was ready; its log:\n{logs()}")
        address = url()
        if address is not None and answers(address, accept):
            return
        if time.monotonic() > deadline:
            raise SwitchyardStartError(f"{what} not ready after {timeout:g}s ({address}); its log:\n{logs()}")
        time.sleep(0.2)
