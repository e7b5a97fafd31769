"""Measured quality of the local scorers on the labelled sets shipped in ``llmops/evals/data``.

``measure_faithfulness``, ``measure_semantic`` and ``measure_toxicity`` run the real scorers over their set and
return precision/recall (and the misclassified items), so the figures in docs/scorers.md can be reproduced
(``benchmarks/scorers.py``) and are pinned by tests. The positive class is what a user wants flagged:
inconsistent answers, similar pairs, toxic texts.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from llmops.evals.evaluators.registry import EvaluatorDeps, create_evaluator
from llmops.evals.models import EvalCase


def load_labelled(name: str) -> list[dict[str, Any]]:
    """Items of a shipped labelled set (``faithfulness``, ``semantic_similarity``, ``toxicity_heldout``, ...)."""
    text = resources.files("llmops.evals").joinpath("data", f"{name}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@dataclass
class Quality:
    n: int
    tp: int
    fp: int
    fn: int
    tn: int
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "precision": round(self.precision, 3),
            "recall": round(self.recall, 3),
            "f1": round(self.f1, 3),
            "confusion": {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn},
        }


def _tally(rows: list[tuple[bool, bool, dict[str, Any]]]) -> Quality:
    q = Quality(len(rows), 0, 0, 0, 0)
    for predicted, actual, item in rows:
        if predicted and actual:
            q.tp += 1
        elif predicted:
            q.fp += 1
            q.errors.append({"error": "false positive", **item})
        elif actual:
            q.fn += 1
            q.errors.append({"error": "false negative", **item})
        else:
            q.tn += 1
    return q


async def _scores(spec: Any, deps: EvaluatorDeps, cases: list[EvalCase]) -> list[Any]:
    scorer = create_evaluator(spec, deps)
    return list(await asyncio.gather(*(scorer.score(c) for c in cases)))


async def measure_faithfulness(deps: EvaluatorDeps, *, spec: Any = "factual_consistency") -> Quality:
    """Positive = the answer is flagged not consistent with the reference (contradicted or unsupported)."""
    items = load_labelled("faithfulness")
    cases = [EvalCase(input="", output=i["answer"], expected=i["reference"]) for i in items]
    results = await _scores(spec, deps, cases)
    rows = [
        (r.label != "consistent", i["label"] == "inconsistent", {**i, "got": r.label})
        for r, i in zip(results, items, strict=True)
    ]
    return _tally(rows)


async def measure_semantic(deps: EvaluatorDeps, *, threshold: float | None = None) -> Quality:
    """Positive = the pair is judged similar (value >= threshold)."""
    items = load_labelled("semantic_similarity")
    spec: dict[str, Any] = {"name": "semantic_similarity"}
    if threshold is not None:
        spec["threshold"] = threshold
    cases = [EvalCase(input="", output=i["output"], expected=i["expected"]) for i in items]
    results = await _scores(spec, deps, cases)
    rows = [
        (bool(r.passed), bool(i["similar"]), {**i, "got": round(r.value, 3)})
        for r, i in zip(results, items, strict=True)
    ]
    return _tally(rows)


async def measure_toxicity(deps: EvaluatorDeps, *, name: str = "toxicity_heldout") -> Quality:
    """Positive = the text is flagged toxic (value >= 0.5)."""
    items = load_labelled(name)
    cases = [EvalCase(input="", output=i["text"]) for i in items]
    results = await _scores("toxicity", deps, cases)
    rows = [
        (r.label == "toxic", bool(i["toxic"]), {"text": i["text"], "got": round(r.value, 3)})
        for r, i in zip(results, items, strict=True)
    ]
    return _tally(rows)
