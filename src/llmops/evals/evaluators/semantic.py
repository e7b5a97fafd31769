"""Semantic similarity: cosine of the output's and the expected output's MiniLM embeddings (local, no LLM).

The value is the cosine clipped to [0, 1]. ``passed`` uses ``threshold`` (default 0.75, set a priori and then
measured on the labelled paraphrase set ``evals/data/semantic_similarity.jsonl``: docs/scorers.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from llmops.evals.evaluators._base import Params, Scorer, run_blocking
from llmops.evals.evaluators._ngrams import references
from llmops.evals.evaluators.registry import Embedder, EvaluatorDeps
from llmops.evals.models import EvalCase, ScoreResult

DEFAULT_THRESHOLD = 0.75


def cosine_to_many(embedder: Embedder, text: str, others: list[str]) -> list[float]:
    vectors, _ = embedder.embed([text, *others])
    return [float(x) for x in np.asarray(vectors[1:]) @ np.asarray(vectors[0])]


class SemanticSimilarity(Scorer):
    name = "semantic_similarity"
    version = "1"
    kind = "embedding"
    description = "Cosine similarity of output and expected output with the local MiniLM embedder, in [0, 1]."
    params: dict[str, str] = {}

    def __init__(self, *, deps: EvaluatorDeps, **kw: Any) -> None:
        super().__init__(**kw)
        self._deps = deps

    @classmethod
    def from_spec(cls, p: Params, deps: EvaluatorDeps) -> SemanticSimilarity:
        return cls(deps=deps, threshold=p.threshold(DEFAULT_THRESHOLD), score_name=p.score_name(cls.name))

    async def score(self, case: EvalCase) -> ScoreResult:
        refs = references(case)
        if not refs:
            return self.error(f"scorer {self.name!r} needs an expected output")
        sims = await run_blocking(cosine_to_many, self._deps.get_embedder(), case.output, refs)
        value = max(0.0, min(1.0, max(sims)))
        return self.result(value, f"cosine {value:.3f}", details={"cosines": [round(s, 4) for s in sims]})
