"""Experiments: a target run over a pinned dataset version with scorers, in the background, recorded.

One ``eval_experiments`` row per run (dataset name and version, target spec, scorer specs, parameters, fingerprint,
status, counts, times); per-item results live in ``eval_results`` under the same run id (see ``runner``), so a
cancelled or interrupted run resumes where it stopped. Status: ``queued`` -> ``running`` -> ``done`` | ``failed``
| ``cancelled``; a run left ``running``/``queued`` by a previous process is marked ``interrupted`` at start-up.

Comparison (:func:`compare_runs`): the first run is the baseline; per scorer a paired test of every other run
against it (items both scored), per item the values side by side, plus cost and latency; regressions first.
"""

from __future__ import annotations

import asyncio
import logging
import re
import statistics
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Engine

from llmops.core.errors import ConflictError, InvalidInputError, LlmopsError, NotFoundError
from llmops.evals.compare import paired_test
from llmops.evals.datasets import DatasetService
from llmops.evals.models import Evaluator
from llmops.evals.runner import Runner, Target, fingerprint, item_scores
from llmops.evals.targets import describe, validate_target

log = logging.getLogger("llmops.evals")

_meta = sa.MetaData()
experiment_table = sa.Table(
    "eval_experiments",
    _meta,
    sa.Column("run_id", sa.String, primary_key=True),
    sa.Column("project_id", sa.String, primary_key=True),
    sa.Column("name", sa.String),
    sa.Column("dataset", sa.String),
    sa.Column("dataset_version", sa.Integer),
    sa.Column("target", sa.Text),
    sa.Column("scorers", sa.Text),
    sa.Column("params", sa.Text),
    sa.Column("fingerprint", sa.String),
    sa.Column("status", sa.String),
    sa.Column("total", sa.Integer),
    sa.Column("done", sa.Integer),
    sa.Column("errors", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("created_ns", sa.BigInteger),
    sa.Column("started_ns", sa.BigInteger),
    sa.Column("finished_ns", sa.BigInteger),
)

ScorerFactory = Callable[[Mapping[str, Any], str], Evaluator]
"""(scorer spec, project id) -> evaluator; raises InvalidInputError for an unknown scorer."""
TargetFactory = Callable[[Mapping[str, Any], Any, str], Target]
"""(validated target spec, caller principal, run id) -> target callable."""

_RUN_ID = re.compile(r"^[A-Za-z0-9_.:@/\-]{1,64}$")
ACTIVE = ("queued", "running")
RESUMABLE = ("cancelled", "failed", "interrupted")


@dataclass(frozen=True)
class NewExperiment:
    dataset: str
    target: dict[str, Any]
    scorers: list[Any]
    name: str = ""
    version: int | None = None
    concurrency: int = 4
    timeout_s: float = 60.0
    run_id: str | None = None


def _row_json(r: Any) -> dict[str, Any]:
    target = orjson.loads(r.target)
    return {
        "run_id": r.run_id,
        "name": r.name,
        "dataset": r.dataset,
        "dataset_version": r.dataset_version,
        "target": target,
        "target_label": describe(target),
        "scorers": orjson.loads(r.scorers),
        "params": orjson.loads(r.params),
        "fingerprint": r.fingerprint,
        "status": r.status,
        "total": r.total,
        "done": r.done,
        "errors": r.errors,
        "error": r.error,
        "created_ns": r.created_ns,
        "started_ns": r.started_ns,
        "finished_ns": r.finished_ns,
    }


def summarize(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-scorer mean/pass rate, item errors, total cost and tokens, latency p50/p95."""
    scorers: dict[str, dict[str, Any]] = {}
    for name in sorted({k for r in results for k in r.get("scores", {})}):
        vals = list(item_scores(results, name).values())
        passed = [r["scores"][name].get("passed") for r in results if name in r.get("scores", {})]
        judged = [p for p in passed if p is not None]
        scorers[name] = {
            "mean": statistics.fmean(vals) if vals else None,
            "n": len(vals),
            "pass_rate": sum(judged) / len(judged) if judged else None,
            "errors": sum(1 for r in results if (r.get("scores", {}).get(name) or {}).get("error")),
        }
    lat = sorted(float(r.get("latency_ms") or 0.0) for r in results)
    return {
        "items": len(results),
        "errors": sum(1 for r in results if r.get("error")),
        "cost_usd": sum(float(r.get("cost_usd") or 0.0) for r in results),
        "tokens": sum(int(r.get("tokens") or 0) for r in results),
        "latency_ms": {"p50": _pct(lat, 0.5), "p95": _pct(lat, 0.95)},
        "scorers": scorers,
    }


def _pct(sorted_vals: list[float], q: float) -> float | None:
    if not sorted_vals:
        return None
    return sorted_vals[min(len(sorted_vals) - 1, int(q * len(sorted_vals)))]


def compare_runs(runs: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> dict[str, Any]:
    """``runs`` = [(run_id, results)], the first the baseline. Deltas are candidate - baseline."""
    (base_id, base), others = runs[0], runs[1:]
    names = sorted({k for _, res in runs for r in res for k in r.get("scores", {})})
    comparisons = []
    for name in names:
        b_vals = item_scores(base, name)
        for run_id, res in others:
            c = paired_test(b_vals, item_scores(res, name))
            comparisons.append(
                {
                    "scorer": name,
                    "baseline": base_id,
                    "candidate": run_id,
                    "n": c.n,
                    "mean_baseline": None if c.n == 0 else c.mean_baseline,
                    "mean_candidate": None if c.n == 0 else c.mean_candidate,
                    "delta": c.delta,
                    "ci_low": c.ci_low,
                    "ci_high": c.ci_high,
                    "p_value": c.p_value,
                    "significant": c.significant,
                    "regression": c.regression,
                }
            )
    comparisons.sort(key=lambda c: (not c["regression"], c["delta"]))
    by_run = {rid: {r["item_id"]: r for r in res} for rid, res in runs}
    items = []
    for item_id in sorted({i for m in by_run.values() for i in m}):
        row: dict[str, Any] = {"item_id": item_id, "runs": {}}
        for rid, m in by_run.items():
            r = m.get(item_id)
            row["runs"][rid] = None if r is None else _item_cell(r)
        row["worst_delta"] = _worst_delta(row["runs"], base_id, names)
        items.append(row)
    items.sort(key=lambda r: (r["worst_delta"] is None, r["worst_delta"] if r["worst_delta"] is not None else 0))
    return {
        "runs": [{"run_id": rid, "summary": summarize(res)} for rid, res in runs],
        "comparisons": comparisons,
        "items": items,
    }


def _item_cell(r: Mapping[str, Any]) -> dict[str, Any]:
    scores = {k: v.get("value") for k, v in r.get("scores", {}).items()}
    return {
        "output": r.get("output"),
        "error": r.get("error"),
        "scores": scores,
        "latency_ms": r.get("latency_ms"),
        "cost_usd": r.get("cost_usd"),
        "trace_id": r.get("trace_id"),
    }


def _worst_delta(cells: Mapping[str, Any], base_id: str, names: Sequence[str]) -> float | None:
    base = cells.get(base_id)
    if base is None:
        return None
    deltas = []
    for rid, cell in cells.items():
        if rid == base_id or cell is None:
            continue
        for n in names:
            a, b = base["scores"].get(n), cell["scores"].get(n)
            if a is not None and b is not None:
                deltas.append(float(b) - float(a))
    return min(deltas) if deltas else None


class ExperimentService:
    """Experiments of one database; runs execute as tasks on the serving event loop."""

    def __init__(
        self,
        engine: Engine,
        datasets: DatasetService,
        *,
        scorers: ScorerFactory,
        targets: TargetFactory,
        max_concurrency: int = 32,
    ) -> None:
        self._engine = engine
        self._datasets = datasets
        self._runner = Runner(engine)
        self._scorers = scorers
        self._targets = targets
        self._max_concurrency = max_concurrency
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}

    @property
    def runner(self) -> Runner:
        return self._runner

    def recover(self) -> int:
        """Mark runs a previous process left active as ``interrupted`` (resumable); returns how many."""
        with self._engine.begin() as c:
            res = c.execute(
                experiment_table.update()
                .where(experiment_table.c.status.in_(ACTIVE))
                .values(status="interrupted", error="the server stopped during the run; resume it")
            )
        return int(res.rowcount or 0)

    # --- use cases -------------------------------------------------------------------------------------------
    async def create(self, principal: Any, new: NewExperiment, *, allow_python: bool = False) -> dict[str, Any]:
        project_id = principal.project_id
        target = validate_target(new.target, allow_python=allow_python)
        if not 1 <= new.concurrency <= self._max_concurrency:
            raise InvalidInputError(f"concurrency must be 1-{self._max_concurrency}", param="concurrency")
        if not 0 < new.timeout_s <= 3600:
            raise InvalidInputError("timeout_s must be in (0, 3600]", param="timeout_s")
        run_id = new.run_id or uuid.uuid4().hex[:12]
        if not _RUN_ID.match(run_id):
            raise InvalidInputError("run_id: 1-64 of letters, digits and _.:@/-", param="run_id")
        ds = await self._datasets.get(project_id, new.dataset, new.version)
        evaluators = self._build_scorers(new.scorers, project_id)
        self._targets(target, principal, run_id)  # fails early on an unusable target
        params = {"concurrency": new.concurrency, "timeout_s": new.timeout_s}
        fp = fingerprint(ds, orjson.dumps(target, option=orjson.OPT_SORT_KEYS).decode(), params, evaluators)
        row = {
            "run_id": run_id,
            "project_id": project_id,
            "name": (new.name or describe(target))[:200],
            "dataset": ds.name,
            "dataset_version": ds.version,
            "target": orjson.dumps(target).decode(),
            "scorers": orjson.dumps(new.scorers).decode(),
            "params": orjson.dumps(params).decode(),
            "fingerprint": fp,
            "status": "queued",
            "total": len(ds.items),
            "done": 0,
            "errors": 0,
            "error": None,
            "created_ns": time.time_ns(),
            "started_ns": None,
            "finished_ns": None,
        }
        await asyncio.to_thread(self._insert, row)
        self._start(principal, run_id)
        return await self.get_run(project_id, run_id)

    async def list_runs(self, project_id: str, *, limit: int = 100) -> list[dict[str, Any]]:
        if not 1 <= limit <= 500:
            raise InvalidInputError("limit must be 1-500", param="limit")

        def run() -> list[dict[str, Any]]:
            with self._engine.connect() as c:
                rows = c.execute(
                    sa.select(experiment_table)
                    .where(experiment_table.c.project_id == project_id)
                    .order_by(experiment_table.c.created_ns.desc())
                    .limit(limit)
                ).all()
            return [_row_json(r) for r in rows]

        return await asyncio.to_thread(run)

    async def get_run(self, project_id: str, run_id: str) -> dict[str, Any]:
        row = await asyncio.to_thread(self._find, project_id, run_id)
        if row is None:
            raise NotFoundError(f"experiment {run_id!r} not found", param="run_id")
        out = _row_json(row)
        if out["status"] in ACTIVE:  # live progress from the results written so far
            out["done"] = len(await asyncio.to_thread(self._runner.done_items, project_id, run_id))
        return out

    async def results(self, project_id: str, run_id: str) -> list[dict[str, Any]]:
        await self.get_run(project_id, run_id)
        res = await asyncio.to_thread(self._runner.results, project_id, run_id)
        return sorted(res, key=lambda r: str(r["item_id"]))

    async def get_run_detail(self, project_id: str, run_id: str) -> dict[str, Any]:
        run = await self.get_run(project_id, run_id)
        results = await self.results(project_id, run_id)
        return {**run, "summary": summarize(results), "results": results}

    async def cancel(self, project_id: str, run_id: str) -> dict[str, Any]:
        run = await self.get_run(project_id, run_id)
        if run["status"] not in ACTIVE:
            raise ConflictError(f"experiment {run_id!r} is {run['status']}, not running", param="run_id")
        task = self._tasks.pop((project_id, run_id), None)
        if task is not None:
            task.cancel()
        await asyncio.to_thread(self._finish, project_id, run_id, "cancelled", None)
        return await self.get_run(project_id, run_id)

    async def resume(self, principal: Any, run_id: str) -> dict[str, Any]:
        run = await self.get_run(principal.project_id, run_id)
        if run["status"] not in RESUMABLE:
            raise ConflictError(
                f"experiment {run_id!r} is {run['status']}; only {list(RESUMABLE)} runs resume", param="run_id"
            )
        await asyncio.to_thread(self._set_status, principal.project_id, run_id, "queued")
        self._start(principal, run_id)
        return await self.get_run(principal.project_id, run_id)

    async def compare(self, project_id: str, run_ids: Sequence[str]) -> dict[str, Any]:
        ids = list(dict.fromkeys(r for r in run_ids if r))
        if not 2 <= len(ids) <= 5:
            raise InvalidInputError("compare 2 to 5 distinct runs: ?runs=baseline,candidate[,...]", param="runs")
        runs = [(rid, await self.results(project_id, rid)) for rid in ids]
        out = compare_runs(runs)
        meta = {rid: await self.get_run(project_id, rid) for rid in ids}
        for r in out["runs"]:
            r["run"] = meta[r["run_id"]]
        return out

    async def wait(self, project_id: str, run_id: str) -> None:
        """Until the run's background task ends (tests, CLI)."""
        task = self._tasks.get((project_id, run_id))
        if task is not None:
            await asyncio.wait({task})

    async def aclose(self) -> None:
        """Cancel running tasks (they become ``interrupted`` on the next start)."""
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    # --- background ------------------------------------------------------------------------------------------
    def _build_scorers(self, specs: Any, project_id: str) -> list[Evaluator]:
        if not isinstance(specs, list) or not specs:
            raise InvalidInputError("scorers must be a non-empty list of scorer specs", param="scorers")
        out = []
        for n, spec in enumerate(specs):
            try:
                out.append(self._scorers(spec, project_id))
            except InvalidInputError as e:
                raise InvalidInputError(f"scorers[{n}]: {e.message}", param="scorers") from None
        return out

    def _start(self, principal: Any, run_id: str) -> None:
        key = (principal.project_id, run_id)
        task = asyncio.get_running_loop().create_task(self._execute(principal, run_id), name=f"experiment {run_id}")
        self._tasks[key] = task
        task.add_done_callback(lambda t: self._tasks.pop(key, None) if self._tasks.get(key) is t else None)

    async def _execute(self, principal: Any, run_id: str) -> None:
        project_id = principal.project_id
        try:
            row = await asyncio.to_thread(self._find, project_id, run_id)
            assert row is not None
            ds = await self._datasets.get(project_id, row.dataset, row.dataset_version)
            evaluators = self._build_scorers(orjson.loads(row.scorers), project_id)
            target = self._targets(orjson.loads(row.target), principal, run_id)
            params = orjson.loads(row.params)
            await asyncio.to_thread(self._set_status, project_id, run_id, "running")
            await self._runner.run(
                project_id,
                run_id,
                ds,
                target,
                evaluators,
                concurrency=int(params["concurrency"]),
                timeout_s=float(params["timeout_s"]),
            )
        except asyncio.CancelledError:
            raise
        except LlmopsError as e:
            await asyncio.to_thread(self._finish, project_id, run_id, "failed", e.message)
            return
        except Exception as e:  # task boundary: the run fails, the server goes on
            log.exception("experiment %s failed", run_id)
            await asyncio.to_thread(self._finish, project_id, run_id, "failed", f"{type(e).__name__}: {e}")
            return
        await asyncio.to_thread(self._finish, project_id, run_id, "done", None)

    # --- sync SQL --------------------------------------------------------------------------------------------
    def _insert(self, row: dict[str, Any]) -> None:
        with self._engine.begin() as c:
            exists = c.execute(
                sa.select(experiment_table.c.run_id).where(
                    experiment_table.c.project_id == row["project_id"], experiment_table.c.run_id == row["run_id"]
                )
            ).first()
            if exists is not None:
                raise ConflictError(f"experiment {row['run_id']!r} exists; resume it instead", param="run_id")
            c.execute(experiment_table.insert().values(**row))

    def _find(self, project_id: str, run_id: str) -> Any:
        with self._engine.connect() as c:
            return c.execute(
                sa.select(experiment_table).where(
                    experiment_table.c.project_id == project_id, experiment_table.c.run_id == run_id
                )
            ).first()

    def _where(self, project_id: str, run_id: str) -> Any:
        return sa.and_(experiment_table.c.project_id == project_id, experiment_table.c.run_id == run_id)

    def _set_status(self, project_id: str, run_id: str, status: str) -> None:
        values: dict[str, Any] = {"status": status, "error": None}
        if status == "running":
            values["started_ns"] = time.time_ns()
        with self._engine.begin() as c:
            c.execute(experiment_table.update().where(self._where(project_id, run_id)).values(**values))

    def _finish(self, project_id: str, run_id: str, status: str, error: str | None) -> None:
        results = self._runner.results(project_id, run_id)
        with self._engine.begin() as c:
            c.execute(
                experiment_table.update()
                .where(self._where(project_id, run_id))
                .values(
                    status=status,
                    error=error,
                    done=len(results),
                    errors=sum(1 for r in results if r.get("error")),
                    finished_ns=time.time_ns(),
                )
            )
