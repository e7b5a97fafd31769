"""ExperimentService on SQLite and on a real PostgreSQL server (migration 0010 on both): runs are recorded with
their pinned dataset version, fingerprint and counts; an interrupted run (a process that stopped mid-run) is
marked ``interrupted`` at start-up and resumes without redoing finished items; projects never see each other's
runs; the comparison pairs items and lists regressions first."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from llmops.core.db import create_db_engine, upgrade
from llmops.core.errors import NotFoundError
from llmops.evals.datasets import DatasetItem, DatasetService
from llmops.evals.evaluators.registry import create_evaluator
from llmops.evals.experiments import ExperimentService, NewExperiment, experiment_table
from llmops.evals.runner import TargetOutput


@dataclass(frozen=True)
class Who:
    project_id: str
    key_id: str = "k"
    is_admin: bool = True


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        from tests.support.postgres import create_database

        url = create_database(request.getfixturevalue("pg_server"), "t_" + uuid.uuid4().hex[:12])
    eng = create_db_engine(url)
    upgrade(eng)
    yield eng
    eng.dispose()


def _service(engine: Engine, calls: list[str], gate: asyncio.Event | None = None) -> ExperimentService:
    def targets(spec: Any, principal: Any, run_id: str) -> Any:
        async def call(item: DatasetItem) -> TargetOutput:
            if gate is not None:
                await gate.wait()
            calls.append(item.id)
            text = str(item.input) if spec["model"] == "good" else "wrong"
            return TargetOutput(text, tokens=3, cost_usd=0.001)

        return call

    return ExperimentService(
        engine, DatasetService(engine), scorers=lambda spec, _: create_evaluator(spec), targets=targets
    )


async def test_runs_recorded_resumed_isolated_and_compared(engine: Engine) -> None:
    calls: list[str] = []
    a, b = Who("proj_a"), Who("proj_b")
    svc = _service(engine, calls)
    items = [{"id": f"i{n:02d}", "input": f"x{n}", "expected": f"x{n}"} for n in range(20)]
    await svc._datasets.add_items(a.project_id, "d", items)
    await svc._datasets.add_items(a.project_id, "d", [{"id": "later", "input": "y", "expected": "y"}])
    good = await svc.create(a, NewExperiment("d", {"model": "good"}, ["exact"], version=1, run_id="good"))
    assert good["dataset_version"] == 1 and good["total"] == 20
    await svc.wait(a.project_id, "good")
    run = await svc.get_run_detail(a.project_id, "good")
    assert run["status"] == "done" and run["done"] == 20 and run["errors"] == 0
    assert run["summary"]["scorers"]["exact"]["mean"] == 1.0 and run["summary"]["cost_usd"] == pytest.approx(0.02)
    with pytest.raises(NotFoundError):
        await svc.get_run(b.project_id, "good")
    assert await svc.list_runs(b.project_id) == []

    # a run interrupted by a stopped process: some results written, the row left "running"
    gate = asyncio.Event()
    slow = _service(engine, calls, gate)
    await slow.create(a, NewExperiment("d", {"model": "bad"}, ["exact"], version=1, run_id="bad", concurrency=1))
    gate.set()
    while len(slow.runner.done_items(a.project_id, "bad")) < 5:
        await asyncio.sleep(0.01)
    await slow.aclose()  # the process stops (tasks cancelled: the row stays "running")
    with engine.begin() as c:
        c.execute(experiment_table.update().values(status="running").where(experiment_table.c.run_id == "bad"))
    restarted = _service(engine, calls)
    assert restarted.recover() == 1
    assert (await restarted.get_run(a.project_id, "bad"))["status"] == "interrupted"
    done_before = restarted.runner.done_items(a.project_id, "bad")
    calls.clear()
    await restarted.resume(a, "bad")
    await restarted.wait(a.project_id, "bad")
    bad = await restarted.get_run(a.project_id, "bad")
    assert bad["status"] == "done" and bad["done"] == 20
    assert not set(calls) & done_before and len(calls) == 20 - len(done_before)  # finished items not redone

    cmp = await restarted.compare(a.project_id, ["good", "bad"])
    top = cmp["comparisons"][0]
    assert top["regression"] and top["delta"] == -1.0 and top["n"] == 20
    assert cmp["items"][0]["worst_delta"] == -1.0
    with engine.connect() as c:
        n = c.execute(sa.select(sa.func.count()).select_from(experiment_table)).scalar_one()
    assert n == 2
