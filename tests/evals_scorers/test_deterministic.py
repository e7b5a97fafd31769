"""Deterministic scorers against known reference values, and the registry's handling of bad specs."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

from llmops.core.errors import InvalidInputError
from llmops.evals import EvalCase, Evaluator, ScoreResult
from llmops.evals.evaluators import create_evaluator, list_evaluators, parse_spec
from llmops.evals.evaluators.bleu import sentence_bleu
from llmops.evals.evaluators.rouge import rouge


def run(spec: Any, output: str, expected: str | None = None, **kw: Any) -> ScoreResult:
    return asyncio.run(create_evaluator(spec).score(EvalCase(input="q", output=output, expected=expected, **kw)))


# NLTK's documented sentence_bleu example (Papineni et al.): 0.5045666840058485 without smoothing
HYP = "It is a guide to action which ensures that the military always obeys the commands of the party".split()
REFS = [
    "It is a guide to action that ensures that the military will forever heed Party commands".split(),
    (
        "It is the guiding principle which guarantees the military forces always being under the command of the Party"
    ).split(),
    "It is the practical guide for the army always to heed the directions of the party".split(),
]


def test_bleu_matches_nltk_reference_value() -> None:
    """Clipped n-gram precision + brevity penalty reproduce NLTK's published sentence BLEU exactly."""
    value, precisions, bp = sentence_bleu(HYP, REFS, smoothing="none")
    assert value == pytest.approx(0.5045666840058485, abs=1e-12)
    assert precisions[0] == pytest.approx(17 / 18) and bp == 1.0


def test_bleu_clips_repeated_ngrams_and_penalises_brevity() -> None:
    """'the the the ...' gets unigram precision 2/7 (Papineni's example); a short candidate gets BP < 1."""
    _, precisions, _ = sentence_bleu("the the the the the the the".split(), ["the cat is on the mat".split()], max_n=1)
    assert precisions[0] == pytest.approx(2 / 7)
    _, _, bp = sentence_bleu("the cat".split(), ["the cat is on the mat".split()], max_n=1)
    assert bp == pytest.approx(math.exp(1 - 6 / 2))


def test_bleu_smoothing_keeps_partial_matches_above_zero() -> None:
    """Without smoothing an empty 4-gram order zeroes BLEU; exp smoothing (sacrebleu's) keeps a small score."""
    cand, ref = "the cat sat on the mat".split(), ["the cat is on the mat".split()]
    assert sentence_bleu(cand, ref, smoothing="none")[0] == 0.0
    smoothed = sentence_bleu(cand, ref, smoothing="exp")[0]
    # precisions 5/6, 3/5, 1/4, 1/(2*3): geometric mean
    assert smoothed == pytest.approx((5 / 6 * 3 / 5 * 1 / 4 * 1 / 6) ** 0.25)
    assert run("bleu", "the cat sat on the mat", "the cat is on the mat").value == pytest.approx(smoothed)
    assert run("bleu", "identical text here", "identical text here").value == pytest.approx(1.0)


def test_rouge_variants_reference_values() -> None:
    """ROUGE-1/2/L F1 on the classic pair equal the rouge-score package's values (5/6, 3/5, 5/6)."""
    cand, ref = "the cat sat on the mat".split(), "the cat is on the mat".split()
    assert rouge(cand, ref, "rouge1")[2] == pytest.approx(5 / 6)
    assert rouge(cand, ref, "rouge2")[2] == pytest.approx(3 / 5)
    assert rouge(cand, ref, "rougeL")[2] == pytest.approx(5 / 6)
    # Lin (2004): LCS is a subsequence, not a substring ("police ... the gunman" = 3 words)
    p, r, _ = rouge("police kill the gunman".split(), "police killed the gunman".split(), "rougeL")
    assert (p, r) == (pytest.approx(3 / 4), pytest.approx(3 / 4))
    p, r, _ = rouge("the gunman was shot by police".split(), "police killed the gunman".split(), "rougeL")
    assert (p, r) == (pytest.approx(2 / 6), pytest.approx(2 / 4))
    res = run(
        "rouge2", "The cat sat on the mat.", "the cat is on the mat", metadata={"references": ["cat sat on the mat"]}
    )
    assert res.name == "rouge2" and res.value == pytest.approx(8 / 9)  # best: P 4/5, R 1


def test_exact_contains_regex() -> None:
    """Normalised exact match, any/all/negated contains, regex search/full match, each recording why."""
    assert run("exact", "  Paris ", "paris").passed is True
    assert run({"name": "exact", "case_sensitive": True}, "Paris", "paris").passed is False
    assert run({"name": "exact", "strip_punctuation": True}, "Paris!", "paris").value == 1.0
    assert run("exact", "x").error is not None  # no expected output: recorded, not raised
    assert run({"name": "contains", "value": ["red", "blue"]}, "a Blue car").passed is True
    res = run({"name": "contains", "value": ["red", "blue"], "mode": "all"}, "a blue car")
    assert res.passed is False and res.details["missing"] == ["red"]
    assert run({"name": "contains", "value": "sorry", "negate": True}, "Sure, here it is").passed is True
    assert run("contains", "The answer is 42.", "42").passed is True
    assert run({"name": "regex", "pattern": r"\d{3}-\d{4}"}, "call 555-1234").details["match"] == "555-1234"
    assert run({"name": "regex", "pattern": r"\d+", "full": True}, "12a").passed is False


