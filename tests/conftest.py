"""Shows the logs of every Switchyard process of a failing end-to-end test."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.support.harness import ACTIVE_LOGS


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and ACTIVE_LOGS:
        for label, path in list(ACTIVE_LOGS):
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()[-60:]
                report.sections.append((f"log: {label} ({path})", "\n".join(lines)))
