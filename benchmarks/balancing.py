"""Load balancing and cost reports (issue 7, parts 5 and 7).

1. Routing decision overhead per strategy, in process: ``Router.run`` over an alias of 3 deployments whose call
   returns at once (no I/O), so the time is the router's own work (order + in-flight/latency bookkeeping).
   Baseline in the same run: the ``ordered`` strategy. Reported: µs per routed call (median of repeats) and the
   extra µs / ratio of each strategy vs ordered; also ``Balancer.order`` alone.
2. Cost report query time at 100k spans (SQLite file, migrations applied, spans written through the real
   ``SqlTraceStore``): ``GET /api/costs`` logic (``CostService.report``) per group and the what-if, against the
   existing ``TraceService.metrics`` (the dashboard query) over the same spans as the baseline.
``--quick``: 10k spans and fewer repeats (a smoke run).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "src"))
from _common import save  # noqa: E402

from llmops.core.db import create_db_engine, upgrade  # noqa: E402
from llmops.gateway.config import DeploymentConfig, ModelConfig, RouterConfig  # noqa: E402
from llmops.gateway.routing import Deployment, Router  # noqa: E402
from llmops.tracing import MetricsQuery, Span, TraceService  # noqa: E402
from llmops.tracing._sql import SqlTraceStore  # noqa: E402
from llmops.tracing._sql_costs import SqlCostStore  # noqa: E402
from llmops.tracing.costs import CostService, ModelPrice, cost_query  # noqa: E402

STRATEGIES = ["ordered", "weighted", "least-busy", "lowest-latency"]


class _Instant:
    provider_name = "bench"
    enforces_timeout = True  # no asyncio.timeout per call: measure the router, not the timeout context


def _router(strategy: str) -> Router:
    deps = [
        Deployment(f"d{i}", "chat", "openai", "m", _Instant(), timeout_s=5, retries=0, server_address=None)
        for i in range(3)
    ]
    model = ModelConfig(
        name="chat",
        strategy=strategy,  # type: ignore[arg-type]
        deployments=[DeploymentConfig(provider="openai", weight=w) for w in (3, 1, 1)],
    )
    return Router({"chat": deps}, RouterConfig(), models=[model])


async def _route_us(strategy: str, n: int) -> tuple[float, float]:
    router = _router(strategy)

    async def call(dep: Deployment) -> str:
        return dep.name

    for _ in range(1000):
        await router.run("chat", call)
    started = time.perf_counter()
    for _ in range(n):
        await router.run("chat", call)
    run_us = (time.perf_counter() - started) / n * 1e6
    deps = router.deployments("chat")
    started = time.perf_counter()
    for _ in range(n):
        router.balancer.order("chat", deps)
    return run_us, (time.perf_counter() - started) / n * 1e6


def routing(n: int, repeats: int) -> dict[str, Any]:
    results: dict[str, list[tuple[float, float]]] = {s: [] for s in STRATEGIES}
    for _ in range(repeats):
        for s in STRATEGIES:  # interleaved, so machine noise hits every strategy alike
            results[s].append(asyncio.run(_route_us(s, n)))
    med = {s: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v)) for s, v in results.items()}
    base = med["ordered"][0]
    return {
        s: {
            "run_us": round(run, 2),
            "order_us": round(order, 2),
            "extra_vs_ordered_us": round(run - base, 2),
            "ratio_vs_ordered": round(run / base, 3),
        }
        for s, (run, order) in med.items()
    }


def _spans(project: str, n: int, now_ns: int) -> list[Span]:
    rng = random.Random(7)
    models, users = ["gpt-4o", "gpt-4o-mini", "claude", "local"], [f"user-{i}" for i in range(200)]
    out = []
    for i in range(n):
        start = now_ns - rng.randrange(0, 29 * 86_400 * 10**9)
        cache = rng.random()
        attrs: dict[str, Any] = {"llmops.tags": [f"team-{i % 7}"], "llmops.prompt.name": f"p{i % 13}"}
        if cache < 0.2:
            attrs |= {"llmops.cache.status": "hit", "llmops.cache.kind": "exact", "llmops.cache.saved_usd": 0.001}
        elif cache < 0.6:
            attrs["llmops.cache.status"] = "miss"
        out.append(
            Span(
                trace_id=secrets.token_hex(16),
                span_id=secrets.token_hex(8),
                project_id=project,
                name="chat",
                kind="llm",
                start_ns=start,
                end_ns=start + 10**8,
                operation="chat",
                request_model=models[i % 4],
                input_tokens=rng.randrange(10, 2000),
                output_tokens=rng.randrange(1, 500),
                cost_usd=None if i % 50 == 0 else rng.random() / 100,
                user_id=users[i % 200],
                key_id=f"key-{i % 5}",
                attributes=attrs,
            )
        )
    return out


def _timed(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        asyncio.run(fn())
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def cost_reports(n_spans: int, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_db_engine(f"sqlite:///{tmp}/bench.db")
        upgrade(engine)
        store, now = SqlTraceStore(engine), time.time_ns()
        spans = sorted(_spans("proj_bench", n_spans, now), key=lambda sp: sp.start_ns)  # they arrive in time order
        for i in range(0, len(spans), 2000):
            store.insert_spans(spans[i : i + 2000])
        costs = CostService(SqlCostStore(engine), price_of=lambda m: ModelPrice(0.15, 0.6))
        traces = TraceService(store)
        out: dict[str, Any] = {"spans": n_spans}
        metrics_q = MetricsQuery(now - 30 * 86_400 * 10**9, now, 86_400, "model")
        out["baseline_metrics_by_model_ms"] = _timed(lambda: traces.metrics("proj_bench", metrics_q), repeats)
        for group in (None, "model", "user", "tag", "prompt"):
            q = cost_query(None, None, now_ns=now, interval="day", group_by=group)
            out[f"report_{group or 'totals'}_ms"] = _timed(lambda q=q: costs.report("proj_bench", q), repeats)
        hourly = cost_query(now - 86_400 * 10**9 * 29, now, now_ns=now, interval="hour", group_by="model")
        out["report_model_hourly_29d_ms"] = _timed(lambda: costs.report("proj_bench", hourly), repeats)
        daily = cost_query(None, None, now_ns=now, group_by="model")
        out["what_if_by_model_ms"] = _timed(lambda: costs.what_if("proj_bench", "gpt-4o-mini", daily), repeats)
        out["ratio_report_model_vs_metrics"] = round(out["report_model_ms"] / out["baseline_metrics_by_model_ms"], 3)
        engine.dispose()
        return out


def main() -> None:
    quick = "--quick" in sys.argv
    data = {
        "routing_per_call": routing(n=2_000 if quick else 20_000, repeats=3 if quick else 7),
        "cost_reports": cost_reports(n_spans=10_000 if quick else 100_000, repeats=3 if quick else 5),
        "note": "machine shared with other helpers' test runs while measured; see docs/benchmarks.md",
    }
    save("balancing", data)


if __name__ == "__main__":
    main()