def test_json_validity_and_schema() -> None:
    """JSON validity (fenced blocks accepted unless strict) and JSON Schema violations listed with paths."""
    assert run("json_valid", '```json\n{"a": 1}\n```').passed is True
    assert run({"name": "json_valid", "strict": True}, '```json\n{"a": 1}\n```').passed is False
    assert run("json_valid", "{not json").passed is False
    schema = {"type": "object", "properties": {"age": {"type": "integer", "minimum": 0}}, "required": ["age"]}
    assert run({"name": "json_schema", "schema": schema}, '{"age": 3}').passed is True
    bad = run({"name": "json_schema", "schema": schema}, '{"age": -1}')
    assert bad.passed is False and bad.details["errors"][0]["path"] == "age"
    assert "minimum" in bad.details["errors"][0]["message"] or "less than" in bad.details["errors"][0]["message"]


def test_numeric_tolerance_and_edit_distance() -> None:
    """First number in the output vs expected within tolerance; Levenshtein similarity normalised to [0, 1]."""
    assert run({"name": "numeric", "abs_tol": 0.01}, "It costs $1,234.005", "1234").passed is True
    assert run({"name": "numeric", "abs_tol": 0.001}, "It costs $1,234.005", "1234").passed is False
    assert run({"name": "numeric", "rel_tol": 0.01}, "about 99.5 km", "100").passed is True
    assert run({"name": "numeric", "expected": 7}, "seven").passed is False
    res = run("edit_distance", "kitten", "sitting")
    assert res.value == pytest.approx(1 - 3 / 7) and res.details["distance"] == 3
    assert run({"name": "edit_distance", "threshold": 0.5}, "kitten", "sitting").passed is True


def test_registry_rejects_unknown_names_and_parameters() -> None:
    """Unknown scorers list the known ones; unknown/mistyped parameters and bad patterns name the parameter."""
    with pytest.raises(InvalidInputError) as exc:
        create_evaluator("bleurt")
    assert "bleu" in exc.value.message and "toxicity" in exc.value.message and exc.value.code == "unknown_scorer"
    with pytest.raises(InvalidInputError) as exc:
        create_evaluator({"name": "contains", "valeu": "x"})
    assert exc.value.param == "valeu"
    with pytest.raises(InvalidInputError) as exc:
        create_evaluator({"name": "regex", "pattern": "("})
    assert exc.value.param == "pattern"
    with pytest.raises(InvalidInputError):
        create_evaluator({"name": "bleu", "threshold": 2})
    with pytest.raises(InvalidInputError):
        create_evaluator({"name": "json_schema", "schema": {"type": "nope"}})
    with pytest.raises(InvalidInputError):
        create_evaluator({"type": "judge", "rubric": "relevance"})  # no model and no default judge model
    with pytest.raises(InvalidInputError):
        create_evaluator({"type": "judge", "rubric": {"criteria": "x", "scale": [5, 1]}, "model": "m"})
    with pytest.raises(InvalidInputError):
        create_evaluator(42)  # type: ignore[arg-type]


def test_catalogue_and_spec_forms() -> None:
    """Every listed scorer builds from its name (judges with a model), satisfies Evaluator, and is versioned."""
    infos = {i.name: i for i in list_evaluators()}
    assert {"exact", "bleu", "rouge", "semantic_similarity", "factual_consistency", "toxicity", "judge"} <= set(infos)
    assert {"faithfulness", "answer_relevancy", "context_precision", "context_recall"} <= set(infos)
    for name, info in infos.items():
        spec: dict[str, Any] = (
            {"name": name, "model": "m", "rubric": "relevance"} if name == "judge" else {"name": name}
        )
        if name == "regex":
            spec["pattern"] = "x"
        if name == "json_schema":
            spec["schema"] = {"type": "object"}
        evaluator = create_evaluator(spec)
        assert isinstance(evaluator, Evaluator) and evaluator.version == info.version and info.description
    assert parse_spec("judge:style") == ("judge", {"rubric": "style"})
    assert parse_spec({"type": "rougeL"}) == ("rouge", {"variant": "rougeL"})
    assert create_evaluator({"name": "exact", "score_name": "strict_match"}).name == "strict_match"


def test_function_scorers_sync_async_and_failing() -> None:
    """Plain functions become evaluators: numbers, bools and ScoreResults pass through; exceptions become errors."""
    from llmops.evals.evaluators import scorer_from_function

    def length_ok(case: EvalCase) -> bool:
        return len(case.output) < 10

    async def ratio(case: EvalCase) -> float:
        return 0.25

    def broken(case: EvalCase) -> float:
        raise RuntimeError("boom")

    case = EvalCase(input="q", output="short")
    assert isinstance(scorer_from_function(length_ok), Evaluator)
    assert asyncio.run(scorer_from_function(length_ok).score(case)).passed is True
    res = asyncio.run(scorer_from_function(ratio, name="r", threshold=0.5).score(case))
    assert (res.name, res.value, res.passed) == ("r", 0.25, False)
    err = asyncio.run(scorer_from_function(broken).score(case))
    assert err.value is None and err.error == "RuntimeError: boom"
    odd = asyncio.run(scorer_from_function(lambda c: "x", name="odd").score(case))
    assert odd.error is not None and "str" in odd.error
