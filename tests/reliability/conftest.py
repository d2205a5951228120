"""Prints the chaos suite's one table at the end of the session (only if a reliability scenario ran).

The root tests/conftest.py still attaches every process's log to a failing test's report (ACTIVE_LOGS).
"""

from __future__ import annotations

import pytest

from tests.reliability.load import ROWS, Row, table

_PREFIX = "tests/reliability/"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    outcome_of: dict[str, tuple[str, float]] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            nodeid = getattr(report, "nodeid", "")
            if not nodeid.startswith(_PREFIX) or not isinstance(report, pytest.TestReport):
                continue
            result, seconds = outcome_of.get(nodeid, ("passed", 0.0))
            if report.failed:
                result = "FAILED" if report.when == "call" else "ERROR"
            elif report.skipped:
                result = "skipped"
            outcome_of[nodeid] = (result, seconds + report.duration)
    if not outcome_of:
        return
    rows = list(ROWS)
    measured = {row.nodeid for row in rows}
    rows += [Row(nodeid.split("::")[-1], nodeid, 0, 0, None, "no measurement") for nodeid in outcome_of
             if nodeid not in measured]  # fmt: skip
    terminalreporter.write_sep("=", "reliability: requests under load, per scenario")
    for line in table(rows, outcome_of):
        terminalreporter.write_line(line)
    total = sum(seconds for _, seconds in outcome_of.values())
    terminalreporter.write_line(f"(time s = setup + run + teardown; {total:.0f}s in all)")
