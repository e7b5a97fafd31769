"""RAG context precision (Ragas): are the relevant retrieved contexts ranked first?

A context is relevant when it is close (MiniLM cosine >= ``relevance``) to some sentence of the expected answer
(or to the question when there is none). The value is the average precision over the ranked contexts:
``sum_k precision@k * rel_k / number of relevant contexts`` (0 when none is relevant).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from llmops.evals.evaluators._base import Params, Scorer, run_blocking
from llmops.evals.evaluators._text import question_of, sentences
from llmops.evals.evaluators.registry import Embedder, EvaluatorDeps
from llmops.evals.models import EvalCase, ScoreResult


def context_relevance(embedder: Embedder, targets: list[str], contexts: list[str]) -> list[float]:
    """For each context, its best cosine to any target text."""
    vectors, _ = embedder.embed([*targets, *contexts])
    vectors = np.asarray(vectors)
    sims = vectors[len(targets) :] @ vectors[: len(targets)].T
    return [float(row.max()) for row in sims]


def average_precision(relevant: list[bool]) -> float:
    hits, total = 0, 0.0
    for k, rel in enumerate(relevant, 1):
        if rel:
            hits += 1
            total += hits / k
    return total / hits if hits else 0.0


class ContextPrecision(Scorer):
    name = "context_precision"
    version = "1"
    kind = "rag"
    description = "RAG: average precision of the retrieved contexts' ranking (relevance by local embeddings)."
    params = {"relevance": "cosine from which a context counts as relevant (default 0.5)"}

    def __init__(self, *, deps: EvaluatorDeps, relevance: float, **kw: Any) -> None:
        super().__init__(**kw)
        self._deps, self.relevance = deps, relevance

    @classmethod
    def from_spec(cls, p: Params, deps: EvaluatorDeps) -> ContextPrecision:
        return cls(
            deps=deps,
            relevance=p.number("relevance", 0.5, lo=-1.0, hi=1.0),
            threshold=p.threshold(None),
            score_name=p.score_name(cls.name),
        )

    async def score(self, case: EvalCase) -> ScoreResult:
        contexts = [c for c in case.contexts if c]
        if not contexts:
            return self.error("scorer 'context_precision' needs retrieved contexts")
        targets = sentences(case.expected or "") or [question_of(case.input)]
        if not any(t.strip() for t in targets):
            return self.error("scorer 'context_precision' needs an expected output or a question")
        sims = await run_blocking(context_relevance, self._deps.get_embedder(), targets, contexts)
        relevant = [s >= self.relevance for s in sims]
        value = average_precision(relevant)
        details = {"relevance": [round(s, 4) for s in sims], "relevant": relevant}
        return self.result(value, f"{sum(relevant)}/{len(contexts)} contexts relevant", details=details)
