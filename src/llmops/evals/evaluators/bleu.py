"""Sentence BLEU (Papineni et al. 2002): geometric mean of clipped n-gram precisions times a brevity penalty.

Clipping: a candidate n-gram counts at most as often as it appears in any one reference. Brevity penalty
``exp(1 - r/c)`` when the candidate (length c) is shorter than the closest reference length r (ties: the shorter
reference), as in NLTK. Smoothing for n-gram orders with no match (otherwise one empty order zeroes the score):
``exp`` (default, as sacrebleu's sentence BLEU: the k-th empty order gets precision 1 / (2^k * total)),
``epsilon`` (0.1 added to empty numerators, NLTK's method1) or ``none`` (the unsmoothed score, 0 when any
order has no match). With smoothing, a candidate shorter than ``max_n`` words is scored on the orders it has
(sacrebleu's effective order). References: the expected output plus ``metadata["references"]``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from llmops.core.errors import InvalidInputError
from llmops.evals.evaluators._base import Params, Scorer
from llmops.evals.evaluators._ngrams import ngrams, references, tokenize
from llmops.evals.models import EvalCase, ScoreResult

SMOOTHING = ("exp", "epsilon", "none")


def sentence_bleu(
    candidate: Sequence[str], refs: Sequence[Sequence[str]], *, max_n: int = 4, smoothing: str = "exp"
) -> tuple[float, list[float], float]:
    """(BLEU in [0, 1], the n-gram precisions, brevity penalty) for tokenised text."""
    c = len(candidate)
    if c == 0 or not refs:
        return 0.0, [0.0] * max_n, 0.0
    precisions: list[float] = []
    empty_orders = 0
    for n in range(1, max_n + 1):
        cand = ngrams(candidate, n)
        total = sum(cand.values())
        best: Counter[tuple[str, ...]] = Counter()
        for ref in refs:
            best |= ngrams(ref, n)  # max count per n-gram over the references
        matched = sum(min(count, best[g]) for g, count in cand.items())
        if total == 0:  # candidate shorter than n: with smoothing, use the effective order (as sacrebleu)
            if smoothing == "none":
                precisions.append(0.0)
                continue
            break
        if matched > 0 or smoothing == "none":
            precisions.append(matched / total)
        elif smoothing == "exp":
            empty_orders += 1
            precisions.append(1.0 / (2**empty_orders * total))
        else:  # epsilon
            precisions.append(0.1 / total)
    r = min((abs(len(ref) - c), len(ref)) for ref in refs)[1]
    bp = 1.0 if c > r else math.exp(1 - r / c)
    if min(precisions) <= 0.0:
        return 0.0, precisions, bp
    return bp * math.exp(sum(math.log(p) for p in precisions) / len(precisions)), precisions, bp


class Bleu(Scorer):
    name = "bleu"
    version = "1"
    kind = "deterministic"
    description = "Sentence BLEU in [0, 1] against the expected output (clipped n-gram precision, brevity penalty)."
    params = {
        "max_n": "highest n-gram order (default 4)",
        "smoothing": "'exp' (default), 'epsilon' or 'none'",
        "lowercase": "lower-case before comparing (default true)",
    }

    def __init__(self, *, max_n: int, smoothing: str, lowercase: bool, **kw: Any) -> None:
        super().__init__(**kw)
        self.max_n, self.smoothing, self.lowercase = max_n, smoothing, lowercase

    @classmethod
    def from_spec(cls, p: Params, deps: object) -> Bleu:
        smoothing = p.text("smoothing", "exp")
        if smoothing not in SMOOTHING:
            raise InvalidInputError(f"scorer 'bleu': 'smoothing' must be one of {SMOOTHING}", param="smoothing")
        return cls(
            max_n=p.integer("max_n", 4, lo=1, hi=8),
            smoothing=smoothing,
            lowercase=p.flag("lowercase", True),
            threshold=p.threshold(None),
            score_name=p.score_name(cls.name),
        )

    async def score(self, case: EvalCase) -> ScoreResult:
        refs = references(case)
        if not refs:
            return self.error("scorer 'bleu' needs an expected output")
        cand = tokenize(case.output, lowercase=self.lowercase, punctuation=True)
        toks = [tokenize(r, lowercase=self.lowercase, punctuation=True) for r in refs]
        value, precisions, bp = sentence_bleu(cand, toks, max_n=self.max_n, smoothing=self.smoothing)
        details = {"precisions": [round(x, 6) for x in precisions], "brevity_penalty": round(bp, 6)}
        return self.result(value, f"BLEU {value:.3f}", details=details)
