"""Judge calibration: how well a scorer (an LLM judge, or any machine scorer) agrees with human labels.

Pairs a judge's trace scores (score name = the judge's name, any source but ``human``) with human labels
(score name = a score config's name, source ``human``) on the same traces — experiment items are paired
through the trace each result keeps — taking the latest score of each side per trace. Both sides are mapped to
the config's categories:

- boolean: ``true``/``false`` (a numeric judge value counts as true at >= 0.5);
- categorical: the label (a judge's categorical ``string_value``);
- numeric (ordinal): integers from min to max; a judge value in [0, 1] on a wider scale is rescaled to it,
  then rounded. Weighted κ (linear and quadratic weights) applies only here.

κ is 1.0 when both raters agree on everything, even when they used a single category (where Cohen's formula
is 0/0): identical labels are perfect agreement.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from llmops.core.errors import InvalidInputError
from llmops.evals.review import ReviewService, ScoreConfig
from llmops.tracing import Score, ScoreFilter, ScoreService

Weights = Literal["linear", "quadratic"]
MAX_SCORES = 20_000
MAX_ORDINAL_LEVELS = 101


def confusion_matrix(pairs: Sequence[tuple[str, str]], categories: Sequence[str]) -> list[list[int]]:
    """``matrix[i][j]``: items the human labelled ``categories[i]`` and the judge ``categories[j]``."""
    index = {c: i for i, c in enumerate(categories)}
    matrix = [[0] * len(categories) for _ in categories]
    for human, judge in pairs:
        matrix[index[human]][index[judge]] += 1
    return matrix


def agreement(pairs: Sequence[tuple[str, str]]) -> float:
    return sum(1 for a, b in pairs if a == b) / len(pairs) if pairs else 0.0


def weighted_kappa(
    pairs: Sequence[tuple[str, str]], categories: Sequence[str], *, weights: Weights | None = None
) -> float:
    """Cohen's κ (``weights=None``) or weighted κ over ordered ``categories``: 1 - Σw·o / Σw·e, where o and e
    are the observed and chance-expected proportions and w the disagreement weight (0/1, |i-j|/(k-1) or its
    square)."""
    if not pairs:
        raise InvalidInputError("κ needs at least one labelled pair", param="judge")
    k, n = len(categories), len(pairs)
    matrix = confusion_matrix(pairs, categories)
    rows = [sum(r) / n for r in matrix]
    cols = [sum(matrix[i][j] for i in range(k)) / n for j in range(k)]

    def w(i: int, j: int) -> float:
        if weights is None or k < 2:
            return 0.0 if i == j else 1.0
        d = abs(i - j) / (k - 1)
        return d if weights == "linear" else d * d

    observed = sum(w(i, j) * matrix[i][j] / n for i in range(k) for j in range(k))
    expected = sum(w(i, j) * rows[i] * cols[j] for i in range(k) for j in range(k))
    if expected == 0:  # every label in one category, on both sides: perfect agreement
        return 1.0 if observed == 0 else 0.0
    return 1.0 - observed / expected


def cohen_kappa(pairs: Sequence[tuple[str, str]], categories: Sequence[str]) -> float:
    return weighted_kappa(pairs, categories)


@dataclass(frozen=True)
class Calibration:
    judge: str
    config: str
    n: int
    categories: list[str]
    matrix: list[list[int]]  # rows: human, columns: judge
    agreement: float
    kappa: float | None
    weighted_kappa_linear: float | None
    weighted_kappa_quadratic: float | None
    unpaired_human: int
    unpaired_judge: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "judge": self.judge,
            "config": self.config,
            "n": self.n,
            "categories": self.categories,
            "matrix": self.matrix,
            "agreement": self.agreement,
            "kappa": self.kappa,
            "weighted_kappa": {"linear": self.weighted_kappa_linear, "quadratic": self.weighted_kappa_quadratic},
            "unpaired": {"human": self.unpaired_human, "judge": self.unpaired_judge},
        }


def categories_of(config: ScoreConfig) -> list[str]:
    if config.data_type == "boolean":
        return ["false", "true"]
    if config.data_type == "categorical":
        return list(config.categories)
    lo, hi = math.ceil(config.min_value or 0), math.floor(config.max_value or 0)
    if hi - lo + 1 > MAX_ORDINAL_LEVELS or hi < lo:
        raise InvalidInputError(f"config {config.name!r} spans too many integer levels for κ", param="config")
    return [str(v) for v in range(lo, hi + 1)]


def category(config: ScoreConfig, score: Score, *, rescale: bool) -> str | None:
    """The config category of a score, or None when it has none (e.g. an errored judge, an off-scale label)."""
    if config.data_type == "categorical":
        label = score.string_value
        return label if label in config.categories else None
    if score.value is None:
        return None
    if config.data_type == "boolean":
        return "true" if score.value >= 0.5 else "false"
    lo, hi = config.min_value or 0.0, config.max_value or 0.0
    value = lo + score.value * (hi - lo) if rescale else score.value
    level = math.floor(value + 0.5)
    return str(level) if lo <= level <= hi else None


def latest_by_trace(scores: list[Score]) -> dict[str, Score]:
    latest: dict[str, Score] = {}
    for s in scores:
        if s.trace_id not in latest or s.created_ns > latest[s.trace_id].created_ns:
            latest[s.trace_id] = s
    return latest


def calibrate(judge: str, config: ScoreConfig, human: list[Score], machine: list[Score]) -> Calibration:
    humans, judges = latest_by_trace(human), latest_by_trace(machine)
    categories = categories_of(config)
    rescale = (
        config.data_type == "numeric"
        and (config.max_value or 0) > 1
        and all(s.value is not None and 0 <= s.value <= 1 for s in judges.values())
    )
    pairs = []
    for trace_id in humans.keys() & judges.keys():
        h, j = category(config, humans[trace_id], rescale=False), category(config, judges[trace_id], rescale=rescale)
        if h is not None and j is not None:
            pairs.append((h, j))
    matrix = confusion_matrix(pairs, categories)
    ordinal = config.data_type == "numeric"
    return Calibration(
        judge,
        config.name,
        len(pairs),
        categories,
        matrix,
        agreement(pairs),
        cohen_kappa(pairs, categories) if pairs else None,
        weighted_kappa(pairs, categories, weights="linear") if pairs and ordinal else None,
        weighted_kappa(pairs, categories, weights="quadratic") if pairs and ordinal else None,
        len(humans.keys() - judges.keys()),
        len(judges.keys() - humans.keys()),
    )


class CalibrationService:
    def __init__(self, review: ReviewService, scores: ScoreService) -> None:
        self._review = review
        self._scores = scores

    async def _all(self, project_id: str, flt: ScoreFilter) -> list[Score]:
        out: list[Score] = []
        cursor: str | None = None
        while len(out) < MAX_SCORES:
            page = await self._scores.list_scores(project_id, flt, cursor=cursor, limit=200)
            out += page.items
            cursor = page.next_cursor
            if cursor is None:
                break
        return out

    async def calibrate(self, project_id: str, judge: str, config_name: str) -> Calibration:
        if not judge.strip():
            raise InvalidInputError("judge is required", param="judge")
        config = await self._review.get_config(project_id, config_name)
        human = await self._all(project_id, ScoreFilter(name=config.name, source="human"))
        machine = [s for s in await self._all(project_id, ScoreFilter(name=judge)) if s.source != "human"]
        return await asyncio.to_thread(calibrate, judge, config, human, machine)

    async def judges(self, project_id: str) -> list[str]:
        """Names of machine scores seen recently (for the calibration page's picker)."""
        page = await self._scores.list_scores(project_id, ScoreFilter(), limit=200)
        return sorted({s.name for s in page.items if s.source != "human"})
