"""Redis reservations expire on their own: a process that dies holding a reservation does not keep its headroom
until the period counter expires. Real Redis and a real migrated SQLite database; time is an injected clock (the
reservation deadline is checked against it), so nothing sleeps. Two ``RedisCounters`` on one Redis stand for two
gateway processes; "killing" one means closing its connections without settling."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from llmops.core.db import create_db_engine, upgrade
from llmops.core.errors import BudgetExceededError
from llmops.gateway._limits_redis import RedisCounters, RedisJoint, RedisWindows
from llmops.gateway._limits_sql import SqlLimitsStore
from llmops.gateway.budgets import BudgetService, BudgetSpec, to_units
from llmops.gateway.config import GatewayConfig
from llmops.gateway.pricing import PriceTable
from llmops.gateway.ratelimits import GatewayLimits, RateLimitService, deployment_costs
from llmops.gateway.recording import CallContext
from llmops.projects import Principal

TTL_S = 300.0
START_NS = 1_800_000_000 * 10**9
RAW = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100}


class FakeClock:
    def __init__(self) -> None:
        self.ns = START_NS

    def now_ns(self) -> int:
        return self.ns

    def monotonic(self) -> float:
        return self.ns / 1e9


def _process(redis_url: str, store: SqlLimitsStore, clock: FakeClock) -> GatewayLimits:
    """The limits of one gateway process on the shared Redis (what ``app.build_limits`` builds)."""
    cfg = GatewayConfig.model_validate(
        {
            "models": [{"name": "chat", "deployments": [{"provider": "openai", "model": "m"}]}],
            "prices": {"m": {"input_per_mtok": 1000.0, "output_per_mtok": 1000.0}},  # $0.001 per token
        }
    )
    counters = RedisCounters(redis_url, store, clock=clock, reservation_ttl_s=TTL_S)
    return GatewayLimits(
        BudgetService(store, counters, clock=clock, config_ttl_s=0.001),
        RateLimitService(store, RedisWindows(redis_url), clock=clock, config_ttl_s=0.001),
        PriceTable(cfg.prices),
        deployment_costs(cfg),
        joint=RedisJoint(counters),
    )


def _ctx(project_id: str) -> CallContext:
    return CallContext(Principal(project_id, "key_1", "k", False), "req", "t" * 32, "s" * 16, None, None, None, 0)


async def _usage(limits: GatewayLimits, project_id: str, budget_id: str) -> dict[str, Any]:
    return await limits.budgets.get_budget(project_id, budget_id)


def test_a_dead_process_reservation_is_swept_after_its_ttl(tmp_path: Path, redis_url: str) -> None:
    """Process A reserves the worst case of one call (~$0.1 of a $0.15 budget) and dies without settling. Process B
    is refused while A's hold is live (just before the TTL), admitted once it has passed (the sweep runs inside
    the admission script), and the listing shows only B's hold. A late settlement of A's reservation (the process
    was slow, not dead) adds its spend without giving the swept hold back twice."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'l.db'}")
    upgrade(engine)
    store = SqlLimitsStore(engine)
    clock = FakeClock()

    async def run() -> None:
        a, b = _process(redis_url, store, clock), _process(redis_url, store, clock)
        budget = await a.budgets.create_budget("p_ttl", BudgetSpec("cap", "project", None, "total", 0.15))
        held = await a.admit(_ctx("p_ttl"), "chat", RAW)
        assert held.reservation is not None
        worst = held.reservation.amount
        assert to_units(0.1) <= worst <= to_units(0.15)
        await a.aclose()  # "killed": connections gone, nothing settled
        with pytest.raises(BudgetExceededError):
            await b.admit(_ctx("p_ttl"), "chat", RAW)
        clock.ns += int((TTL_S - 1) * 1e9)
        with pytest.raises(BudgetExceededError):
            await b.admit(_ctx("p_ttl"), "chat", RAW)
        assert (await _usage(b, "p_ttl", budget.budget_id))["reserved_usd"] == pytest.approx(worst / 1e9)
        clock.ns += int(2 * 1e9)
        second = await b.admit(_ctx("p_ttl"), "chat", RAW)  # A's hold has expired: swept, headroom back
        assert second.reservation is not None
        usage = await _usage(b, "p_ttl", budget.budget_id)
        assert usage["reserved_usd"] == pytest.approx(second.reservation.amount / 1e9)
        # A was only slow: its settlement arrives late; spend is counted, B's hold is untouched
        late = _process(redis_url, store, clock)
        await late.joint.settle(
            held.reservation.lines, worst, to_units(0.01), [], clock.ns / 1e9,
            reservation_id=held.reservation.reservation_id,
        )  # fmt: skip
        await late.joint.flush()
        usage = await _usage(b, "p_ttl", budget.budget_id)
        assert usage["spent_usd"] == pytest.approx(0.01)
        assert usage["reserved_usd"] == pytest.approx(second.reservation.amount / 1e9)
        second.finish(cost_usd=0.02, tokens=20, consumed=True)
        await b.drain()
        usage = await _usage(b, "p_ttl", budget.budget_id)
        assert usage["reserved_usd"] == 0 and usage["spent_usd"] == pytest.approx(0.03)
        await b.aclose()
        await late.aclose()

    asyncio.run(run())
    engine.dispose()


