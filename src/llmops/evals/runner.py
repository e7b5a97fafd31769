"""The experiment runner: a target over a dataset version, scored, with per-item persistence.

A target is an async callable ``(item) -> TargetOutput``. Results are persisted per item under ``run_id``;
re-running the same run id skips the items already done (resume). A failing or timed-out target records an
error for that item and the run goes on. Concurrency is bounded by a semaphore.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Engine

from llmops.evals.datasets import DatasetItem, DatasetVersion
from llmops.evals.models import EvalCase, Evaluator

_meta = sa.MetaData()
result_table = sa.Table(
    "eval_results",
    _meta,
    sa.Column("project_id", sa.String),
    sa.Column("run_id", sa.String, primary_key=True),
    sa.Column("item_id", sa.String, primary_key=True),
    sa.Column("body", sa.Text),
    sa.Column("created_ns", sa.BigInteger),
)


@dataclass
class TargetOutput:
    output: str
    tokens: int = 0
    cost_usd: float = 0.0
    trace_id: str | None = None


Target = Callable[[DatasetItem], Awaitable[TargetOutput]]


def python_target(ref: str) -> Target:
    """``module:function``; the function takes the item input and returns a string (sync or async)."""
    mod, _, fn_name = ref.partition(":")
    fn = getattr(importlib.import_module(mod), fn_name)

    async def call(item: DatasetItem) -> TargetOutput:
        out = fn(item.input)
        if asyncio.iscoroutine(out):
            out = await out
        return out if isinstance(out, TargetOutput) else TargetOutput(str(out))

    return call


def fingerprint(dataset: DatasetVersion, target: str, params: dict[str, Any], scorers: Sequence[Evaluator]) -> str:
    blob = orjson.dumps(
        {
            "dataset": [dataset.dataset_id, dataset.version],
            "target": target,
            "params": params,
            "scorers": sorted(f"{s.name}@{s.version}" for s in scorers),
        },
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass
class RunSummary:
    run_id: str
    done: int = 0
    skipped: int = 0
    errors: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)


class Runner:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def done_items(self, project_id: str, run_id: str) -> set[str]:
        with self._engine.connect() as c:
            rows = c.execute(
                sa.select(result_table.c.item_id).where(
                    result_table.c.project_id == project_id, result_table.c.run_id == run_id
                )
            ).all()
        return {r.item_id for r in rows}

    def results(self, project_id: str, run_id: str) -> list[dict[str, Any]]:
        with self._engine.connect() as c:
            rows = c.execute(
                sa.select(result_table.c.body).where(
                    result_table.c.project_id == project_id, result_table.c.run_id == run_id
                )
            ).all()
        return [orjson.loads(r.body) for r in rows]

    def _save(self, project_id: str, run_id: str, res: dict[str, Any]) -> None:
        with self._engine.begin() as c:
            c.execute(
                result_table.insert().values(
                    project_id=project_id,
                    run_id=run_id,
                    item_id=res["item_id"],
                    body=orjson.dumps(res).decode(),
                    created_ns=time.time_ns(),
                )
            )

    async def run(
        self,
        project_id: str,
        run_id: str,
        dataset: DatasetVersion,
        target: Target,
        scorers: Sequence[Evaluator],
        *,
        concurrency: int = 4,
        timeout_s: float = 60.0,
        on_item: Callable[[], None] | None = None,
    ) -> RunSummary:
        summary = RunSummary(run_id)
        done = await asyncio.to_thread(self.done_items, project_id, run_id)
        sem = asyncio.Semaphore(max(1, concurrency))

        async def one(item: DatasetItem) -> None:
            async with sem:
                t0 = time.perf_counter()
                res: dict[str, Any] = {"item_id": item.id, "output": None, "error": None, "scores": {}}
                try:
                    out = await asyncio.wait_for(target(item), timeout_s)
                except TimeoutError:
                    res["error"] = f"target timed out after {timeout_s}s"
                except Exception as e:  # per-item isolation: the run goes on, the error is recorded
                    res["error"] = f"{type(e).__name__}: {e}"
                else:
                    res.update(output=out.output, tokens=out.tokens, cost_usd=out.cost_usd, trace_id=out.trace_id)
                res["latency_ms"] = (time.perf_counter() - t0) * 1000
                if res["error"] is None:
                    case = EvalCase(
                        input=item.input,
                        output=res["output"],
                        expected=item.expected,
                        contexts=item.contexts,
                        metadata=item.metadata,
                    )
                    for s in scorers:
                        try:
                            sr = await s.score(case)
                            res["scores"][sr.name] = {
                                "value": sr.value,
                                "reason": sr.reason,
                                "passed": sr.passed,
                                "error": sr.error,
                            }
                        except Exception as e:
                            res["scores"][s.name] = {"value": None, "reason": "", "passed": None, "error": str(e)}
                await asyncio.to_thread(self._save, project_id, run_id, res)
                summary.results.append(res)
                summary.done += 1
                summary.errors += res["error"] is not None
                if on_item:
                    on_item()

        todo = [i for i in dataset.items if i.id not in done]
        summary.skipped = len(dataset.items) - len(todo)
        await asyncio.gather(*(one(i) for i in todo))
        return summary


def item_scores(results: Sequence[Mapping[str, Any]], scorer: str) -> dict[str, float]:
    """Per-item values of one scorer (items without a value are left out)."""
    out = {}
    for r in results:
        s = r.get("scores", {}).get(scorer)
        if s and s.get("value") is not None:
            out[r["item_id"]] = float(s["value"])
    return out
