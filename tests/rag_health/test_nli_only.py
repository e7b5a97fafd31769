"""A pair whose only evidence is the NLI model is never reported on its own: below the NLI threshold it is
dropped, above it it waits for the adjudicator (regression: a low-NLI paraphrase pair used to be reported)."""

from __future__ import annotations

from typing import Any

from llmops.classifiers.nli import NliModel
from llmops.rag.health.contradictions import find_contradictions
from llmops.rag.health.corpus import as_doc_texts, load_corpus
from tests.rag_health.conftest import CORPUS


def test_paraphrase_with_low_nli_is_not_a_conflict(embed: Any, nli: NliModel) -> None:
    pair = ("integrations.md", "integrations-copy.md")  # "for each dashboard" vs "per dashboard"
    docs = [d for d in as_doc_texts(load_corpus(CORPUS / "docs")) if d.document_id in pair]
    conflicts, stats = find_contradictions(docs, embed, nli)
    assert stats.candidate_pairs > 0 and stats.nli_pairs > 0  # the pair was a candidate and NLI was asked
    reported = [c for c in conflicts if not c.needs_adjudication]
    assert reported == []
    assert all(c.score >= 0.9 for c in conflicts if c.needs_adjudication)
