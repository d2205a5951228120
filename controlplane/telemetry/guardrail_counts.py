"""How often each guardrail acted, per stage, from the answer log: what `/metrics` and `switchyard status` show.

The ext_proc reports what the rules of a client request did as dynamic metadata (extproc/guard_exchange.py:
`rule/check/action/count`, space-separated, per stage); the answer log's summary carries it here. Rule names and
counts only: the matched text never leaves the ext_proc.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from switchyard.contract import GUARDRAILS_STAGES


class GuardrailCounts:
    def __init__(self) -> None:
        # (rule, check, action, stage) -> client requests in which the rule acted so
        self.decisions: Counter[tuple[str, str, str, str]] = Counter()

    def add(self, stage: str, encoded: str) -> None:
        """One answer's report for `stage` (`request` or `response`); "" when its rules found nothing."""
        for event in encoded.split():
            parts = event.split("/")
            if len(parts) == 4 and stage in GUARDRAILS_STAGES:
                rule, check, action, _count = parts
                self.decisions[(rule, check, action, stage)] += 1

    def status(self) -> list[dict[str, Any]]:
        return [
            {"rule": rule, "check": check, "action": action, "stage": stage, "requests": count}
            for (rule, check, action, stage), count in sorted(self.decisions.items())
        ]
