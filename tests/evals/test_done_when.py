"""Issue 5 "Done when", as far as it exists: dataset -> two prompt versions (rendered for real) -> scorers ->
comparison with significance -> promotion refused, in-process. The same flow over HTTP with a dataset built from
gateway traces and prompt versions called through the gateway is tests/evals/test_api.py; the CI run failing on a
planted regression with JUnit is tests/evals/test_cli_gate.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from llmops.core.db import create_db_engine, upgrade
from llmops.core.errors import ConflictError
from llmops.evals.compare import paired_test
from llmops.evals.datasets import DatasetItem, DatasetService
from llmops.evals.evaluators.registry import create_evaluator
from llmops.evals.gate import PromotionGate, prompt_run_id
from llmops.evals.runner import Runner, TargetOutput, item_scores
from llmops.prompts._sql import SqlPromptStore
from llmops.prompts.service import PromptService


@dataclass(frozen=True)
class Who:
    project_id: str = "proj_done"
    key_id: str = "key_done"
    is_admin: bool = True


async def test_done_when(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'd.db'}")
    upgrade(engine)
    who = Who()
    prompts = PromptService(SqlPromptStore(engine))
    prompts.label_gate = PromotionGate(engine, {"production": "names"})
    await prompts.push(
        who, {"template": "{{ who }}", "variables": {"who": "string"}, "model": "local"}, name="echo", create=True
    )
    await prompts.push(who, {"template": "Mr {{ who }}", "variables": {"who": "string"}, "model": "local"}, name="echo")
    names = [f"name{i}" for i in range(25)]
    ds = await DatasetService(engine).add_items(
        who.project_id,
        "names",
        [{"id": n, "input": {"who": n}, "expected": n, "source": {"trace_id": f"t{n}"}} for n in names],
    )

    def target(version: int):
        async def call(item: DatasetItem) -> TargetOutput:
            _, text = await prompts.render(who.project_id, "echo", version, item.input)
            return TargetOutput(str(text))

        return call

    runner, exact = Runner(engine), create_evaluator("exact")
    for v in (1, 2):
        await runner.run(who.project_id, prompt_run_id("echo", v, "names"), ds, target(v), [exact], concurrency=5)
    r1 = runner.results(who.project_id, prompt_run_id("echo", 1, "names"))
    r2 = runner.results(who.project_id, prompt_run_id("echo", 2, "names"))
    assert {r["output"] for r in r2} == {f"Mr {n}" for n in names}
    cmp = paired_test(item_scores(r1, exact.name), item_scores(r2, exact.name))
    assert cmp.regression and cmp.delta == -1.0
    await prompts.move_label(who, "echo", "production", 1)
    with pytest.raises(ConflictError, match="significant regression vs version 1"):
        await prompts.move_label(who, "echo", "production", 2)
    engine.dispose()
