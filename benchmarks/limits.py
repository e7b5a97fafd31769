"""Budgets + rate limits (issue 7, parts 3-4): the time the checks add to one gateway call.

Measured in process on the real classes the gateway uses (``GatewayLimits`` over ``SqlLimitsStore`` on a SQLite
file with the migrations applied): per call, ``admit`` (key rpm+tpm sliding windows, then the all-or-nothing
reservation against a project budget and a key budget) and the settlement to the real cost (which runs just after
the reply, off the reply's path). Baseline in the same run: the same loop with no limits configured for the
project (the gateway's path when nothing is set: two cached look-ups). Modes: in-process counters (SQLite mode)
and Redis (``LLMOPS_REDIS_URL``; a local redis-server on loopback, when installed). In Redis mode the settlement
is queued and carried by the next admission (one script call per call), so ``settle`` is the queueing and
``admit`` holds the round trip. For scale, the same run measures one Redis ``PING`` round trip on a bare asyncio
connection (the floor of any Redis check) and through redis-py's pooled client.
Reported: p50 / p99 µs of admit, of settle, and the added p50 (admit + settle, limited minus baseline) in ms.
``--quick``: fewer calls.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "src"))
from _common import optional_redis, pct, save  # noqa: E402

from llmops.core.db import create_db_engine, upgrade  # noqa: E402
from llmops.gateway._limits_sql import SqlLimitsStore  # noqa: E402
from llmops.gateway.budgets import BudgetService, BudgetSpec, Counters, MemoryCounters  # noqa: E402
from llmops.gateway.config import GatewayConfig  # noqa: E402
from llmops.gateway.pricing import PriceTable  # noqa: E402
from llmops.gateway.ratelimits import (  # noqa: E402
    GatewayLimits,
    MemoryWindows,
    RateLimitService,
    Windows,
    deployment_costs,
)
from llmops.gateway.recording import CallContext  # noqa: E402
from llmops.projects import Principal  # noqa: E402

RAW = {"model": "chat", "messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 64}


def _config() -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "models": [{"name": "chat", "deployments": [{"provider": "openai", "model": "bench-model"}]}],
            "prices": {"bench-model": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}},
        }
    )


def _ctx(project_id: str) -> CallContext:
    return CallContext(
        Principal(project_id, "key_bench", "bench", False), "req", "t" * 32, "s" * 16, None, None, None, 0
    )


async def _measure(limits: GatewayLimits, project_id: str, n: int) -> dict[str, float]:
    admit_us, settle_us, total_us = [], [], []
    for _ in range(n):
        ctx = _ctx(project_id)
        t0 = time.perf_counter()
        admission = await limits.admit(ctx, "chat", RAW)
        t1 = time.perf_counter()
        admission.done = True  # settle inline (the gateway spawns it right after the reply)
        await admission._finish(0.00002, 40, True)
        t2 = time.perf_counter()
        admit_us.append((t1 - t0) * 1e6)
        settle_us.append((t2 - t1) * 1e6)
        total_us.append((t2 - t0) * 1e6)
    return {
        "admit_p50_us": round(pct(admit_us, 0.5), 1),
        "admit_p99_us": round(pct(admit_us, 0.99), 1),
        "settle_p50_us": round(pct(settle_us, 0.5), 1),
        "total_p50_us": round(pct(total_us, 0.5), 1),
    }


async def _ping(redis_url: str, n: int) -> dict[str, float]:
    """p50 µs of one PING round trip: bare asyncio stream vs redis-py's pooled client (as the gateway connects)."""
    from llmops.gateway._limits_redis import connect

    host, port = redis_url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    client = connect(redis_url)
    out: dict[str, float] = {}

    async def bare() -> None:
        writer.write(b"*1\r\n$4\r\nPING\r\n")
        await reader.readline()

    async def pooled() -> None:
        await client.ping()  # type: ignore[misc]

    for name, fn in (("ping_bare_asyncio_p50_us", bare), ("ping_redis_py_pool_p50_us", pooled)):
        times = []
        for i in range(n + 200):
            t = time.perf_counter()
            await fn()
            if i >= 200:
                times.append((time.perf_counter() - t) * 1e6)
        out[name] = round(pct(times, 0.5), 1)
    writer.close()
    await client.aclose()
    return out


async def _mode(engine: Any, redis_url: str | None, n: int) -> dict[str, Any]:
    store = SqlLimitsStore(engine)
    counters: Counters
    windows: Windows
    joint = None
    if redis_url:
        from llmops.gateway._limits_redis import RedisCounters, RedisJoint, RedisWindows

        redis_counters = RedisCounters(redis_url, store)
        counters, windows, joint = redis_counters, RedisWindows(redis_url), RedisJoint(redis_counters)
    else:
        counters, windows = MemoryCounters(store), MemoryWindows()
    budgets = BudgetService(store, counters, config_ttl_s=3600)
    rates = RateLimitService(store, windows, config_ttl_s=3600)
    cfg = _config()
    limits = GatewayLimits(budgets, rates, PriceTable(cfg.prices), deployment_costs(cfg), joint=joint)
    limited, free = f"p_limited_{time.time_ns()}", f"p_free_{time.time_ns()}"
    await budgets.create_budget(limited, BudgetSpec("project", "project", None, "month", 1e6))
    await budgets.create_budget(limited, BudgetSpec("key", "key", "key_bench", "day", 1e6))
    await rates.set_limit(limited, "key", "key_bench", rpm=10**9, tpm=10**12)
    await _measure(limits, limited, 200)  # warm: caches, counters, the script SHAs
    await _measure(limits, free, 200)
    base = await _measure(limits, free, n)
    with_limits = await _measure(limits, limited, n)
    await limits.aclose()
    return {
        "baseline_no_limits": base,
        "with_limits": with_limits,
        "added_p50_ms": round((with_limits["total_p50_us"] - base["total_p50_us"]) / 1000, 4),
        "added_admit_p50_ms": round((with_limits["admit_p50_us"] - base["admit_p50_us"]) / 1000, 4),
        "calls": n,
    }


def main() -> None:
    n = 2000 if "--quick" in sys.argv else 20000
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_db_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        upgrade(engine)
        result["sqlite_mode"] = asyncio.run(_mode(engine, None, n))
        with optional_redis() as url:
            if url:
                result["redis_mode"] = asyncio.run(_mode(engine, url, n))
                result["redis_round_trip"] = asyncio.run(_ping(url, min(n, 5000)))
        engine.dispose()
    result["targets"] = {"sqlite_mode_added_p50_ms": 0.2, "redis_mode_added_p50_ms": 1.0}
    save("limits", result)


if __name__ == "__main__":
    main()