def test_an_expired_reservation_leaves_the_listing_without_any_admission(tmp_path: Path, redis_url: str) -> None:
    """Reading a budget sweeps too: after the TTL the abandoned hold no longer shows as reserved, and a settlement
    queued by a live process rides along with its next admission (one script call) and is applied exactly once."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'l.db'}")
    upgrade(engine)
    store = SqlLimitsStore(engine)
    clock = FakeClock()

    async def run() -> None:
        a = _process(redis_url, store, clock)
        budget = await a.budgets.create_budget("p_list", BudgetSpec("cap", "project", None, "month", 10.0))
        first = await a.admit(_ctx("p_list"), "chat", RAW)
        assert first.reservation is not None
        first.finish(cost_usd=0.05, tokens=50, consumed=True)
        await asyncio.gather(*list(a._tasks))  # the settlement is queued, not yet sent
        second = await a.admit(_ctx("p_list"), "chat", RAW)  # carries it
        assert second.reservation is not None
        usage = await _usage(a, "p_list", budget.budget_id)
        assert usage["spent_usd"] == pytest.approx(0.05)
        assert usage["reserved_usd"] == pytest.approx(second.reservation.amount / 1e9)
        clock.ns += int((TTL_S + 1) * 1e9)  # second is abandoned
        usage = await _usage(a, "p_list", budget.budget_id)
        assert usage["reserved_usd"] == 0 and usage["spent_usd"] == pytest.approx(0.05)
        await a.aclose()
        assert await asyncio.to_thread(store.spent, budget.budget_id, usage["period_start"]) == to_units(0.05)

    asyncio.run(run())
    engine.dispose()


def test_the_admission_connection_comes_back_after_redis_drops_it(tmp_path: Path, redis_url: str) -> None:
    """The admission script's own pipelined connection: 20 concurrent admissions share it (replies matched in
    order: each caller gets its own budget total); Redis closing it (CLIENT KILL) loses nothing, and the next
    admission reconnects by itself."""
    import redis.asyncio as aioredis

    from llmops.gateway._limits_redis import PipelinedScript, _command

    engine = create_db_engine(f"sqlite:///{tmp_path / 'l.db'}")
    upgrade(engine)
    store = SqlLimitsStore(engine)
    clock = FakeClock()

    async def run() -> None:
        limits = _process(redis_url, store, clock)
        await limits.budgets.create_budget("p_pipe", BudgetSpec("cap", "project", None, "total", 100.0))
        admitted = await asyncio.gather(*(limits.admit(_ctx("p_pipe"), "chat", RAW) for _ in range(20)))
        amounts = sorted(a.reservation.amount for a in admitted if a.reservation is not None)
        assert len(amounts) == 20 and len(set(amounts)) == 1
        counters = limits.budgets.counters
        script = counters._limits  # type: ignore[attr-defined]
        assert isinstance(script, PipelinedScript)
        pipe = await script._connected()
        client_id = await pipe.send(_command("CLIENT", "ID"))
        admin = aioredis.Redis.from_url(redis_url)
        assert await admin.client_kill_filter(_id=client_id) == 1
        await admin.aclose()
        for _ in range(200):  # bounded: the loop notices the closed socket
            if pipe.transport is None:
                break
            await asyncio.sleep(0.01)
        again = await limits.admit(_ctx("p_pipe"), "chat", RAW)
        assert again.reservation is not None
        for a in [*admitted, again]:
            a.finish(cost_usd=0.001, tokens=1, consumed=True)
        await limits.drain()
        bid = again.reservation.budgets[0].budget_id
        usage = await limits.budgets.get_budget("p_pipe", bid)
        assert usage["reserved_usd"] == 0 and usage["spent_usd"] == pytest.approx(0.021)
        await limits.aclose()

    asyncio.run(run())
    engine.dispose()
