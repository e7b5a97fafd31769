"""Factual consistency: is every claim of the output backed by the expected output and/or the contexts?

Local only (MiniLM embeddings + the NLI classifier, combined as :mod:`._claims` describes). The value is the
share of supported claims; ``label`` is ``consistent`` when nothing is contradicted and the value reaches the
threshold (default 0.5), ``contradicted`` when some claim is contradicted, else ``unsupported``. Per-claim
verdicts are in ``details["claims"]``.
"""

from __future__ import annotations

from typing import Any, Literal

from llmops.core.errors import InvalidInputError
from llmops.evals.evaluators._base import Params, Scorer
from llmops.evals.evaluators._claims import ClaimVerdict, acheck_claims
from llmops.evals.evaluators._text import sentences
from llmops.evals.evaluators.registry import EvaluatorDeps
from llmops.evals.models import EvalCase, ScoreResult

Against = Literal["expected", "contexts", "both"]


def summarise(scorer: Scorer, verdicts: list[ClaimVerdict]) -> ScoreResult:
    supported = sum(v.verdict == "supported" for v in verdicts)
    contradicted = [v for v in verdicts if v.verdict == "contradicted"]
    value = supported / len(verdicts)
    threshold = scorer.threshold if scorer.threshold is not None else 0.5
    label = "contradicted" if contradicted else ("consistent" if value >= threshold else "unsupported")
    reason = f"{supported}/{len(verdicts)} claims supported"
    if contradicted:
        reason += f"; contradicted: {contradicted[0].claim!r}"
    details = {"claims": [v.to_dict() for v in verdicts]}
    return scorer.result(value, reason, passed=label == "consistent", label=label, details=details)


class FactualConsistency(Scorer):
    name = "factual_consistency"
    version = "1"
    kind = "nli"
    description = "Share of output claims supported by the expected output / contexts (local NLI + embeddings)."
    params = {"against": "'both' (default), 'expected' or 'contexts': which texts are the reference"}

    def __init__(self, *, deps: EvaluatorDeps, against: Against, **kw: Any) -> None:
        super().__init__(**kw)
        self._deps, self.against = deps, against

    @classmethod
    def from_spec(cls, p: Params, deps: EvaluatorDeps) -> FactualConsistency:
        against = p.text("against", "both")
        if against not in ("expected", "contexts", "both"):
            raise InvalidInputError("'against' must be 'expected', 'contexts' or 'both'", param="against")
        return cls(deps=deps, against=against, threshold=p.threshold(0.5), score_name=p.score_name(cls.name))  # type: ignore[arg-type]

    async def score(self, case: EvalCase) -> ScoreResult:
        premises = [case.expected] if case.expected and self.against != "contexts" else []
        if self.against != "expected":
            premises += [c for c in case.contexts if c]
        if not premises:
            return self.error(f"scorer {self.name!r} needs an expected output or contexts")
        claims = sentences(case.output)
        if not claims:
            return self.error("the output has no claims to check")
        embedder, nli = self._deps.get_embedder(), self._deps.get_nli()
        verdicts = await acheck_claims(claims, premises, embedder, nli)
        return summarise(self, verdicts)
