"""`--log-level debug` shows Switchyard's own debug lines, not the file watcher's."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from switchyard.cli.main import _setup_logging


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
