"""Evaluation runner: throughput against the ideal C/L with a fake target of fixed latency L at concurrency C,
and peak RSS of a 10,000-item run above idle. Writes .bench/evals.json."""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from llmops.core.db import create_db_engine, upgrade  # noqa: E402
from llmops.evals.datasets import DatasetItem, DatasetService  # noqa: E402
from llmops.evals.evaluators.registry import create_evaluator  # noqa: E402
from llmops.evals.experiments import ExperimentService, NewExperiment  # noqa: E402
from llmops.evals.runner import Runner, TargetOutput  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / ".bench"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def experiment_rate(engine: Any, svc: DatasetService, target: Any, n: int, conc: int) -> float:
    """The same target and dataset size through ExperimentService (run row, background task, status updates)."""
    exps = ExperimentService(engine, svc, scorers=lambda spec, _: create_evaluator(spec), targets=lambda *_: target)
    await svc.add_items("p", "te", [{"id": f"e{i}", "input": str(i), "expected": str(i)} for i in range(n)])
    who = SimpleNamespace(project_id="p")
    t0 = time.perf_counter()
    await exps.create(who, NewExperiment("te", {"model": "m"}, ["exact"], concurrency=conc, run_id="te"))
    await exps.wait("p", "te")
    assert (await exps.get_run("p", "te"))["done"] == n
    return n / (time.perf_counter() - t0)


async def main() -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp())
    engine = create_db_engine(f"sqlite:///{tmp / 'b.db'}")
    upgrade(engine)
    svc, runner, exact = DatasetService(engine), Runner(engine), create_evaluator("exact")
    latency, conc, n = 0.05, 20, 400

    async def slow(item: DatasetItem) -> TargetOutput:
        await asyncio.sleep(latency)
        return TargetOutput(str(item.input))

    ds = await svc.add_items("p", "tp", [{"id": f"i{i}", "input": str(i), "expected": str(i)} for i in range(n)])
    t0 = time.perf_counter()
    await runner.run("p", "tp", ds, slow, [exact], concurrency=conc)
    rate = n / (time.perf_counter() - t0)
    ideal = conc / latency
    exp_rate = await experiment_rate(engine, svc, slow, n, conc)
    idle = peak_rss_mb()

    async def fast(item: DatasetItem) -> TargetOutput:
        return TargetOutput(str(item.input))

    big = await svc.add_items("p", "big", [{"id": f"b{i}", "input": str(i), "expected": str(i)} for i in range(10_000)])
    t1 = time.perf_counter()
    await runner.run("p", "big", big, fast, [exact], concurrency=32)
    out = {
        "throughput_items_s": rate,
        "ideal_items_s": ideal,
        "throughput_ratio": rate / ideal,
        "experiment_items_s": exp_rate,
        "experiment_vs_runner_ratio": exp_rate / rate,
        "big_run_s": time.perf_counter() - t1,
        "peak_rss_above_idle_mb": peak_rss_mb() - idle,
    }
    return out


if __name__ == "__main__":
    res = asyncio.run(main())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "evals.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
