"""RAG answer relevancy: does the answer address the question?

Ragas generates questions from the answer with an LLM and compares them with the real one; locally we compare
the question with the answer and with its best sentence (MiniLM cosine; the mean of the two, clipped to
[0, 1]) and score evasive answers ("I don't know", "I cannot help") 0, as Ragas' noncommittal flag does.
"""

from __future__ import annotations

import re
from typing import Any

from llmops.evals.evaluators._base import Params, Scorer, run_blocking
from llmops.evals.evaluators._text import question_of, sentences
from llmops.evals.evaluators.registry import Embedder, EvaluatorDeps
from llmops.evals.evaluators.semantic import cosine_to_many
from llmops.evals.models import EvalCase, ScoreResult

_NONCOMMITTAL = re.compile(
    r"^\W*(i\s+(do\s+not|don't|cannot|can't)\s+(know|say|help|answer)|i'?m\s+not\s+sure|no\s+idea|"
    r"i\s+am\s+(not\s+sure|unable)|sorry,?\s+i\s+(can't|cannot))",
    re.IGNORECASE,
)


def relevancy(embedder: Embedder, question: str, answer: str) -> tuple[float, float]:
    parts = sentences(answer) or [answer]
    sims = cosine_to_many(embedder, question, [answer, *parts])
    return sims[0], max(sims[1:])


class AnswerRelevancy(Scorer):
    name = "answer_relevancy"
    version = "1"
    kind = "rag"
    description = "RAG: how well the answer addresses the question (local embeddings; evasive answers score 0)."
    params: dict[str, str] = {}

    def __init__(self, *, deps: EvaluatorDeps, **kw: Any) -> None:
        super().__init__(**kw)
        self._deps = deps

    @classmethod
    def from_spec(cls, p: Params, deps: EvaluatorDeps) -> AnswerRelevancy:
        return cls(deps=deps, threshold=p.threshold(0.5), score_name=p.score_name(cls.name))

    async def score(self, case: EvalCase) -> ScoreResult:
        question = question_of(case.input)
        if not question.strip():
            return self.error("scorer 'answer_relevancy' needs the question (the case input)")
        if not case.output.strip() or _NONCOMMITTAL.search(case.output):
            return self.result(0.0, "the answer is empty or noncommittal", details={"noncommittal": True})
        whole, best = await run_blocking(relevancy, self._deps.get_embedder(), question, case.output)
        value = max(0.0, min(1.0, (whole + best) / 2))
        details = {"cosine_answer": round(whole, 4), "cosine_best_sentence": round(best, 4)}
        return self.result(value, f"relevancy {value:.3f}", details=details)
