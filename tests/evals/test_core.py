"""Datasets (versions, import/export, tenancy), the runner (resume, failure isolation, timeout) and stats."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from llmops.core.db import create_db_engine, upgrade
from llmops.core.errors import InvalidInputError, NotFoundError
from llmops.evals.compare import paired_test
from llmops.evals.datasets import DatasetItem, DatasetService
from llmops.evals.evaluators.registry import create_evaluator
from llmops.evals.runner import Runner, TargetOutput, fingerprint, item_scores


@pytest.fixture
def engine(tmp_path: Path):
    eng = create_db_engine(f"sqlite:///{tmp_path / 'e.db'}")
    upgrade(eng)
    yield eng
    eng.dispose()


async def test_dataset_versions_and_tenancy(engine) -> None:
    svc = DatasetService(engine)
    v1 = await svc.add_items("p1", "qa", [{"input": "2+2", "expected": "4"}])
    v2 = await svc.add_items("p1", "qa", [{"input": "3+3", "expected": "6", "source": {"trace_id": "t1"}}])
    assert (v1.version, v2.version) == (1, 2)
    assert [i.input for i in (await svc.get("p1", "qa", 1)).items] == ["2+2"]
    latest = await svc.get("p1", "qa")
    assert [i.expected for i in latest.items] == ["4", "6"]
    assert latest.items[1].source == {"trace_id": "t1"}
    v3 = await svc.replace_items("p1", "qa", latest.items[:1])
    assert v3.version == 3 and len((await svc.get("p1", "qa", 2)).items) == 2
    with pytest.raises(NotFoundError):
        await svc.get("p2", "qa")  # another project never sees it
    assert await svc.list_datasets("p2") == []
    assert [d["name"] for d in await svc.list_datasets("p1")] == ["qa"]


async def test_import_export_and_line_numbers(engine) -> None:
    svc = DatasetService(engine)
    v = await svc.import_text("p", "d", '{"input": "a", "expected": "A"}\n\n{"input": "b"}\n')
    assert len(v.items) == 2
    text = await svc.export_text("p", "d")
    v2 = await svc.import_text("p", "copy", text)
    assert [i.to_dict() for i in v2.items] == [i.to_dict() for i in v.items]
    with pytest.raises(InvalidInputError, match="line 2: invalid JSON"):
        await svc.import_text("p", "bad", '{"input": "a"}\n{nope\n')
    with pytest.raises(InvalidInputError, match="line 1: 'input' is required"):
        await svc.import_text("p", "bad", '{"expected": "a"}\n')
    c = await svc.import_text("p", "csv", "input,expected,topic\nhi,HI,greet\n", fmt="csv")
    assert c.items[0].expected == "HI" and c.items[0].metadata == {"topic": "greet"}
    with pytest.raises(InvalidInputError, match="line 3: more fields"):
        await svc.import_text("p", "csv2", "input,expected\na,b\nc,d,e\n", fmt="csv")
    assert "hi,HI" in await svc.export_text("p", "csv", fmt="csv")


async def test_runner_resume_isolation_timeout(engine) -> None:
    svc = DatasetService(engine)
    ds = await svc.add_items(
        "p",
        "d",
        [{"id": f"i{n}", "input": str(n), "expected": str(n)} for n in range(6)]
        + [{"id": "boom", "input": "x"}, {"id": "slow", "input": "s"}],
    )
    calls: list[str] = []

    async def target(item: DatasetItem) -> TargetOutput:
        calls.append(item.id)
        if item.id == "boom":
            raise RuntimeError("target broke")
        if item.id == "slow":
            await asyncio.sleep(5)
        return TargetOutput(output=item.input if item.id != "i0" else "wrong", tokens=3, cost_usd=0.001)

    scorer = create_evaluator("exact")
    runner = Runner(engine)
    s1 = await runner.run("p", "run1", ds, target, [scorer], concurrency=3, timeout_s=0.3)
    assert s1.done == 8 and s1.errors == 2
    stored = {r["item_id"]: r for r in runner.results("p", "run1")}
    assert "target broke" in stored["boom"]["error"] and "timed out" in stored["slow"]["error"]
    scores = item_scores(list(stored.values()), scorer.name)
    assert scores["i1"] == 1.0 and scores["i0"] == 0.0 and "boom" not in scores
    assert stored["i1"]["tokens"] == 3 and stored["i1"]["latency_ms"] >= 0
    calls.clear()
    s2 = await runner.run("p", "run1", ds, target, [scorer], timeout_s=0.3)
    assert calls == [] and s2.skipped == 8  # resumed: nothing redone
    assert runner.results("other", "run1") == []
    assert fingerprint(ds, "fn", {}, [scorer]) != fingerprint(ds, "fn", {"t": 1}, [scorer])


def test_paired_significance() -> None:
    base = {str(i): 1.0 for i in range(40)}
    worse = {str(i): (0.0 if i < 20 else 1.0) for i in range(40)}
    r = paired_test(base, worse)
    assert r.regression and r.delta == -0.5 and r.ci_high < 0 and r.p_value < 0.01
    same = paired_test(base, dict(base))
    assert not same.significant and same.p_value == 1.0
    noisy = {str(i): (0.0 if i == 3 else 1.0) for i in range(40)}
    assert not paired_test(base, noisy).significant
