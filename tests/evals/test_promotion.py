"""The promotion gate wired into a real PromptService: label moves refused with reasons, then allowed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from llmops.core.db import create_db_engine, upgrade
from llmops.core.errors import ConflictError
from llmops.evals.datasets import DatasetItem, DatasetService
from llmops.evals.evaluators.registry import create_evaluator
from llmops.evals.gate import PromotionGate, prompt_run_id
from llmops.evals.runner import Runner, TargetOutput
from llmops.prompts._sql import SqlPromptStore
from llmops.prompts.service import PromptService


@dataclass(frozen=True)
class Who:
    project_id: str = "proj_a"
    key_id: str = "key_a"
    is_admin: bool = True


async def test_promotion_gate(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'p.db'}")
    upgrade(engine)
    prompts = PromptService(SqlPromptStore(engine))
    prompts.label_gate = PromotionGate(engine, {"production": "golden"})
    who = Who()
    spec = {"template": "Answer {{ q }}", "variables": {"q": "string"}, "model": "local"}
    await prompts.push(who, spec, name="qa", create=True)
    await prompts.push(who, {**spec, "template": "Reply {{ q }}"}, name="qa")
    await prompts.push(who, {**spec, "template": "Say {{ q }}"}, name="qa")
    ds = await DatasetService(engine).add_items(
        who.project_id, "golden", [{"id": f"i{n}", "input": str(n), "expected": str(n)} for n in range(30)]
    )

    with pytest.raises(ConflictError, match="no experiment of version 1 on dataset 'golden'"):
        await prompts.move_label(who, "qa", "production", 1)
    await prompts.move_label(who, "qa", "staging", 1)  # ungated label moves freely

    def target(wrong: bool):
        async def call(item: DatasetItem) -> TargetOutput:
            return TargetOutput("nope" if wrong and int(item.input) % 2 else item.input)

        return call

    runner, exact = Runner(engine), create_evaluator("exact")
    await runner.run(who.project_id, prompt_run_id("qa", 1, "golden"), ds, target(False), [exact])
    await runner.run(who.project_id, prompt_run_id("qa", 2, "golden"), ds, target(True), [exact])
    await runner.run(who.project_id, prompt_run_id("qa", 3, "golden"), ds, target(False), [exact])
    assert (await prompts.move_label(who, "qa", "production", 1)).state.version == 1
    with pytest.raises(ConflictError, match="exact: significant regression vs version 1") as e:
        await prompts.move_label(who, "qa", "production", 2)
    assert e.value.code == "promotion_gate_failed"
    labels = {lb.label: lb.state.version for lb in await prompts.list_labels(who.project_id, "qa")}
    assert labels["production"] == 1  # refused move left the label alone
    assert (await prompts.move_label(who, "qa", "production", 3)).state.version == 3
    engine.dispose()


async def test_gate_also_guards_canary_and_rollback(tmp_path: Path) -> None:
    """A canary split sends real traffic to a version, and a rollback moves the label: both are refused, with
    the gate's reasons, when the version has no passing experiment or regresses significantly."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(engine)
    prompts = PromptService(SqlPromptStore(engine))
    who = Who()
    spec = {"template": "{{ q }}", "variables": {"q": "string"}, "model": "local"}
    await prompts.push(who, spec, name="c", create=True)
    await prompts.push(who, {**spec, "template": "bad {{ q }}"}, name="c")
    await prompts.push(who, {**spec, "template": "{{ q }} "}, name="c")
    ds = await DatasetService(engine).add_items(
        who.project_id, "gold", [{"id": f"i{n}", "input": {"q": str(n)}, "expected": str(n)} for n in range(20)]
    )

    def target(version: int):  # type: ignore[no-untyped-def]
        async def call(item: DatasetItem) -> TargetOutput:
            _, text = await prompts.render(who.project_id, "c", version, item.input)
            return TargetOutput(str(text).strip())

        return call

    runner, exact = Runner(engine), create_evaluator("exact")
    for v in (1, 2):
        await runner.run(who.project_id, prompt_run_id("c", v, "gold"), ds, target(v), [exact])
    await prompts.move_label(who, "c", "production", 1)  # ungated while moving
    await prompts.move_label(who, "c", "production", 3)  # ungated: gives rollback an earlier version
    prompts.label_gate = PromotionGate(engine, {"production": "gold"})
    with pytest.raises(ConflictError, match="no experiment of the current version 3"):
        await prompts.set_canary(who, "c", "production", 2, 10)
    await runner.run(who.project_id, prompt_run_id("c", 3, "gold"), ds, target(3), [exact])
    with pytest.raises(ConflictError, match="significant regression vs version 3"):
        await prompts.set_canary(who, "c", "production", 2, 10)
    label = await prompts.rollback(who, "c", "production")  # back to 1: no regression vs 3 -> allowed
    assert label.state.version == 1
    prompts.label_gate = None
    await prompts.move_label(who, "c", "production", 2)
    prompts.label_gate = PromotionGate(engine, {"production": "gold"})
    await prompts.set_canary(who, "c", "production", 1, 50)  # 1 vs 2 is an improvement: allowed
    engine.dispose()
