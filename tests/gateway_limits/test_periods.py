"""Budget periods with an injected clock (no sleeps), on a real migrated SQLite database: a day budget used up
today admits again tomorrow; month and total periods; settled spend survives a restart (read back from the
database ledger by new counters)."""

from __future__ import annotations

import asyncio
import calendar
from pathlib import Path

import pytest

from llmops.core.db import create_db_engine, upgrade
from llmops.core.errors import BudgetExceededError
from llmops.gateway._limits_sql import SqlLimitsStore
from llmops.gateway.budgets import BudgetService, BudgetSpec, MemoryCounters, period_bounds, reserve, to_units


class FakeClock:
    def __init__(self, ns: int) -> None:
        self.ns = ns

    def now_ns(self) -> int:
        return self.ns

    def monotonic(self) -> float:
        return self.ns / 1e9


def _ns(y: int, mo: int, d: int, h: int = 12) -> int:
    return calendar.timegm((y, mo, d, h, 0, 0)) * 10**9


def test_period_bounds_are_utc_calendar_periods() -> None:
    """Day and month start at UTC midnight; December rolls into January; total never ends."""
    assert period_bounds("day", _ns(2026, 3, 5, 23)) == (
        calendar.timegm((2026, 3, 5, 0, 0, 0)),
        calendar.timegm((2026, 3, 6, 0, 0, 0)),
    )
    assert period_bounds("month", _ns(2026, 12, 31)) == (
        calendar.timegm((2026, 12, 1, 0, 0, 0)),
        calendar.timegm((2027, 1, 1, 0, 0, 0)),
    )
    assert period_bounds("total", _ns(2026, 1, 1)) == (0, None)


@pytest.mark.parametrize(("period", "later"), [("day", _ns(2026, 3, 6, 0)), ("month", _ns(2026, 4, 1, 0))])
def test_budget_rolls_over_with_its_period_and_spend_persists(tmp_path: Path, period: str, later: int) -> None:
    """Spend $0.8 of a $1 budget: a $0.3 worst case is refused; in the next period it is admitted. Settled spend
    is in the database: fresh counters (a restarted process) still refuse in the first period."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'l.db'}")
    upgrade(engine)
    store = SqlLimitsStore(engine)
    clock = FakeClock(_ns(2026, 3, 5))

    async def run() -> None:
        counters = MemoryCounters(store)
        svc = BudgetService(store, counters, clock=clock, config_ttl_s=60)
        budget = await svc.create_budget("p1", BudgetSpec("daily", "project", None, period, 1.0))  # type: ignore[arg-type]
        held = await reserve(svc, [budget], to_units(0.9), price_known=True)
        assert held is not None
        await held.settle(0.8)
        with pytest.raises(BudgetExceededError):
            await reserve(svc, [budget], to_units(0.3), price_known=True)
        await counters.aclose()  # the write-behind has committed
        restarted = BudgetService(store, MemoryCounters(store), clock=clock)
        with pytest.raises(BudgetExceededError):
            await reserve(restarted, [budget], to_units(0.3), price_known=True)
        assert (await restarted.get_budget("p1", budget.budget_id))["spent_usd"] == pytest.approx(0.8)
        clock.ns = later
        again = await reserve(restarted, [budget], to_units(0.3), price_known=True)
        assert again is not None
        usage = await restarted.get_budget("p1", budget.budget_id)
        assert usage["spent_usd"] == 0 and usage["reserved_usd"] == pytest.approx(0.3)
        await again.release()
        assert (await restarted.get_budget("p1", budget.budget_id))["reserved_usd"] == 0

    asyncio.run(run())
    engine.dispose()


def test_total_budget_never_resets_and_release_is_idempotent(tmp_path: Path) -> None:
    """A total budget keeps its spend across years; settling or releasing a reservation twice changes nothing."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'l.db'}")
    upgrade(engine)
    store = SqlLimitsStore(engine)
    clock = FakeClock(_ns(2026, 3, 5))

    async def run() -> None:
        svc = BudgetService(store, MemoryCounters(store), clock=clock)
        budget = await svc.create_budget("p1", BudgetSpec("all", "project", None, "total", 1.0))
        held = await reserve(svc, [budget], to_units(0.6), price_known=True)
        assert held is not None
        await held.settle(0.6)
        await held.settle(0.6)
        await held.release()
        clock.ns = _ns(2031, 1, 1)
        with pytest.raises(BudgetExceededError):
            await reserve(svc, [budget], to_units(0.5), price_known=True)
        usage = await svc.get_budget("p1", budget.budget_id)
        assert usage["spent_usd"] == pytest.approx(0.6) and usage["reserved_usd"] == 0

    asyncio.run(run())
    engine.dispose()
