"""UsageLedger: fixed minute windows for tokens per minute, UTC calendar periods for budgets, refusals until the
window or period ends, counts kept across a reload."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controlplane.usage.ledger import UsageLedger, period_bounds
from switchyard.config.model import Budget, BudgetPeriod, Client, ClientLimits

KEY = "k" * 20


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def client(tpm: int | None = None, usd: float | None = None, per: BudgetPeriod = BudgetPeriod.MONTH) -> Client:
    return Client(
        keys=(KEY,),
        limits=ClientLimits(tokens_per_minute=tpm),
        budget=None if usd is None else Budget(usd=usd, per=per),
    )


def test_tokens_per_minute_refuses_after_the_answer_that_crossed_until_the_minute_ends() -> None:
    ledger = UsageLedger({"a": client(tpm=100), "b": client(tpm=100)})
    ledger.add("a", 60, 0.0, at("2026-11-30 12:00:10"))
    assert ledger.refused(at("2026-11-30 12:00:11")) == {}
    ledger.add("a", 60, 0.0, at("2026-11-30 12:00:20"))  # crosses 100: this answer completed, later ones refused
    assert ledger.refused(at("2026-11-30 12:00:21")) == {"a": at("2026-11-30 12:01:00")}
    assert ledger.refused(at("2026-11-30 12:01:00")) == {}  # a fixed window: the next minute starts at zero
    ledger.add("a", 99, 0.0, at("2026-11-30 12:01:30"))
    assert ledger.refused(at("2026-11-30 12:01:31")) == {}


def test_budget_refuses_until_the_period_ends() -> None:
    ledger = UsageLedger({"d": client(usd=1.0, per=BudgetPeriod.DAY), "m": client(usd=1.0)})
    ledger.add("d", 10, 0.6, at("2026-11-30 08:00:00"))
    ledger.add("d", 10, 0.4, at("2026-11-30 09:00:00"))
    ledger.add("m", 10, 1.5, at("2026-11-30 09:00:00"))
    assert ledger.refused(at("2026-11-30 10:00:00")) == {"d": at("2026-12-01 00:00:00"), "m": at("2026-12-01 00:00:00")}
    assert ledger.refused(at("2026-12-01 00:00:01")) == {}
    assert ledger.spent("d", at("2026-11-30 10:00:00")) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("per", "moment", "start", "end"),
    [
        (BudgetPeriod.DAY, "2026-11-30 23:59:59", "2026-11-30 00:00:00", "2026-12-01 00:00:00"),
        (BudgetPeriod.WEEK, "2026-11-29 12:00:00", "2026-11-23 00:00:00", "2026-11-30 00:00:00"),  # a Sunday
        (BudgetPeriod.WEEK, "2026-11-30 00:00:00", "2026-11-30 00:00:00", "2026-12-07 00:00:00"),  # a Monday
        (BudgetPeriod.MONTH, "2026-12-31 23:00:00", "2026-12-01 00:00:00", "2027-01-01 00:00:00"),
        (BudgetPeriod.MONTH, "2028-02-29 10:00:00", "2028-02-01 00:00:00", "2028-03-01 00:00:00"),
    ],
)
def test_budget_periods_are_utc_calendar_periods(per: BudgetPeriod, moment: str, start: str, end: str) -> None:
    assert period_bounds(per, at(moment)) == (at(start), at(end))


def test_token_limit_and_budget_together_take_the_later_end() -> None:
    ledger = UsageLedger({"a": client(tpm=10, usd=0.01, per=BudgetPeriod.DAY)})
    ledger.add("a", 20, 0.02, at("2026-11-30 12:00:00"))
    assert ledger.refused(at("2026-11-30 12:00:01")) == {"a": at("2026-12-01 00:00:00")}


def test_a_reload_changes_limits_and_keeps_counts() -> None:
    ledger = UsageLedger({"a": client(tpm=1000)})
    ledger.add("a", 500, 0.0, at("2026-11-30 12:00:00"))
    assert ledger.refused(at("2026-11-30 12:00:01")) == {}
    ledger.configure({"a": client(tpm=400)})
    assert ledger.refused(at("2026-11-30 12:00:01")) == {"a": at("2026-11-30 12:01:00")}
    ledger.configure(None)  # clients removed: nobody is refused
    assert ledger.refused(at("2026-11-30 12:00:01")) == {}


def test_store_totals_are_floors() -> None:
    ledger = UsageLedger({"a": client(tpm=100, usd=5.0)})
    minute, month = at("2026-11-30 12:00:00"), at("2026-11-01 00:00:00")
    ledger.add("a", 30, 1.0, at("2026-11-30 12:00:05"))
    ledger.at_least("a", minute, 20, month, 0.5)  # the store has less (not yet written): memory stays
    assert ledger.refused(at("2026-11-30 12:00:06")) == {}
    ledger.at_least("a", minute, 100, month, 5.0)  # another replica (or the run before a restart) counted more
    assert ledger.refused(at("2026-11-30 12:00:06")) == {"a": at("2026-12-01 00:00:00")}
