"""Cohen's κ, weighted κ, confusion matrix and agreement against hand-computed values, plus properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops.core.errors import InvalidInputError
from llmops.evals.calibration import agreement, calibrate, cohen_kappa, confusion_matrix, weighted_kappa
from llmops.evals.review import ScoreConfig
from llmops.tracing import Score


def _pairs(matrix: list[list[int]], cats: list[str]) -> list[tuple[str, str]]:
    return [(cats[i], cats[j]) for i, row in enumerate(matrix) for j, n in enumerate(row) for _ in range(n)]


def test_kappa_textbook_two_by_two() -> None:
    """[[20, 5], [10, 15]]: p_o = 0.7, p_e = 0.5·0.6 + 0.5·0.4 = 0.5, κ = 0.4."""
    cats = ["yes", "no"]
    pairs = _pairs([[20, 5], [10, 15]], cats)
    assert confusion_matrix(pairs, cats) == [[20, 5], [10, 15]]
    assert agreement(pairs) == pytest.approx(0.7)
    assert cohen_kappa(pairs, cats) == pytest.approx(0.4)


def test_weighted_kappa_three_levels() -> None:
    """[[2,1,0],[0,2,1],[1,0,3]], n=10, margins .3/.3/.4 both sides: κ = (.7-.34)/.66 = 6/11; linear weights
    observed .2, expected .45 → 5/9; quadratic observed .15, expected .345 → 13/23."""
    cats = ["1", "2", "3"]
    pairs = _pairs([[2, 1, 0], [0, 2, 1], [1, 0, 3]], cats)
    assert cohen_kappa(pairs, cats) == pytest.approx(6 / 11)
    assert weighted_kappa(pairs, cats, weights="linear") == pytest.approx(5 / 9)
    assert weighted_kappa(pairs, cats, weights="quadratic") == pytest.approx(13 / 23)


def test_kappa_needs_pairs() -> None:
    with pytest.raises(InvalidInputError, match="at least one"):
        cohen_kappa([], ["a", "b"])


labels = st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=60)


@given(labels)
def test_identical_labels_give_kappa_one(xs: list[str]) -> None:
    """Identical labels are perfect agreement, even when only one category is used."""
    pairs = [(x, x) for x in xs]
    assert cohen_kappa(pairs, ["a", "b", "c"]) == pytest.approx(1.0)
    assert weighted_kappa(pairs, ["a", "b", "c"], weights="quadratic") == pytest.approx(1.0)


@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("abc")), min_size=1, max_size=60))
def test_kappa_is_symmetric_and_bounded(pairs: list[tuple[str, str]]) -> None:
    """Swapping the raters changes nothing; κ ≤ 1; the matrix transposes."""
    cats = ["a", "b", "c"]
    swapped = [(b, a) for a, b in pairs]
    for weights in (None, "linear", "quadratic"):
        k = weighted_kappa(pairs, cats, weights=weights)  # type: ignore[arg-type]
        assert k == pytest.approx(weighted_kappa(swapped, cats, weights=weights))  # type: ignore[arg-type]
        assert k <= 1.0 + 1e-9
    m = confusion_matrix(pairs, cats)
    assert confusion_matrix(swapped, cats) == [list(r) for r in zip(*m, strict=True)]
    assert sum(map(sum, m)) == len(pairs)


def _score(trace: str, name: str, value: float | None, source: str, *, label: str | None = None, t: int = 1) -> Score:
    kind = "categorical" if label is not None else "numeric"
    return Score(f"score_{trace}{t}{source}", "p", trace, None, name, kind, value, label, None, source, None, t)


def test_calibrate_rescales_a_unit_judge_to_the_human_scale() -> None:
    """A 1-5 human scale against a judge in [0, 1]: 0.0→1, 0.5→3, 1.0→5; latest human label per trace wins;
    traces labelled on one side only are counted as unpaired."""
    cfg = ScoreConfig("c", "p", "quality", "numeric", 1, 5)
    human = [_score("t1", "quality", 2, "human", t=1), _score("t1", "quality", 1, "human", t=2)]
    human += [
        _score("t2", "quality", 3, "human"),
        _score("t3", "quality", 5, "human"),
        _score("t9", "quality", 4, "human"),
    ]
    judge = [
        _score("t1", "j", 0.0, "llm_judge"),
        _score("t2", "j", 0.5, "llm_judge"),
        _score("t3", "j", 1.0, "llm_judge"),
    ]
    judge += [_score("t8", "j", 0.2, "llm_judge")]
    result = calibrate("j", cfg, human, judge)
    assert result.n == 3 and result.kappa == pytest.approx(1.0) and result.agreement == 1.0
    assert result.categories == ["1", "2", "3", "4", "5"]
    assert result.matrix[0][0] == 1 and result.matrix[2][2] == 1 and result.matrix[4][4] == 1
    assert result.weighted_kappa_linear == pytest.approx(1.0)
    assert (result.unpaired_human, result.unpaired_judge) == (1, 1)
