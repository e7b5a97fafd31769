"""Exact match of the output against the expected output (after normalisation, unless ``strict``)."""

from __future__ import annotations

from typing import Any

from llmops.evals.evaluators._base import Params, Scorer, normalise
from llmops.evals.models import EvalCase, ScoreResult


class ExactMatch(Scorer):
    name = "exact"
    version = "1"
    kind = "deterministic"
    description = "1 when the output equals the expected output (whitespace/case-insensitive unless strict)."
    params = {
        "case_sensitive": "compare case (default false)",
        "strict": "compare the raw strings, no normalisation at all (default false)",
        "strip_punctuation": "ignore punctuation (default false)",
    }

    def __init__(self, *, case_sensitive: bool, strict: bool, strip_punctuation: bool, **kw: Any) -> None:
        super().__init__(**kw)
        self.case_sensitive, self.strict, self.strip_punctuation = case_sensitive, strict, strip_punctuation

    @classmethod
    def from_spec(cls, p: Params, deps: object) -> ExactMatch:
        return cls(
            case_sensitive=p.flag("case_sensitive", False),
            strict=p.flag("strict", False),
            strip_punctuation=p.flag("strip_punctuation", False),
            score_name=p.score_name(cls.name),
        )

    def _norm(self, text: str) -> str:
        if self.strict:
            return text
        return normalise(text, case_sensitive=self.case_sensitive, strip_punctuation=self.strip_punctuation)

    async def score(self, case: EvalCase) -> ScoreResult:
        if (missing := self.needs_expected(case)) is not None:
            return self.error(missing)
        assert case.expected is not None
        ok = self._norm(case.output) == self._norm(case.expected)
        return self.boolean(ok, "output matches the expected output" if ok else "output differs from the expected")
