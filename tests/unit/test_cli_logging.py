"""`--log-level debug` shows Switchyard's own debug lines, not the file watcher's; `--log-dir` is made if missing."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from switchyard.cli.main import _setup_logging
from switchyard.supervisor.processes import Child


@pytest.fixture
def watcher_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("watchfiles")
    level = logger.level
    yield logger
    logger.setLevel(level)


def test_debug_leaves_the_file_watcher_at_info(watcher_logger: logging.Logger) -> None:
    # watchfiles logs every event in the config's directory at DEBUG: with the log file there, each line written
    # was another event (272 lines in 30 s of an idle control plane).
    _setup_logging("debug")
    assert not logging.getLogger("watchfiles.main").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("watchfiles.main").isEnabledFor(logging.INFO)


def test_a_quieter_level_applies_to_the_file_watcher_too(watcher_logger: logging.Logger) -> None:
    _setup_logging("warning")
    assert not logging.getLogger("watchfiles.main").isEnabledFor(logging.INFO)


def test_a_log_dir_that_does_not_exist_yet_is_made(tmp_path: Path) -> None:
    # `switchyard up --log-dir logs` used to stop with a traceback when `logs` did not exist.
    child = Child("echo", [sys.executable, "-c", "print('hello')"], log_path=tmp_path / "new" / "logs" / "echo.log")
    child.start()
    assert child.process is not None and child.process.wait(timeout=30) == 0
    child.stop()
    assert (tmp_path / "new" / "logs" / "echo.log").read_text() == "hello\n"
