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
