"""Numeric answer within a tolerance of the expected number (absolute and/or relative)."""

from __future__ import annotations

import math
import re
from typing import Any

from llmops.evals.evaluators._base import Params, Scorer
from llmops.evals.models import EvalCase, ScoreResult

_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?")


def first_number(text: str) -> float | None:
    """The first number written in ``text`` (thousands separators allowed), or None."""
    for m in _NUMBER.finditer(text):
        token = m.group(0)
        if any(ch.isdigit() for ch in token):
            try:
                return float(token.replace(",", ""))
            except ValueError:
                continue
    return None


class NumericTolerance(Scorer):
    name = "numeric"
    version = "1"
    kind = "deterministic"
    description = "1 when the first number in the output is within abs_tol or rel_tol of the expected number."
    params = {
        "expected": "the number to compare with (default: the first number of the case's expected output)",
        "abs_tol": "absolute tolerance (default 0)",
        "rel_tol": "relative tolerance (default 1e-6)",
    }

    def __init__(self, *, expected: float | None, abs_tol: float, rel_tol: float, **kw: Any) -> None:
        super().__init__(**kw)
        self.expected, self.abs_tol, self.rel_tol = expected, abs_tol, rel_tol

    @classmethod
    def from_spec(cls, p: Params, deps: object) -> NumericTolerance:
        return cls(
            expected=p.number("expected"),
            abs_tol=p.number("abs_tol", 0.0, lo=0.0),
            rel_tol=p.number("rel_tol", 1e-6, lo=0.0),
            score_name=p.score_name(cls.name),
        )

    async def score(self, case: EvalCase) -> ScoreResult:
        want = self.expected if self.expected is not None else first_number(case.expected or "")
        if want is None:
            return self.error("scorer 'numeric' needs an expected number ('expected' or the case's expected output)")
        got = first_number(case.output)
        if got is None:
            return self.boolean(False, "no number in the output", details={"expected": want})
        ok = math.isclose(got, want, rel_tol=self.rel_tol, abs_tol=self.abs_tol)
        return self.boolean(ok, f"got {got:g}, expected {want:g}", details={"got": got, "expected": want})
