"""Who is over their token limit or budget, and until when (pure; the accounting feeds it).

- Tokens per minute: fixed windows, each UTC minute on its own (12:00:00-12:00:59). A client whose answers
  in the current minute reach `tokens_per_minute` is refused until the minute ends.
- Budgets: spend in USD per UTC calendar period (day; week from Monday; month). A client whose spend in the
  current period reaches `budget.usd` is refused until the period ends.
Both count answers as they arrive: the answer that crosses a limit completes (it was already running), and
requests after it are refused. Limits change on a reload; counts already made are kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from switchyard.config.model import BudgetPeriod, Client

MINUTE_S = 60.0


def minute_start(at: float) -> float:
    return (at // MINUTE_S) * MINUTE_S


def period_bounds(per: BudgetPeriod, at: float) -> tuple[float, float]:
    """The UTC calendar period holding `at`, as (start, end) epoch seconds."""
    moment = datetime.fromtimestamp(at, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if per is BudgetPeriod.DAY:
        start, end = day, day + timedelta(days=1)
    elif per is BudgetPeriod.WEEK:
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    else:
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    return start.timestamp(), end.timestamp()


@dataclass
class Window:
    """A count within one window (a minute, a budget period), known by the window's start."""

    start: float = 0.0
    amount: float = 0.0

    def add(self, start: float, amount: float) -> None:
        if start > self.start:
            self.start, self.amount = start, 0.0
        if start == self.start:
            self.amount += amount

    def at_least(self, start: float, amount: float) -> None:
        """What a store holds for the window: a floor (it may miss answers not yet written)."""
        if start > self.start:
            self.start, self.amount = start, amount
        elif start == self.start:
            self.amount = max(self.amount, amount)

    def amount_in(self, start: float) -> float:
        return self.amount if self.start == start else 0.0


class UsageLedger:
    def __init__(self, clients: Mapping[str, Client] | None = None) -> None:
        self.clients: Mapping[str, Client] = clients or {}
        self.tokens: dict[str, Window] = {}
        self.spend: dict[str, Window] = {}

    def configure(self, clients: Mapping[str, Client] | None) -> None:
        """New limits (a reload); the counts stay."""
        self.clients = clients or {}

    def add(self, client: str, tokens: int, cost_usd: float, at: float) -> None:
        self.tokens.setdefault(client, Window()).add(minute_start(at), tokens)
        settings = self.clients.get(client)
        if settings is not None and settings.budget is not None:
            self.spend.setdefault(client, Window()).add(period_bounds(settings.budget.per, at)[0], cost_usd)

    def at_least(self, client: str, minute: float, tokens: float, period: float, spend: float) -> None:
        """Counts a store holds (written by this replica before a restart, or by others), as floors."""
        self.tokens.setdefault(client, Window()).at_least(minute, tokens)
        self.spend.setdefault(client, Window()).at_least(period, spend)

    def windows(self, now: float) -> dict[str, tuple[float, float | None]]:
        """Per limited client: the current minute's start, and the current budget period's (None: no budget)."""
        out: dict[str, tuple[float, float | None]] = {}
        for name, settings in self.clients.items():
            limited = settings.limits.tokens_per_minute is not None
            if limited or settings.budget is not None:
                budget = settings.budget
                out[name] = (minute_start(now), None if budget is None else period_bounds(budget.per, now)[0])
        return out

    def refused(self, now: float) -> dict[str, float]:
        """client → until (epoch seconds) for every client over a limit now."""
        out: dict[str, float] = {}
        for name, settings in self.clients.items():
            until = 0.0
            limit = settings.limits.tokens_per_minute
            minute = minute_start(now)
            if limit is not None and self.tokens.get(name, Window()).amount_in(minute) >= limit:
                until = minute + MINUTE_S
            budget = settings.budget
            if budget is not None:
                start, end = period_bounds(budget.per, now)
                if self.spend.get(name, Window()).amount_in(start) >= budget.usd:
                    until = max(until, end)
            if until:
                out[name] = until
        return out

    def spent(self, client: str, now: float) -> float:
        settings = self.clients.get(client)
        if settings is None or settings.budget is None:
            return 0.0
        return self.spend.get(client, Window()).amount_in(period_bounds(settings.budget.per, now)[0])
