"""ROUGE-1, ROUGE-2 (clipped n-gram overlap) and ROUGE-L (longest common subsequence), as F-measures.

Precision = overlap / candidate n-grams, recall = overlap / reference n-grams, F1 their harmonic mean (the
``rouge-score`` package's default). ROUGE-L uses the LCS length over candidate and reference lengths. With
several references (expected output plus ``metadata["references"]``) the best F1 is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmops.core.errors import InvalidInputError
from llmops.evals.evaluators._base import Params, Scorer
from llmops.evals.evaluators._ngrams import lcs_length, ngrams, references, tokenize
from llmops.evals.models import EvalCase, ScoreResult

VARIANTS = ("rouge1", "rouge2", "rougeL")


def _prf(overlap: int, cand_total: int, ref_total: int) -> tuple[float, float, float]:
    p = overlap / cand_total if cand_total else 0.0
    r = overlap / ref_total if ref_total else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def rouge(candidate: Sequence[str], reference: Sequence[str], variant: str) -> tuple[float, float, float]:
    """(precision, recall, F1) of one ROUGE variant for tokenised texts."""
    if variant == "rougeL":
        return _prf(lcs_length(candidate, reference), len(candidate), len(reference))
    n = 1 if variant == "rouge1" else 2
    cand, ref = ngrams(candidate, n), ngrams(reference, n)
    overlap = sum((cand & ref).values())
    return _prf(overlap, sum(cand.values()), sum(ref.values()))


class Rouge(Scorer):
    name = "rouge"
    version = "1"
    kind = "deterministic"
    description = "ROUGE F1 in [0, 1] against the expected output: variant rouge1, rouge2 or rougeL (LCS)."
    params = {
        "variant": "'rouge1', 'rouge2' or 'rougeL' (default rougeL; aliases rouge1/rouge2/rougeL name them)",
        "lowercase": "lower-case before comparing (default true)",
    }

    def __init__(self, *, variant: str, lowercase: bool, **kw: Any) -> None:
        super().__init__(**kw)
        self.variant, self.lowercase = variant, lowercase

    @classmethod
    def from_spec(cls, p: Params, deps: object) -> Rouge:
        variant = p.text("variant", "rougeL") or "rougeL"
        if variant not in VARIANTS:
            raise InvalidInputError(f"scorer 'rouge': 'variant' must be one of {VARIANTS}", param="variant")
        return cls(
            variant=variant,
            lowercase=p.flag("lowercase", True),
            threshold=p.threshold(None),
            score_name=p.score_name(variant),
        )

    async def score(self, case: EvalCase) -> ScoreResult:
        refs = references(case)
        if not refs:
            return self.error(f"scorer {self.name!r} needs an expected output")
        cand = tokenize(case.output, lowercase=self.lowercase)
        p, r, f = max(rouge(cand, tokenize(ref, lowercase=self.lowercase), self.variant) for ref in refs)
        details = {"precision": round(p, 6), "recall": round(r, 6), "f1": round(f, 6)}
        return self.result(f, f"{self.variant} F1 {f:.3f}", details=details)
