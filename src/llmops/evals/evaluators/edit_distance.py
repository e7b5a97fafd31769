"""Normalised edit-distance similarity (Levenshtein, via rapidfuzz): 1 - distance / max(len)."""

from __future__ import annotations

from typing import Any

from rapidfuzz.distance import Levenshtein

from llmops.evals.evaluators._base import Params, Scorer, normalise
from llmops.evals.models import EvalCase, ScoreResult


class EditDistance(Scorer):
    name = "edit_distance"
    version = "1"
    kind = "deterministic"
    description = "Levenshtein similarity in [0, 1]: 1 - distance / length of the longer text (1 = identical)."
    params = {"case_sensitive": "compare case (default false; whitespace is always collapsed)"}

    def __init__(self, *, case_sensitive: bool, **kw: Any) -> None:
        super().__init__(**kw)
        self.case_sensitive = case_sensitive

    @classmethod
    def from_spec(cls, p: Params, deps: object) -> EditDistance:
        return cls(
            case_sensitive=p.flag("case_sensitive", False),
            threshold=p.threshold(None),
            score_name=p.score_name(cls.name),
        )

    async def score(self, case: EvalCase) -> ScoreResult:
        if (missing := self.needs_expected(case)) is not None:
            return self.error(missing)
        a = normalise(case.output, case_sensitive=self.case_sensitive)
        b = normalise(case.expected or "", case_sensitive=self.case_sensitive)
        distance = Levenshtein.distance(a, b)
        value = 1.0 if not a and not b else 1.0 - distance / max(len(a), len(b))
        return self.result(value, f"{distance} edits", details={"distance": distance})
