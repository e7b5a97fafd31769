"""RAG faithfulness (Ragas definition): the share of the answer's claims that the retrieved contexts support.

Claims are the answer's sentences; support is judged locally (embeddings + NLI, see :mod:`._claims`), never by
the NLI model alone. Unlike ``factual_consistency`` only the contexts count, not the expected output.
"""

from __future__ import annotations

from typing import Any

from llmops.evals.evaluators._base import Params, Scorer
from llmops.evals.evaluators._claims import acheck_claims
from llmops.evals.evaluators._text import sentences
from llmops.evals.evaluators.factual import summarise
from llmops.evals.evaluators.registry import EvaluatorDeps
from llmops.evals.models import EvalCase, ScoreResult


class Faithfulness(Scorer):
    name = "faithfulness"
    version = "1"
    kind = "rag"
    description = "RAG: share of answer claims supported by the retrieved contexts (local NLI + embeddings)."
    params: dict[str, str] = {}

    def __init__(self, *, deps: EvaluatorDeps, **kw: Any) -> None:
        super().__init__(**kw)
        self._deps = deps

    @classmethod
    def from_spec(cls, p: Params, deps: EvaluatorDeps) -> Faithfulness:
        return cls(deps=deps, threshold=p.threshold(0.5), score_name=p.score_name(cls.name))

    async def score(self, case: EvalCase) -> ScoreResult:
        contexts = [c for c in case.contexts if c]
        if not contexts:
            return self.error("scorer 'faithfulness' needs retrieved contexts")
        claims = sentences(case.output)
        if not claims:
            return self.error("the output has no claims to check")
        verdicts = await acheck_claims(claims, contexts, self._deps.get_embedder(), self._deps.get_nli())
        return summarise(self, verdicts)
