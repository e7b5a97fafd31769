"""RAG context recall (Ragas): the share of the expected answer's sentences that the contexts support.

Each sentence of the expected answer is a claim checked against the retrieved contexts with the local claim
checker (:mod:`._claims`: embeddings + NLI); only ``supported`` counts.
"""

from __future__ import annotations

from typing import Any

from llmops.evals.evaluators._base import Params, Scorer
from llmops.evals.evaluators._claims import acheck_claims
from llmops.evals.evaluators._text import sentences
from llmops.evals.evaluators.registry import EvaluatorDeps
from llmops.evals.models import EvalCase, ScoreResult


class ContextRecall(Scorer):
    name = "context_recall"
    version = "1"
    kind = "rag"
    description = "RAG: share of expected-answer sentences supported by the retrieved contexts (local models)."
    params: dict[str, str] = {}

    def __init__(self, *, deps: EvaluatorDeps, **kw: Any) -> None:
        super().__init__(**kw)
        self._deps = deps

    @classmethod
    def from_spec(cls, p: Params, deps: EvaluatorDeps) -> ContextRecall:
        return cls(deps=deps, threshold=p.threshold(None), score_name=p.score_name(cls.name))

    async def score(self, case: EvalCase) -> ScoreResult:
        contexts = [c for c in case.contexts if c]
        claims = sentences(case.expected or "")
        if not contexts or not claims:
            return self.error("scorer 'context_recall' needs an expected output and retrieved contexts")
        verdicts = await acheck_claims(claims, contexts, self._deps.get_embedder(), self._deps.get_nli())
        supported = sum(v.verdict == "supported" for v in verdicts)
        value = supported / len(claims)
        details = {"claims": [v.to_dict() for v in verdicts]}
        return self.result(value, f"{supported}/{len(claims)} reference sentences supported", details=details)
