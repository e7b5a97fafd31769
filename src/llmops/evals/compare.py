"""Paired comparison of two runs' per-item scores: mean delta, paired bootstrap CI and sign-flip permutation
p-value (numpy only). ``delta = candidate - baseline``; a regression is a delta whose CI lies below zero."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairedResult:
    n: int
    mean_baseline: float
    mean_candidate: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float

    @property
    def significant(self) -> bool:
        return self.n > 0 and (self.ci_high < 0 or self.ci_low > 0) and self.p_value < 0.05

    @property
    def regression(self) -> bool:
        return self.significant and self.delta < 0


def paired_test(
    baseline: Mapping[str, float],
    candidate: Mapping[str, float],
    *,
    n_resamples: int = 5000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedResult:
    """Compare the items both runs scored (by item id)."""
    keys = sorted(set(baseline) & set(candidate))
    if not keys:
        return PairedResult(0, float("nan"), float("nan"), 0.0, 0.0, 0.0, 1.0)
    a = np.array([baseline[k] for k in keys], dtype=float)
    b = np.array([candidate[k] for k in keys], dtype=float)
    d = b - a
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(n_resamples, len(d)))
    boot = d[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(boot, [alpha, 1 - alpha])
    signs = rng.choice(np.array([-1.0, 1.0]), size=(n_resamples, len(d)))
    perm = np.abs((signs * d).mean(axis=1))
    observed = abs(d.mean())
    p = (1 + int((perm >= observed - 1e-12).sum())) / (n_resamples + 1)
    if not d.any():
        p = 1.0
    return PairedResult(len(d), float(a.mean()), float(b.mean()), float(d.mean()), float(lo), float(hi), p)
